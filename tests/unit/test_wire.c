/* test_wire.c - unit tests of src/wire.c. */
#include "config.h"

#include <check.h>
#include "core.h"
#include "wire.h"
#include "suites.h"

START_TEST(test_wire_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_wire_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
