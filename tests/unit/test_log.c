/* test_log.c - unit tests of src/log.c. */
#include "config.h"

#include <check.h>
#include "acceptd.h"
#include "suites.h"

START_TEST(test_log_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_log_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
