/* test_options.c - unit tests of src/options.c. */
#include "config.h"

#include <check.h>
#include "acceptd.h"
#include "suites.h"

START_TEST(test_options_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *options_suite(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_options_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
