/* test_table.c - unit tests of src/table.c. */
#include "config.h"

#include <check.h>
#include "acceptd.h"
#include "suites.h"

START_TEST(test_table_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_table_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
