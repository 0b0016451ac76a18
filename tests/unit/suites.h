/* suites.h - one check Suite per module under test; tests/unit/main.c
 * runs them all. */
#ifndef UNIT_SUITES_H
#define UNIT_SUITES_H
#include <check.h>

Suite *addr_suite(void);
Suite *options_suite(void);
Suite *sdcompat_suite(void);
Suite *log_suite(void);
Suite *table_suite(void);
Suite *builtin_suite(void);
Suite *wire_suite(void);
Suite *fdpass_suite(void);
Suite *admit_suite(void);
Suite *cidr_suite(void);
Suite *confline_suite(void);
Suite *config_suite(void);
Suite *proxy_suite(void);
Suite *pool_suite(void);
Suite *rules_suite(void);
Suite *contain_suite(void);

#endif
