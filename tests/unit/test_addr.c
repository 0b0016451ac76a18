/* test_addr.c - unit tests of src/addr.c. */
#include "config.h"

#include <check.h>
#include "acceptd.h"
#include "suites.h"

START_TEST(test_addr_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_addr_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
