/* test_sdcompat.c - unit tests of src/sdcompat.c. */
#include "config.h"

#include <check.h>
#include "acceptd.h"
#include "suites.h"

START_TEST(test_sdcompat_placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST

Suite *sdcompat_suite(void)
{
	Suite *s = suite_create("sdcompat");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_sdcompat_placeholder);
	suite_add_tcase(s, tc);
	return s;
}
