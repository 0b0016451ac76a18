/* test_fdpass.c - unit tests of src/fdpass.c. */
#include "config.h"

#include <check.h>
#include "core.h"
#include "fdpass.h"
#include "suites.h"

START_TEST(test_fdpass_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *fdpass_suite(void)
{
	Suite *s = suite_create("fdpass");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_fdpass_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
