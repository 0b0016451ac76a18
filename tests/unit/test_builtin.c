/* test_builtin.c - unit tests of src/builtin.c. */
#include "config.h"

#include <check.h>
#include "acceptd.h"
#include "suites.h"

START_TEST(test_builtin_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *builtin_suite(void)
{
	Suite *s = suite_create("builtin");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_builtin_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
