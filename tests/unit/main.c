/* main.c - the check runner: every module's suite, one binary, run by
 * `make check`.  CK_FORK stays on so a crashing test fails alone. */
#include "config.h"

#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failed;

	srunner_add_suite(sr, options_suite());
	srunner_add_suite(sr, sdcompat_suite());
	srunner_add_suite(sr, log_suite());
	srunner_add_suite(sr, table_suite());
	srunner_add_suite(sr, builtin_suite());
	srunner_add_suite(sr, wire_suite());
	srunner_add_suite(sr, fdpass_suite());
	srunner_add_suite(sr, admit_suite());
	srunner_add_suite(sr, cidr_suite());
	srunner_add_suite(sr, confline_suite());
	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, proxy_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
