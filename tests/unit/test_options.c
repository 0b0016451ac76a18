/* test_options.c - unit tests of src/options.c: options_parse_uint's strict
 * decimal rules and errno, options_parse's defaults, each option's effect,
 * PROGRAM and its own options after it, and usage errors whose message
 * names the option and the value, and the option table: each option's
 * names, letter, key, group and --help row.  Every parse starts from
 * options_defaults; options_parse resets getopt itself. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "suites.h"

#define MAXARGS 16

/* options_parse keeps pointers into argv, so it lives as long as a test. */
static char argbuf[MAXARGS][64];
static char *argvec[MAXARGS + 1];

/* Runs "acceptd ARGS..." (args NULL-terminated) from the defaults. */
static enum opt_result parse(struct options *o, const char *const *args,
			     char *err, size_t errlen)
{
	int argc = 0;

	snprintf(argbuf[argc], sizeof argbuf[0], "acceptd");
	argvec[argc] = argbuf[argc];
	for (argc++; *args && argc < MAXARGS; args++, argc++) {
		snprintf(argbuf[argc], sizeof argbuf[0], "%s", *args);
		argvec[argc] = argbuf[argc];
	}
	argvec[argc] = NULL;
	err[0] = '\0';
	options_defaults(o);
	return options_parse(o, argc, argvec, err, errlen);
}

static const struct {
	const char *s;
	unsigned long long max;
	int rc;
	unsigned long long val;	/* rc 0 */
	int err;		/* rc -1 */
} uints[] = {
	{ "0", 4294967295ULL, 0, 0, 0 },
	{ "1", 4294967295ULL, 0, 1, 0 },
	{ "4294967295", 4294967295ULL, 0, 4294967295ULL, 0 },
	/* a single digit above a max below 9 */
	{ "1", 0, -1, 0, ERANGE },
	{ "6", 5, -1, 0, ERANGE },
	{ "9", 8, -1, 0, ERANGE },
	{ "4294967296", 4294967295ULL, -1, 0, ERANGE },
	{ "007", 10, 0, 7, 0 },
	{ "65535", 65535, 0, 65535, 0 },
	{ "65536", 65535, -1, 0, ERANGE },
	{ "10", 9, -1, 0, ERANGE },
	{ "0", 0, 0, 0, 0 },
	{ "18446744073709551615", ~0ULL, 0, ~0ULL, 0 },
	{ "18446744073709551616", ~0ULL, -1, 0, ERANGE },
	{ "99999999999999999999999", 100, -1, 0, ERANGE },
	{ "", 100, -1, 0, EINVAL },
	{ "-1", 100, -1, 0, EINVAL },
	{ "+1", 100, -1, 0, EINVAL },
	{ " 1", 100, -1, 0, EINVAL },
	{ "1 ", 100, -1, 0, EINVAL },
	{ "1x", 100, -1, 0, EINVAL },
	{ "0x10", 100, -1, 0, EINVAL },
	{ "1.0", 100, -1, 0, EINVAL },
};

START_TEST(test_options_parse_uint)
{
	for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
		unsigned long long v = 12345;

		errno = 0;
		ck_assert_msg(options_parse_uint(uints[i].s, uints[i].max, &v) == uints[i].rc,
			      "'%s' max %llu", uints[i].s, uints[i].max);
		if (uints[i].rc == 0)
			ck_assert_msg(v == uints[i].val, "'%s' gave %llu", uints[i].s, v);
		else
			ck_assert_msg(errno == uints[i].err && v == 12345,
				      "'%s': errno %d", uints[i].s, errno);
	}
}
END_TEST

START_TEST(test_options_defaults)
{
	static const char *const none[] = { NULL };
	struct options o;
	char err[256];

	ck_assert_int_eq(parse(&o, none, err, sizeof err), OPT_OK);
	ck_assert_uint_eq(o.max_conns, 100);
	ck_assert_uint_eq(o.backlog, SOMAXCONN);
	ck_assert_uint_eq(o.drain_secs, 10);
	ck_assert_int_eq(o.builtin, BUILTIN_ECHO);
	ck_assert_ptr_null(o.program);
	ck_assert_int_eq(o.socket_mode, -1);
	ck_assert_ptr_null(o.socket_user);
	ck_assert_ptr_null(o.socket_group);
	ck_assert(o.socket_uid == (uid_t)-1 && o.socket_gid == (gid_t)-1);
	ck_assert_int_eq(o.n_listen, 0);
	ck_assert_int_eq(o.verbosity, 0);
	ck_assert(!o.inetd && !o.reuseport && !o.nodelay);
}
END_TEST

enum field { F_MAX_CONNS, F_BACKLOG, F_DRAIN, F_BUILTIN, F_N_LISTEN, F_VERBOSITY,
	F_SOCKET_MODE, F_REUSEPORT, F_NODELAY, F_INETD };

static long long field(const struct options *o, enum field f)
{
	switch (f) {
	case F_MAX_CONNS: return o->max_conns;
	case F_BACKLOG: return o->backlog;
	case F_DRAIN: return o->drain_secs;
	case F_BUILTIN: return o->builtin;
	case F_N_LISTEN: return o->n_listen;
	case F_VERBOSITY: return o->verbosity;
	case F_SOCKET_MODE: return o->socket_mode;
	case F_REUSEPORT: return o->reuseport;
	case F_NODELAY: return o->nodelay;
	case F_INETD: return o->inetd;
	}
	return -999;
}

/* One field to check per row, and always the PROGRAM argv (prog[0] NULL:
 * no PROGRAM). */
static const struct {
	const char *args[8];
	enum field f;
	long long want;
	const char *prog[4];
} goods[] = {
	{ { "-l", "8080", "-l", "unix:/x" }, F_N_LISTEN, 2, { NULL } },
	{ { "--listen=[::1]:7", "--listen", "*:9" }, F_N_LISTEN, 2, { NULL } },
	{ { "-c", "5" }, F_MAX_CONNS, 5, { NULL } },
	{ { "-c5" }, F_MAX_CONNS, 5, { NULL } },
	{ { "--max-conns=7" }, F_MAX_CONNS, 7, { NULL } },
	{ { "--max-conns", "1000000" }, F_MAX_CONNS, 1000000, { NULL } },
	{ { "--backlog", "65535" }, F_BACKLOG, 65535, { NULL } },
	{ { "--drain", "0" }, F_DRAIN, 0, { NULL } },
	{ { "--drain=86400" }, F_DRAIN, 86400, { NULL } },
	{ { "-b", "daytime" }, F_BUILTIN, BUILTIN_DAYTIME, { NULL } },
	{ { "--builtin=chargen" }, F_BUILTIN, BUILTIN_CHARGEN, { NULL } },
	{ { "--", "prog", "-x" }, F_BUILTIN, BUILTIN_NONE, { "prog", "-x" } },
	{ { "prog", "-c", "3" }, F_MAX_CONNS, 100, { "prog", "-c", "3" } },
	{ { "-c", "3", "/bin/cat" }, F_MAX_CONNS, 3, { "/bin/cat" } },
	{ { "-v" }, F_VERBOSITY, 1, { NULL } },
	{ { "--verbose" }, F_VERBOSITY, 1, { NULL } },
	{ { "-q" }, F_VERBOSITY, -1, { NULL } },
	{ { "-vq" }, F_VERBOSITY, -1, { NULL } },
	{ { "--socket-mode", "0660" }, F_SOCKET_MODE, 0660, { NULL } },
	{ { "--socket-mode=600" }, F_SOCKET_MODE, 0600, { NULL } },
	{ { "--reuseport" }, F_REUSEPORT, 1, { NULL } },
	{ { "-D" }, F_NODELAY, 1, { NULL } },
	{ { "--nodelay" }, F_NODELAY, 1, { NULL } },
	{ { "-i" }, F_INETD, 1, { NULL } },
	{ { "-i", "-b", "time" }, F_BUILTIN, BUILTIN_TIME, { NULL } },
};

START_TEST(test_options_good)
{
	for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
		const char *what = goods[i].args[0];
		struct options o;
		char err[256];
		size_t k;

		ck_assert_msg(parse(&o, goods[i].args, err, sizeof err) == OPT_OK,
			      "%s: %s", what, err);
		ck_assert_msg(field(&o, goods[i].f) == goods[i].want, "%s: got %lld",
			      what, field(&o, goods[i].f));
		if (!goods[i].prog[0]) {
			ck_assert_msg(o.program == NULL, "%s: PROGRAM set", what);
			continue;
		}
		ck_assert_msg(o.program != NULL, "%s: no PROGRAM", what);
		for (k = 0; goods[i].prog[k]; k++)
			ck_assert_str_eq(o.program[k], goods[i].prog[k]);
		ck_assert_ptr_null(o.program[k]);
	}
}
END_TEST

/* Each message must contain both strings (the option and the value). */
static const struct {
	const char *args[8];
	const char *want1, *want2;
} usages[] = {
	/* long options are named as typed, not by getopt's val */
	{ { "--backlog" }, "--backlog", "missing" },
	{ { "--drain" }, "--drain", "missing" },
	{ { "--socket-mode" }, "--socket-mode", "missing" },
	{ { "--max-conns" }, "--max-conns", "missing" },
	{ { "--reuseport=1" }, "--reuseport", "--reuseport" },
	{ { "--verbose=1" }, "--verbose", "--verbose" },
	{ { "--reuseport", "-Dx" }, "-x", "-x" },
	{ { "-c", "0" }, "max-conns", "'0'" },
	{ { "-c", "-1" }, "max-conns", "-1" },
	{ { "-c", "abc" }, "max-conns", "abc" },
	{ { "-c", "1000001" }, "max-conns", "1000001" },
	{ { "--max-conns=" }, "max-conns", "''" },
	{ { "--backlog", "0" }, "backlog", "'0'" },
	{ { "--backlog", "65536" }, "backlog", "65536" },
	{ { "--drain", "86401" }, "drain", "86401" },
	{ { "--socket-mode", "999" }, "socket-mode", "999" },
	{ { "--socket-mode", "rw" }, "socket-mode", "rw" },
	{ { "--socket-mode", "07777" }, "socket-mode", "07777" },
	{ { "--socket-user" }, "--socket-user", "missing" },
	{ { "--socket-group" }, "--socket-group", "missing" },
	{ { "--socket-user", "" }, "--socket-user", "''" },
	{ { "--socket-group=" }, "--socket-group", "''" },
	/* an abstract socket has no file to own */
	{ { "-l", "unix:@x", "--socket-user", "nobody" }, "--socket-user", "unix:@x" },
	{ { "--socket-group", "0", "-l", "unix:@x" }, "--socket-group", "unix:@x" },
	{ { "-l", "unix:@x", "--socket-mode", "0600" }, "--socket-mode", "unix:@x" },
	{ { "-l", "1.2.3:80" }, "listen", "1.2.3:80" },
	{ { "-l", "" }, "listen", "''" },
	{ { "-b", "nosuch" }, "builtin", "nosuch" },
	{ { "-b", "echo", "--", "prog" }, "builtin", "prog" },
	{ { "--nosuch" }, "--nosuch", "--nosuch" },
	{ { "-x" }, "-x", "-x" },
	{ { "-vx" }, "-x", "-x" },
	{ { "--reuseport", "-Dx" }, "-x", "-x" },
	{ { "-c" }, "-c", "missing" },
	{ { "-l" }, "-l", "missing" },
	{ { "-i", "-l", "80" }, "inetd", "listen" },
	{ { "--", "" }, "PROGRAM", "PROGRAM" },
};

START_TEST(test_options_usage)
{
	for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++) {
		const char *what = usages[i].args[0];
		struct options o;
		char err[256];

		ck_assert_msg(parse(&o, usages[i].args, err, sizeof err) == OPT_USAGE,
			      "%s %s: accepted", what, usages[i].args[1] ? usages[i].args[1] : "");
		ck_assert_msg(strstr(err, usages[i].want1) && strstr(err, usages[i].want2),
			      "%s: message \"%s\" lacks %s or %s", what, err,
			      usages[i].want1, usages[i].want2);
	}
}
END_TEST

START_TEST(test_options_listen_limit)
{
	/* One -l more than fits: more words than parse() takes. */
	static char prog[] = "acceptd", dash_l[] = "-l";
	static char ports[ACCEPTD_MAX_LISTEN_OPTS + 1][12];
	static char *av[2 * ACCEPTD_MAX_LISTEN_OPTS + 4];
	struct options o;
	char err[256];
	int n = 0;

	av[n++] = prog;
	for (int k = 0; k <= ACCEPTD_MAX_LISTEN_OPTS; k++) {
		snprintf(ports[k], sizeof ports[k], "%d", 1000 + k);
		av[n++] = dash_l;
		av[n++] = ports[k];
	}
	av[n] = NULL;
	options_defaults(&o);
	ck_assert_int_eq(options_parse(&o, n - 2, av, err, sizeof err), OPT_OK);
	ck_assert_int_eq(o.n_listen, ACCEPTD_MAX_LISTEN_OPTS);
	ck_assert_str_eq(o.listen[ACCEPTD_MAX_LISTEN_OPTS - 1], ports[ACCEPTD_MAX_LISTEN_OPTS - 1]);
	options_defaults(&o);
	ck_assert_int_eq(options_parse(&o, n, av, err, sizeof err), OPT_USAGE);
	ck_assert_ptr_nonnull(strstr(err, "listen"));
}
END_TEST

/* --help and --version print to stdout and ask for exit 0. */
static const struct {
	const char *arg, *want;
} infos[] = {
	{ "--version", PACKAGE_VERSION }, { "-V", PACKAGE_NAME },
	{ "--help", "Usage:" }, { "-h", "--listen" },
};

/* Runs "acceptd ARG" with stdout in out; returns what options_parse did. */
static enum opt_result capture(const char *arg, char *out, size_t outlen)
{
	const char *args[] = { arg, NULL };
	struct options o;
	char err[256];
	FILE *tf = tmpfile();
	int saved = dup(STDOUT_FILENO);
	enum opt_result r;
	ssize_t n;

	ck_assert(tf && saved >= 0);
	fflush(stdout);
	dup2(fileno(tf), STDOUT_FILENO);
	r = parse(&o, args, err, sizeof err);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = pread(fileno(tf), out, outlen - 1, 0);
	ck_assert_int_ge(n, 0);
	out[n] = '\0';
	fclose(tf);
	return r;
}

START_TEST(test_options_info)
{
	char out[4096];

	ck_assert_int_eq(capture(infos[_i].arg, out, sizeof out), OPT_EXIT_OK);
	ck_assert_ptr_nonnull(strstr(out, infos[_i].want));
}
END_TEST

/* --socket-user/--socket-group: options.c keeps the words as given;
 * privs_socket_owner resolves them (main: before any socket exists). */
static const struct {
	const char *args[6];
	long long uid, gid;	/* -1: leave as bind made it */
} owners[] = {
	{ { NULL }, -1, -1 },
	{ { "--socket-user", "root" }, 0, 0 },	/* its primary group comes along */
	{ { "--socket-user=0" }, 0, 0 },
	{ { "--socket-group", "root" }, -1, 0 },
	{ { "--socket-user", "root", "--socket-group", "4242" }, 0, 4242 },
	{ { "--socket-group", "4242", "--socket-user", "root" }, 0, 4242 },
	/* a bare uid without a passwd entry brings no group */
	{ { "--socket-user", "4242424" }, 4242424, -1 },
};

START_TEST(test_options_socket_owner)
{
	struct options o;
	char err[256];

	ck_assert_msg(parse(&o, owners[_i].args, err, sizeof err) == OPT_OK, "%s", err);
	ck_assert_int_eq(privs_socket_owner(&o, err, sizeof err), 0);
	ck_assert_int_eq(o.socket_uid == (uid_t)-1 ? -1 : (long long)o.socket_uid, owners[_i].uid);
	ck_assert_int_eq(o.socket_gid == (gid_t)-1 ? -1 : (long long)o.socket_gid, owners[_i].gid);
	/* root may give any owner */
	if (geteuid() == 0)
		ck_assert_ptr_null(privs_owner_denied(&o));
}
END_TEST

START_TEST(test_options_socket_owner_unknown)
{
	static const char *const user[] = { "--socket-user", "no-such-user-acceptd", NULL };
	static const char *const group[] = { "--socket-group", "no-such-group-acceptd", NULL };
	struct options o;
	char err[256];

	ck_assert_int_eq(parse(&o, user, err, sizeof err), OPT_OK);
	ck_assert_int_eq(privs_socket_owner(&o, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "--socket-user 'no-such-user-acceptd'"));
	ck_assert_int_eq(parse(&o, group, err, sizeof err), OPT_OK);
	ck_assert_int_eq(privs_socket_owner(&o, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "--socket-group 'no-such-group-acceptd'"));
	ck_assert_ptr_nonnull(strstr(o.socket_group, "no-such-group"));
}
END_TEST

/* --- the option table: getopt, the keys and --help agree ------------------
 * Every option acceptd has, as the user sees it: its names, its short
 * letter, whether it takes a value, and what a config file may do with
 * it.  A new option is a new row here too (HACKING.md, "Adding an
 * option"). */

#define K_FILE 1	/* a config file may set it */
#define K_REPEAT 2	/* repeatable */

static const struct {
	const char *name;
	char letter;		/* 0: none */
	bool arg;
	unsigned flags;
	const char *group;	/* the option it is one setting with, or NULL */
} every[] = {
	{ "listen", 'l', true, K_FILE | K_REPEAT, NULL },
	{ "inetd", 'i', false, K_FILE, "listen" },
	{ "builtin", 'b', true, K_FILE, NULL },
	{ "max-conns", 'c', true, K_FILE, NULL },
	{ "workers", 'w', true, K_FILE, NULL },
	{ "fd-passing", 0, false, K_FILE, NULL },
	{ "max-per-source", 'C', true, K_FILE, NULL },
	{ "max-per-ip", 'C', true, K_FILE, "max-per-source" },
	{ "source-prefix", 0, true, K_FILE, NULL },
	{ "rate", 0, true, K_FILE, NULL },
	{ "refusal-message", 0, true, K_FILE, NULL },
	{ "allow", 0, true, K_FILE | K_REPEAT, NULL },
	{ "deny", 0, true, K_FILE | K_REPEAT, "allow" },
	{ "rules", 0, true, K_FILE, "allow" },
	{ "datagram", 0, true, K_FILE, NULL },
	{ "rlimit", 0, true, K_FILE | K_REPEAT, NULL },
	{ "nice", 0, true, K_FILE, NULL },
	{ "umask", 0, true, K_FILE, NULL },
	{ "cgroup", 0, false, K_FILE, NULL },
	{ "cgroup-limit", 0, true, K_FILE | K_REPEAT, NULL },
	{ "timeout", 't', true, K_FILE, NULL },
	{ "idle-exit", 0, true, K_FILE, NULL },
	{ "proxy-protocol", 0, false, K_FILE, NULL },
	{ "proxy-from", 0, true, K_FILE | K_REPEAT, NULL },
	{ "user", 'u', true, K_FILE, NULL },
	{ "config", 0, true, 0, NULL },
	{ "nodelay", 'D', false, K_FILE, NULL },
	{ "keepalive", 0, true, K_FILE, NULL },
	{ "backlog", 0, true, K_FILE, NULL },
	{ "reuseport", 0, false, K_FILE, NULL },
	{ "socket-mode", 0, true, K_FILE, NULL },
	{ "socket-user", 0, true, K_FILE, NULL },
	{ "socket-group", 0, true, K_FILE, NULL },
	{ "drain", 0, true, K_FILE, NULL },
	{ "verbose", 'v', false, K_FILE, NULL },
	{ "quiet", 'q', false, K_FILE, "verbose" },
	{ "help", 'h', false, 0, NULL },
	{ "version", 'V', false, 0, NULL },
};

START_TEST(test_options_keys)
{
	for (size_t i = 0; i < sizeof every / sizeof every[0]; i++) {
		const char *name = every[i].name;
		int key = options_key(name);
		int group = every[i].group ? options_key(every[i].group) : key;

		ck_assert_msg(key >= 0 && key < OPTIONS_MAX_KEYS, "%s: key %d", name, key);
		ck_assert_msg(options_key_group(key) == group, "%s: group %d, want %d", name,
			      options_key_group(key), group);
		ck_assert_msg(options_key_settable(key) == !!(every[i].flags & K_FILE),
			      "%s: settable", name);
		ck_assert_msg(options_key_repeatable(key) == !!(every[i].flags & K_REPEAT),
			      "%s: repeatable", name);
	}
	/* an alias is its option's key; only long names are keys */
	ck_assert_int_eq(options_key("max-per-ip"), options_key("max-per-source"));
	ck_assert_int_eq(options_key("c"), -1);
	ck_assert_int_eq(options_key("--max-conns"), -1);
	ck_assert_int_eq(options_key("max-conn"), -1);
	ck_assert_int_eq(options_key("exec"), -1);
	ck_assert_int_eq(options_key(""), -1);
}
END_TEST

/* getopt knows each name and letter, with or without a value as listed:
 * given no value, one that takes a value is missing it, and a flag is
 * never an unknown option. */
START_TEST(test_options_getopt)
{
	for (size_t i = 0; i < sizeof every / sizeof every[0]; i++) {
		char dashed[2][40];
		struct options o;
		char err[256];
		int n = every[i].letter ? 2 : 1;

		if (every[i].letter == 'h' || every[i].letter == 'V')
			continue;	/* they print: test_options_info */
		snprintf(dashed[0], sizeof dashed[0], "--%s", every[i].name);
		snprintf(dashed[1], sizeof dashed[1], "-%c", every[i].letter);
		for (int k = 0; k < n; k++) {
			const char *args[] = { dashed[k], NULL };
			enum opt_result r = parse(&o, args, err, sizeof err);

			ck_assert_msg(!strstr(err, "unknown option"), "%s: %s", dashed[k], err);
			if (every[i].arg)
				ck_assert_msg(r == OPT_USAGE && strstr(err, "missing value"),
					      "%s: %s", dashed[k], err);
			options_free(&o);
		}
	}
}
END_TEST

/* --help names every option, with its letter, in a row of its own; and
 * nothing else. */
START_TEST(test_options_help_rows)
{
	char out[4096];
	size_t rows = 0;

	ck_assert_int_eq(capture("--help", out, sizeof out), OPT_EXIT_OK);
	for (size_t i = 0; i < sizeof every / sizeof every[0]; i++) {
		char want[48];

		if (every[i].group && options_key(every[i].group) == options_key(every[i].name))
			continue;	/* an alias: named in its option's text */
		if (every[i].letter)
			snprintf(want, sizeof want, "\n  -%c, --%s%s", every[i].letter,
				 every[i].name, every[i].arg ? " " : "");
		else
			snprintf(want, sizeof want, "\n      --%s%s", every[i].name,
				 every[i].arg ? " " : "");
		ck_assert_msg(strstr(out, want), "--help lacks \"%s\"", want + 1);
	}
	ck_assert_ptr_nonnull(strstr(out, "--max-per-ip is its old name"));
	for (const char *line = out; line; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (strncmp(line, "  -", 3) != 0 && strncmp(line, "      --", 8) != 0)
			continue;
		rows++;
	}
	ck_assert_uint_eq(rows, sizeof every / sizeof every[0] - 1);
}
END_TEST

/* --- the admission options: -C, --source-prefix, --rate, --allow/--deny,
 * -t, --idle-exit, --proxy-protocol, --proxy-from ------------------------- */

static void free_rules(struct options *o)
{
	free(o->acl);
	free(o->proxy_from);
	o->acl = NULL;
	o->proxy_from = NULL;
}

START_TEST(test_options_admission_defaults)
{
	static const char *const none[] = { NULL };
	struct options o;
	char err[256];

	ck_assert_int_eq(parse(&o, none, err, sizeof err), OPT_OK);
	ck_assert_uint_eq(o.max_per_source, 0);
	ck_assert_uint_eq(o.prefix4, 32);
	ck_assert_uint_eq(o.prefix6, 128);
	ck_assert_uint_eq(o.rate_n, 0);
	ck_assert_uint_eq(o.n_acl, 0);
	ck_assert_uint_eq(o.n_proxy_from, 0);
	ck_assert_uint_eq(o.timeout_secs, 0);
	ck_assert_uint_eq(o.idle_exit_secs, 0);
	ck_assert(!o.proxy_protocol);
	free_rules(&o);
}
END_TEST

enum afield { A_MAX_PER_SOURCE, A_PREFIX4, A_PREFIX6, A_RATE_N, A_RATE_SECS, A_TIMEOUT,
	A_IDLE_EXIT, A_PROXY, A_N_ACL, A_N_PROXY_FROM };

static long long afield(const struct options *o, enum afield f)
{
	switch (f) {
	case A_MAX_PER_SOURCE: return o->max_per_source;
	case A_PREFIX4: return o->prefix4;
	case A_PREFIX6: return o->prefix6;
	case A_RATE_N: return o->rate_n;
	case A_RATE_SECS: return o->rate_secs;
	case A_TIMEOUT: return o->timeout_secs;
	case A_IDLE_EXIT: return o->idle_exit_secs;
	case A_PROXY: return o->proxy_protocol;
	case A_N_ACL: return o->n_acl;
	case A_N_PROXY_FROM: return o->n_proxy_from;
	}
	return -999;
}

static const struct {
	const char *args[8];
	enum afield f;
	long long want;
} agoods[] = {
	{ { "-C", "1" }, A_MAX_PER_SOURCE, 1 },
	{ { "-C3" }, A_MAX_PER_SOURCE, 3 },
	{ { "--max-per-ip=1000000" }, A_MAX_PER_SOURCE, 1000000 },
	{ { "--max-per-source=7" }, A_MAX_PER_SOURCE, 7 },
	{ { "--source-prefix", "24,64" }, A_PREFIX4, 24 },
	{ { "--source-prefix", "24,64" }, A_PREFIX6, 64 },
	{ { "--source-prefix=0,0" }, A_PREFIX4, 0 },
	{ { "--source-prefix=0,0" }, A_PREFIX6, 0 },
	{ { "--source-prefix", "32,128" }, A_PREFIX6, 128 },
	{ { "--source-prefix", "7,127" }, A_PREFIX4, 7 },
	{ { "--source-prefix", "16,48", "--source-prefix", "8,56" }, A_PREFIX6, 56 },
	{ { "--rate", "20/1" }, A_RATE_N, 20 },
	{ { "--rate", "20/1" }, A_RATE_SECS, 1 },
	{ { "--rate=1/86400" }, A_RATE_SECS, 86400 },
	{ { "--rate", "1000000/1" }, A_RATE_N, 1000000 },
	{ { "--rate", "3/2", "--rate", "5/7" }, A_RATE_N, 5 },
	{ { "-t", "1" }, A_TIMEOUT, 1 },
	{ { "--timeout=86400" }, A_TIMEOUT, 86400 },
	{ { "--idle-exit", "1" }, A_IDLE_EXIT, 1 },
	{ { "--idle-exit=86400" }, A_IDLE_EXIT, 86400 },
	{ { "--proxy-protocol" }, A_PROXY, 1 },
	{ { "--proxy-protocol", "--proxy-from", "127.0.0.1", "--proxy-from=::1" },
	  A_N_PROXY_FROM, 2 },
	{ { "--proxy-from", "10.0.0.0/8", "--proxy-protocol" }, A_N_PROXY_FROM, 1 },
	{ { "--proxy-protocol", "--proxy-from", "all" }, A_N_ACL, 0 },
	{ { "--allow", "all" }, A_N_ACL, 1 },
	{ { "--deny=10.0.0.0/8", "--allow", "::/0", "--deny", "all" }, A_N_ACL, 3 },
	{ { "--", "prog", "--deny", "all" }, A_N_ACL, 0 },
};

START_TEST(test_options_admission_good)
{
	for (size_t i = 0; i < sizeof agoods / sizeof agoods[0]; i++) {
		struct options o;
		char err[256];

		ck_assert_msg(parse(&o, agoods[i].args, err, sizeof err) == OPT_OK,
			      "%s %s: %s", agoods[i].args[0], agoods[i].args[1] ?
			      agoods[i].args[1] : "", err);
		ck_assert_msg(afield(&o, agoods[i].f) == agoods[i].want,
			      "row %zu (%s): got %lld, want %lld", i, agoods[i].args[0],
			      afield(&o, agoods[i].f), agoods[i].want);
		free_rules(&o);
	}
}
END_TEST

/* --allow and --deny make one list in command-line order; --proxy-from is
 * a list of its own. */
START_TEST(test_options_acl_order)
{
	static const char *const args[] = {
		"--allow", "127.0.0.2", "--proxy-protocol", "--deny", "127.0.0.0/8",
		"--proxy-from", "::1", "--allow=all", "--deny", "::ffff:10.0.0.0/104",
		"--deny", "2001:db8::/32", NULL };
	struct options o;
	char err[256], net[64];

	ck_assert_int_eq(parse(&o, args, err, sizeof err), OPT_OK);
	ck_assert_uint_eq(o.n_acl, 5);
	ck_assert(o.acl[0].allow && !o.acl[1].allow && o.acl[2].allow &&
		  !o.acl[3].allow && !o.acl[4].allow);
	cidr_format(&o.acl[0].net, net, sizeof net);
	ck_assert_str_eq(net, "127.0.0.2/32");
	cidr_format(&o.acl[1].net, net, sizeof net);
	ck_assert_str_eq(net, "127.0.0.0/8");
	cidr_format(&o.acl[2].net, net, sizeof net);
	ck_assert_str_eq(net, "all");
	cidr_format(&o.acl[3].net, net, sizeof net);
	ck_assert_str_eq(net, "10.0.0.0/8");
	cidr_format(&o.acl[4].net, net, sizeof net);
	ck_assert_str_eq(net, "2001:db8::/32");
	ck_assert_uint_eq(o.n_proxy_from, 1);
	cidr_format(&o.proxy_from[0], net, sizeof net);
	ck_assert_str_eq(net, "::1/128");
	free_rules(&o);
}
END_TEST

/* Each message must contain both strings (the option and the value). */
static const struct {
	const char *args[8];
	const char *want1, *want2;
} ausages[] = {
	{ { "-C", "0" }, "max-per-source", "'0'" },
	{ { "-C", "1000001" }, "max-per-source", "1000001" },
	{ { "--max-per-source", "x" }, "max-per-source", "'x'" },
	{ { "--max-per-ip", "x" }, "max-per-ip", "'x'" },
	{ { "-C" }, "-C", "missing" },
	{ { "--source-prefix", "33,64" }, "--source-prefix", "'33,64'" },
	{ { "--source-prefix", "24,129" }, "--source-prefix", "'24,129'" },
	{ { "--source-prefix", "24" }, "--source-prefix", "'24'" },
	{ { "--source-prefix", ",64" }, "--source-prefix", "',64'" },
	{ { "--source-prefix", "24," }, "--source-prefix", "'24,'" },
	{ { "--source-prefix", "24,64,0" }, "--source-prefix", "'24,64,0'" },
	{ { "--source-prefix", "-1,64" }, "--source-prefix", "'-1,64'" },
	{ { "--source-prefix", "24, 64" }, "--source-prefix", "'24, 64'" },
	{ { "--source-prefix", "24/64" }, "--source-prefix", "'24/64'" },
	{ { "--source-prefix", "" }, "--source-prefix", "''" },
	{ { "--rate", "0/1" }, "--rate", "'0/1'" },
	{ { "--rate", "5" }, "--rate", "'5'" },
	{ { "--rate", "5/0" }, "--rate", "'5/0'" },
	{ { "--rate", "a/b" }, "--rate", "'a/b'" },
	{ { "--rate", "5/" }, "--rate", "'5/'" },
	{ { "--rate", "/5" }, "--rate", "'/5'" },
	{ { "--rate", "5/1/2" }, "--rate", "'5/1/2'" },
	{ { "--rate", "-5/1" }, "--rate", "'-5/1'" },
	{ { "--rate", "1000001/1" }, "--rate", "'1000001/1'" },
	{ { "--rate", "1/86401" }, "--rate", "'1/86401'" },
	{ { "--rate", "99999999999999999999/1" }, "--rate", "99999999999999999999/1" },
	{ { "--rate", "" }, "--rate", "''" },
	{ { "--allow", "" }, "--allow", "''" },
	{ { "--allow", "10.1" }, "--allow", "'10.1'" },
	{ { "--allow", "010.0.0.1" }, "--allow", "'010.0.0.1'" },
	{ { "--allow", "10.0.0.0/33" }, "--allow", "'10.0.0.0/33'" },
	{ { "--allow", "10.0.0.0/08" }, "--allow", "'10.0.0.0/08'" },
	{ { "--allow", "localhost" }, "--allow", "'localhost'" },
	{ { "--deny", "10.0.0.1/8" }, "--deny", "10.0.0.0/8" },
	{ { "--deny", "fe80::1%lo" }, "--deny", "'fe80::1%lo'" },
	{ { "--deny", "[::1]" }, "--deny", "'[::1]'" },
	{ { "--deny", "ALL" }, "--deny", "'ALL'" },
	{ { "--deny" }, "--deny", "missing" },
	{ { "-t", "0" }, "timeout", "'0'" },
	{ { "-t", "86401" }, "timeout", "86401" },
	{ { "--timeout", "1s" }, "timeout", "'1s'" },
	{ { "--idle-exit", "0" }, "idle-exit", "'0'" },
	{ { "--idle-exit", "x" }, "idle-exit", "'x'" },
	{ { "--idle-exit", "86401" }, "idle-exit", "86401" },
	{ { "--proxy-protocol=1" }, "--proxy-protocol", "--proxy-protocol" },
	{ { "--proxy-from", "127.0.0.1" }, "--proxy-from", "--proxy-protocol" },
	{ { "--proxy-protocol", "--proxy-from", "10.0.0.1/8" }, "--proxy-from", "10.0.0.0/8" },
};

/* --keepalive: yes, or IDLE[,INTVL[,CNT]]; 0 stands for "the kernel's". */
static const struct {
	const char *arg;
	bool ok;
	unsigned idle, intvl, cnt;
} keepalives[] = {
	{ "yes", true, 0, 0, 0 },
	{ "60", true, 60, 0, 0 },
	{ "60,10", true, 60, 10, 0 },
	{ "60,10,5", true, 60, 10, 5 },
	{ "1,1,1", true, 1, 1, 1 },
	{ "1", true, 1, 0, 0 },
	{ "32767,32767,127", true, 32767, 32767, 127 },
	{ "", false, 0, 0, 0 },
	{ "off", true, 0, 0, 0 },	/* with keepalive false: see below */
	{ "0", false, 0, 0, 0 },
	{ "60,0", false, 0, 0, 0 },
	{ "32768", false, 0, 0, 0 },
	{ "60,10,128", false, 0, 0, 0 },
	{ "60,10,5,1", false, 0, 0, 0 },
	{ "60,", false, 0, 0, 0 },
	{ ",10", false, 0, 0, 0 },
	{ "60 ", false, 0, 0, 0 },
	{ "-1", false, 0, 0, 0 },
};

START_TEST(test_options_keepalive)
{
	const char *args[] = { "--keepalive", keepalives[_i].arg, NULL };
	struct options o;
	char err[256];
	enum opt_result r = parse(&o, args, err, sizeof err);

	if (!keepalives[_i].ok) {
		ck_assert_msg(r == OPT_USAGE, "'%s' accepted", keepalives[_i].arg);
		ck_assert_msg(strstr(err, "--keepalive") && !strchr(err, '\n'), "%s", err);
		return;
	}
	ck_assert_msg(r == OPT_OK, "'%s': %s", keepalives[_i].arg, err);
	ck_assert(o.keepalive == (strcmp(keepalives[_i].arg, "off") != 0));
	ck_assert_uint_eq(o.keepalive_idle, keepalives[_i].idle);
	ck_assert_uint_eq(o.keepalive_intvl, keepalives[_i].intvl);
	ck_assert_uint_eq(o.keepalive_cnt, keepalives[_i].cnt);
}
END_TEST

/* --refusal-message: escapes decoded, bounded, never empty. */
START_TEST(test_options_refusal_message)
{
	static const struct {
		const char *arg, *want;	/* want NULL: refused */
	} m[] = {
		{ "421 busy\\r\\n", "421 busy\r\n" },
		{ "a\\tb\\\\c\\n", "a\tb\\c\n" },
		{ "plain", "plain" },
		{ "", NULL },
		{ "bad\\x", NULL },
		{ "trailing\\", NULL },
	};

	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		const char *args[] = { "--refusal-message", m[i].arg, NULL };
		struct options o;
		char err[256];
		enum opt_result r = parse(&o, args, err, sizeof err);

		if (!m[i].want) {
			ck_assert_msg(r == OPT_USAGE && strstr(err, "--refusal-message"),
				      "'%s': %d %s", m[i].arg, r, err);
			continue;
		}
		ck_assert_msg(r == OPT_OK, "'%s': %s", m[i].arg, err);
		ck_assert_uint_eq(o.refusal_message_len, strlen(m[i].want));
		ck_assert(memcmp(o.refusal_message, m[i].want, strlen(m[i].want)) == 0);
		options_free(&o);
	}
}
END_TEST

START_TEST(test_options_refusal_message_long)
{
	/* Past parse()'s 64-byte words: an argv of its own. */
	static char big[600], prog[] = "acceptd", opt[] = "--refusal-message";
	char *av[] = { prog, opt, big, NULL };
	struct options o;
	char err[256];

	memset(big, 'x', sizeof big - 1);
	options_defaults(&o);
	ck_assert_int_eq(options_parse(&o, 3, av, err, sizeof err), OPT_USAGE);
	ck_assert_msg(strstr(err, "longer than 512"), "%s", err);
}
END_TEST

START_TEST(test_options_admission_usage)
{
	for (size_t i = 0; i < sizeof ausages / sizeof ausages[0]; i++) {
		const char *what = ausages[i].args[0];
		struct options o;
		char err[256];

		ck_assert_msg(parse(&o, ausages[i].args, err, sizeof err) == OPT_USAGE,
			      "%s %s: accepted", what, ausages[i].args[1] ? ausages[i].args[1] : "");
		ck_assert_msg(strstr(err, ausages[i].want1) && strstr(err, ausages[i].want2),
			      "%s: message \"%s\" lacks %s or %s", what, err,
			      ausages[i].want1, ausages[i].want2);
		ck_assert_msg(!strchr(err, '\n'), "%s: message \"%s\" is not one line", what, err);
		free_rules(&o);
	}
}
END_TEST

Suite *options_suite(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_options_parse_uint);
	tcase_add_test(tc, test_options_defaults);
	tcase_add_test(tc, test_options_good);
	tcase_add_test(tc, test_options_usage);
	tcase_add_test(tc, test_options_listen_limit);
	tcase_add_loop_test(tc, test_options_info, 0, sizeof infos / sizeof infos[0]);
	tcase_add_loop_test(tc, test_options_socket_owner, 0, sizeof owners / sizeof owners[0]);
	tcase_add_test(tc, test_options_socket_owner_unknown);
	tcase_add_test(tc, test_options_keys);
	tcase_add_test(tc, test_options_getopt);
	tcase_add_test(tc, test_options_help_rows);
	tcase_add_test(tc, test_options_admission_defaults);
	tcase_add_test(tc, test_options_admission_good);
	tcase_add_test(tc, test_options_acl_order);
	tcase_add_test(tc, test_options_admission_usage);
	tcase_add_test(tc, test_options_refusal_message);
	tcase_add_test(tc, test_options_refusal_message_long);
	tcase_add_loop_test(tc, test_options_keepalive, 0,
			    sizeof keepalives / sizeof keepalives[0]);
	suite_add_tcase(s, tc);
	return s;
}
