/* test_contain.c - unit tests of src/contain.c's pure part: --rlimit
 * values (every name, soft and hard, the size suffixes, unlimited) and
 * what it refuses with a reason; --nice/--umask through options; and
 * cgroup.c's pure part, --cgroup-limit KEY=VALUE. */
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

/* --cgroup-limit: a key is a cgroup file's name (a dot in it, not one of
 * acceptd's own files), the value printable and bounded; taken as given,
 * since only the kernel knows what a key accepts. */
static const struct {
	const char *arg, *key, *value;
} cg_good[] = {
	{ "memory.max=64M", "memory.max", "64M" },
	{ "pids.max=32", "pids.max", "32" },
	{ "cpu.max=50000 100000", "cpu.max", "50000 100000" },
	{ "hugetlb.2MB.max=0", "hugetlb.2MB.max", "0" },
	{ "cgroup.max.descendants=0", "cgroup.max.descendants", "0" },
	{ "memory.high=max", "memory.high", "max" },
	{ "io.max=8:0 rbps=1048576", "io.max", "8:0 rbps=1048576" },
	{ "memory.oom.group=1", "memory.oom.group", "1" },
	{ "cpuset.cpus=0-1", "cpuset.cpus", "0-1" },
};

static const struct {
	const char *arg, *why;
} cg_bad[] = {
	{ "", "want KEY=VALUE" },
	{ "memory.max", "want KEY=VALUE" },
	{ "=1", "want KEY=VALUE" },
	{ "memory=1", "want KEY=VALUE" },
	{ "../x.max=1", "want KEY=VALUE" },
	{ "memory/x.max=1", "want KEY=VALUE" },
	{ ".max=1", "want KEY=VALUE" },
	{ "memory.=1", "want KEY=VALUE" },
	{ "memory.max=", "empty" },
	{ "memory.max=1\n", NULL },	/* replaced below by a real newline */
	{ "cgroup.procs=1", "acceptd's to write" },
	{ "cgroup.kill=1", "acceptd's to write" },
	{ "cgroup.subtree_control=+memory", "acceptd's to write" },
	{ "cgroup.freeze=1", "acceptd's to write" },
	{ "cpuset.mems=0", "cpuset.mems is not supported" },
	{ "cpuset.mems.effective=0", "cpuset.mems is not supported" },
};

START_TEST(test_cgroup_limit_good)
{
	struct cgroup_limit l;
	char err[300] = "";

	ck_assert_msg(cgroup_parse_limit(cg_good[_i].arg, &l, err, sizeof err) == 0, "%s: %s",
		      cg_good[_i].arg, err);
	ck_assert_str_eq(l.key, cg_good[_i].key);
	ck_assert_str_eq(l.value, cg_good[_i].value);
}
END_TEST

START_TEST(test_cgroup_limit_bad)
{
	struct cgroup_limit l;
	char err[300] = "", arg[64];
	const char *why = cg_bad[_i].why ? cg_bad[_i].why : "control";

	snprintf(arg, sizeof arg, "%s", cg_bad[_i].arg);
	if (!cg_bad[_i].why)
		arg[strlen(arg) - 2] = '\n', arg[strlen(arg) - 1] = '\0';
	ck_assert_msg(cgroup_parse_limit(arg, &l, err, sizeof err) == -1, "%s accepted", arg);
	ck_assert_msg(strstr(err, why) && strstr(err, "--cgroup-limit"), "%s: %s", arg, err);
}
END_TEST

/* Through the command line: a key given again replaces; --cgroup-limit
 * needs --cgroup; a value too long, a seventeenth key. */
START_TEST(test_cgroup_options)
{
	static const char *const ok[] = { "--cgroup", "--cgroup-limit", "pids.max=10",
		"--cgroup-limit", "memory.max=1G", "--cgroup-limit", "pids.max=20", NULL };
	static const char *const alone[] = { "--cgroup-limit", "pids.max=10", NULL };
	char many[40][40], big[300], err[700];
	const char *args[40];
	struct options o;
	int n = 0;

	ck_assert_int_eq(parse(&o, ok), OPT_OK);
	ck_assert(o.cgroup);
	ck_assert_uint_eq(o.n_cg_limits, 2);
	ck_assert_str_eq(o.cg_limits[0].key, "pids.max");
	ck_assert_str_eq(o.cg_limits[0].value, "20");
	ck_assert_str_eq(o.cg_limits[1].key, "memory.max");
	options_free(&o);
	ck_assert_int_eq(parse(&o, alone), OPT_USAGE);
	options_free(&o);
	ck_assert_int_eq(parse(&o, (const char *const[]){ NULL }), OPT_OK);
	ck_assert(!o.cgroup);
	ck_assert_uint_eq(o.n_cg_limits, 0);
	options_free(&o);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "pids.max=", 9);
	ck_assert_int_eq(cgroup_parse_limit(big, &o.cg_limits[0], err, sizeof err), -1);
	ck_assert_msg(strstr(err, "longer than 255"), "%s", err);
	/* parse() takes 15 words: 1 + 7 pairs is all it passes. */
	args[n++] = "--cgroup";
	for (int i = 0; i < 7; i++) {
		snprintf(many[i], sizeof many[i], "k%d.max=1", i);
		args[n++] = "--cgroup-limit";
		args[n++] = many[i];
	}
	args[n] = NULL;
	ck_assert_int_eq(parse(&o, args), OPT_OK);
	ck_assert_uint_eq(o.n_cg_limits, 7);
	options_free(&o);
}
END_TEST

Suite *contain_suite(void)
{
	Suite *s = suite_create("contain");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_contain_rlimit_good, 0, sizeof good / sizeof good[0]);
	tcase_add_loop_test(tc, test_contain_rlimit_bad, 0, sizeof bad / sizeof bad[0]);
	tcase_add_test(tc, test_contain_options);
	tcase_add_loop_test(tc, test_cgroup_limit_good, 0, sizeof cg_good / sizeof cg_good[0]);
	tcase_add_loop_test(tc, test_cgroup_limit_bad, 0, sizeof cg_bad / sizeof cg_bad[0]);
	tcase_add_test(tc, test_cgroup_options);
	suite_add_tcase(s, tc);
	return s;
}
