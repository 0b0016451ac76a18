/* test_contain.c - unit tests of src/contain.c's pure part: --rlimit
 * values (every name, soft and hard, the size suffixes, unlimited) and
 * what it refuses with a reason; and --nice/--umask through options. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "core.h"
#include "suites.h"

#define INF ((unsigned long long)RLIM_INFINITY)

static const struct {
	const char *arg;
	int resource;
	unsigned long long soft, hard;
} good[] = {
	{ "as=1G", RLIMIT_AS, 1ULL << 30, 1ULL << 30 },
	{ "as=512M:1G", RLIMIT_AS, 512ULL << 20, 1ULL << 30 },
	{ "as=unlimited", RLIMIT_AS, INF, INF },
	{ "as=1T:infinity", RLIMIT_AS, 1ULL << 40, INF },
	{ "cpu=10", RLIMIT_CPU, 10, 10 },
	{ "cpu=5:10", RLIMIT_CPU, 5, 10 },
	{ "data=4K", RLIMIT_DATA, 4096, 4096 },
	{ "fsize=0", RLIMIT_FSIZE, 0, 0 },
	{ "nofile=256:1024", RLIMIT_NOFILE, 256, 1024 },
	{ "nproc=50", RLIMIT_NPROC, 50, 50 },
	{ "core=0", RLIMIT_CORE, 0, 0 },
	{ "stack=8M", RLIMIT_STACK, 8ULL << 20, 8ULL << 20 },
	{ "memlock=64K:unlimited", RLIMIT_MEMLOCK, 64 << 10, INF },
};

static const struct {
	const char *arg, *why;
} bad[] = {
	{ "", "want NAME=VALUE" },
	{ "as", "want NAME=VALUE" },
	{ "rss=1G", "want NAME=VALUE" },
	{ "AS=1G", "want NAME=VALUE" },
	{ "as=", "a number" },
	{ "as=1x", "a number" },
	{ "as=1g", "a number" },
	{ "as=-1", "a number" },
	{ "as=1G:", "a number" },
	{ "as=:1G", "a number" },
	{ "as=1G:512M", "above the hard" },
	{ "as=unlimited:1G", "above the hard" },
	{ "cpu=10K", "a number or unlimited" },
	{ "nofile=1M", "a number or unlimited" },
	{ "nofile=unlimited", "cannot be unlimited" },
	{ "nofile=10:unlimited", "cannot be unlimited" },
	{ "as=99999999999999999999", "a number" },
	{ "as=17179869184T", "a number" },
};

START_TEST(test_contain_rlimit_good)
{
	struct rlimit_set r;
	char err[300] = "";

	ck_assert_msg(contain_parse_rlimit(good[_i].arg, &r, err, sizeof err) == 0, "%s: %s",
		      good[_i].arg, err);
	ck_assert_int_eq(r.resource, good[_i].resource);
	ck_assert_msg(r.soft == good[_i].soft && r.hard == good[_i].hard, "%s: %llu:%llu",
		      good[_i].arg, r.soft, r.hard);
}
END_TEST

START_TEST(test_contain_rlimit_bad)
{
	struct rlimit_set r;
	char err[300] = "";

	ck_assert_msg(contain_parse_rlimit(bad[_i].arg, &r, err, sizeof err) == -1,
		      "%s accepted", bad[_i].arg);
	ck_assert_msg(strstr(err, bad[_i].why) && strstr(err, "--rlimit"), "%s: %s",
		      bad[_i].arg, err);
}
END_TEST

static enum opt_result parse(struct options *o, const char *const *args)
{
	static char words[16][64];
	char *argv[17], err[300];
	int argc = 0;

	options_defaults(o);
	snprintf(words[0], sizeof words[0], "acceptd");
	argv[argc] = words[argc];
	argc++;
	for (; *args && argc < 16; args++, argc++) {
		snprintf(words[argc], sizeof words[0], "%s", *args);
		argv[argc] = words[argc];
	}
	argv[argc] = NULL;
	return options_parse(o, argc, argv, err, sizeof err);
}

/* Through the command line: a name given again replaces, --nice and
 * --umask in their ranges. */
START_TEST(test_contain_options)
{
	static const char *const ok[] = { "--rlimit", "as=1G", "--rlimit", "cpu=5",
		"--rlimit", "as=2G", "--nice", "-20", "--umask", "0027", NULL };
	static const char *const bads[][3] = { { "--nice", "20", NULL }, { "--nice", "-21", NULL },
		{ "--nice", "+1", NULL }, { "--nice", "1x", NULL }, { "--nice", "", NULL },
		{ "--nice", "-0", NULL }, { "--nice", "05", NULL }, { "--umask", "8", NULL },
		{ "--umask", "00777", NULL }, { "--umask", "", NULL }, { "--umask", "-1", NULL } };
	struct options o;

	ck_assert_int_eq(parse(&o, ok), OPT_OK);
	ck_assert_uint_eq(o.n_rlimits, 2);
	ck_assert_int_eq(o.rlimits[0].resource, RLIMIT_AS);
	ck_assert_uint_eq(o.rlimits[0].soft, 2ULL << 30);
	ck_assert_int_eq(o.rlimits[1].resource, RLIMIT_CPU);
	ck_assert(o.nice_set);
	ck_assert_int_eq(o.nice, -20);
	ck_assert_int_eq(o.umask, 027);
	options_free(&o);
	ck_assert_int_eq(parse(&o, (const char *const[]){ NULL }), OPT_OK);
	ck_assert(!o.nice_set);
	ck_assert_int_eq(o.umask, -1);
	ck_assert_uint_eq(o.n_rlimits, 0);
	options_free(&o);
	for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		ck_assert_msg(parse(&o, bads[i]) == OPT_USAGE, "%s %s accepted", bads[i][0],
			      bads[i][1]);
		options_free(&o);
	}
}
END_TEST

Suite *contain_suite(void)
{
	Suite *s = suite_create("contain");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_contain_rlimit_good, 0, sizeof good / sizeof good[0]);
	tcase_add_loop_test(tc, test_contain_rlimit_bad, 0, sizeof bad / sizeof bad[0]);
	tcase_add_test(tc, test_contain_options);
	suite_add_tcase(s, tc);
	return s;
}
