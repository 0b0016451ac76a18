/* main.c - the check runner: every module's suite, one binary, run by
 * `make check`.  CK_FORK stays on so a crashing test fails alone.
 *
 * Results go to stdout as TAP, one line per test, and nothing else does
 * (CK_SILENT): automake's TAP driver then counts each test, not the binary
 * as one result (a failing test's line carries check's message).
 * CK_TAP_LOG_FILE_NAME, when set, is honoured by check itself instead. */
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
	srunner_add_suite(sr, pool_suite());
	srunner_add_suite(sr, rules_suite());
	srunner_add_suite(sr, contain_suite());
	if (!getenv("CK_TAP_LOG_FILE_NAME"))
		srunner_set_tap(sr, "-");
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
