/* test_config.c - unit tests of src/config.c with src/options.c: real files
 * (written under a fresh temporary directory, removed again before any
 * assertion) read through options_parse("--config FILE" plus command-line
 * words).  Each settable key lands in its field; flags take
 * yes/no/true/false/on/off/1/0; repeatable keys keep their order; exec
 * values are split like a shell would (quotes, '#' inside); comments, blank
 * lines and CRLF line ends; the command line replaces the file's values
 * (all of them for a repeatable option; --allow/--deny, -v/-q and
 * PROGRAM/--builtin as groups); every error names FILE:LINE (or, for the
 * file itself, --config 'FILE'); options_free releases what a file left.
 *
 * Most rows compare the whole parse, described by describe() as the
 * settings that differ from the defaults, so a value landing in a wrong
 * field shows as an unexpected word. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "suites.h"

#define MAXARGS 24

/* One parse: the files it wrote are gone by the time it returns, the
 * options (which point into argbuf and into the file's text) stay. */
static struct {
	struct options o;
	enum opt_result r;
	char dir[512];
	char path[PATH_MAX];
	char err[2048];
	char argbuf[MAXARGS][256];
	char *argv[MAXARGS + 1];
} run;

/* A fresh directory for one file; its path in run.dir. */
static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(run.dir, sizeof run.dir, "%s/acceptd-conf-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ck_assert_msg(mkdtemp(run.dir) != NULL, "mkdtemp %s: %s", run.dir, strerror(errno));
}

/* Writes len bytes of text as a new file in run.dir; its path in run.path. */
static void write_file(const char *text, size_t len)
{
	int fd;

	snprintf(run.path, sizeof run.path, "%s/conf-XXXXXX", run.dir);
	fd = mkstemp(run.path);
	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);

		ck_assert_msg(n > 0, "write: %s", strerror(errno));
		off += (size_t)n;
	}
	ck_assert_int_eq(close(fd), 0);
}

static void remove_files(void)
{
	if (run.path[0])
		unlink(run.path);
	rmdir(run.dir);
}

/* "acceptd --config PATH ARGS..." from the defaults; an argument "@" is
 * the path again.  Leaves the result in run.  No file is left behind. */
static enum opt_result parse_path(const char *path, const char *const *args)
{
	int argc = 0;

	snprintf(run.argbuf[argc++], sizeof run.argbuf[0], "acceptd");
	snprintf(run.argbuf[argc++], sizeof run.argbuf[0], "--config");
	snprintf(run.argbuf[argc++], sizeof run.argbuf[0], "%s", path);
	for (; args && *args; args++) {
		ck_assert_int_lt(argc, MAXARGS);
		snprintf(run.argbuf[argc++], sizeof run.argbuf[0], "%s",
			 strcmp(*args, "@") == 0 ? path : *args);
	}
	for (int i = 0; i < argc; i++)
		run.argv[i] = run.argbuf[i];
	run.argv[argc] = NULL;
	run.err[0] = '\0';
	options_defaults(&run.o);
	run.r = options_parse(&run.o, argc, run.argv, run.err, sizeof run.err);
	return run.r;
}

static enum opt_result parse_bytes(const char *text, size_t len, const char *const *args)
{
	make_dir();
	write_file(text, len);
	parse_path(run.path, args);
	remove_files();
	return run.r;
}

static enum opt_result parse_text(const char *text, const char *const *args)
{
	return parse_bytes(text, strlen(text), args);
}

/* pattern with each '@' replaced by run.path. */
static const char *expand(const char *pattern)
{
	static char out[2048];
	size_t o = 0;

	for (const char *p = pattern; *p && o + 1 < sizeof out; p++) {
		if (*p == '@')
			o += (size_t)snprintf(out + o, sizeof out - o, "%s", run.path);
		else
			out[o++] = *p;
		if (o >= sizeof out)
			o = sizeof out - 1;
	}
	out[o] = '\0';
	return out;
}

static void add(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used && used + 1 < len)
		buf[used++] = ' ', buf[used] = '\0';
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

static void add_nets(char *buf, size_t len, const char *name, const struct cidr *nets,
		     const struct acl_rule *acl, unsigned n)
{
	char list[4096] = "", net[64];
	size_t o = 0;

	for (unsigned i = 0; i < n && o < sizeof list; i++) {
		cidr_format(acl ? &acl[i].net : &nets[i], net, sizeof net);
		o += (size_t)snprintf(list + o, sizeof list - o, "%s%s%s", i ? "," : "",
				      acl ? (acl[i].allow ? "+" : "-") : "", net);
	}
	add(buf, len, "%s=%s", name, list);
}

/* The settings of o that differ from the defaults, in the order of
 * acceptd --help: "listen=A,B builtin=daytime exec=<w1><w 2> max-conns=5
 * ... acl=+net,-net ... user=U".  builtin=echo is the default without a
 * PROGRAM and is not shown. */
static const char *describe(const struct options *o)
{
	static char d[8192];
	char words[2048] = "";

	d[0] = '\0';
	for (int i = 0; i < o->n_listen; i++) {
		if (i == 0)
			add(d, sizeof d, "listen=%s", o->listen[i]);
		else
			snprintf(d + strlen(d), sizeof d - strlen(d), ",%s", o->listen[i]);
	}
	if (o->inetd)
		add(d, sizeof d, "inetd");
	if ((o->program && o->builtin != BUILTIN_NONE) ||
	    (!o->program && o->builtin != BUILTIN_ECHO))
		add(d, sizeof d, "builtin=%s", builtin_name(o->builtin));
	if (o->program) {
		for (char **w = o->program; *w; w++)
			snprintf(words + strlen(words), sizeof words - strlen(words), "<%s>", *w);
		add(d, sizeof d, "exec=%s", words);
	}
	if (o->max_conns != 100)
		add(d, sizeof d, "max-conns=%u", o->max_conns);
	if (o->workers)
		add(d, sizeof d, "workers=%u", o->workers);
	if (o->nodelay)
		add(d, sizeof d, "nodelay");
	if (o->verbosity)
		add(d, sizeof d, o->verbosity > 0 ? "verbose" : "quiet");
	if (o->socket_mode != -1)
		add(d, sizeof d, "socket-mode=%04o", (unsigned)o->socket_mode);
	if (o->socket_user)
		add(d, sizeof d, "socket-user=%s", o->socket_user);
	if (o->socket_group)
		add(d, sizeof d, "socket-group=%s", o->socket_group);
	if (o->backlog != SOMAXCONN)
		add(d, sizeof d, "backlog=%u", o->backlog);
	if (o->reuseport)
		add(d, sizeof d, "reuseport");
	if (o->drain_secs != 10)
		add(d, sizeof d, "drain=%u", o->drain_secs);
	if (o->fd_passing)
		add(d, sizeof d, "fd-passing");
	if (o->max_per_source)
		add(d, sizeof d, "max-per-ip=%u", o->max_per_source);
	if (o->prefix4 != 32 || o->prefix6 != 128)
		add(d, sizeof d, "source-prefix=%u,%u", o->prefix4, o->prefix6);
	if (o->rate_n || o->rate_secs)
		add(d, sizeof d, "rate=%u/%u", o->rate_n, o->rate_secs);
	if (o->n_acl)
		add_nets(d, sizeof d, "acl", NULL, o->acl, o->n_acl);
	if (o->rules)
		add(d, sizeof d, "rules=%s", o->rules);
	if (o->timeout_secs)
		add(d, sizeof d, "timeout=%u", o->timeout_secs);
	if (o->idle_exit_secs)
		add(d, sizeof d, "idle-exit=%u", o->idle_exit_secs);
	if (o->proxy_protocol)
		add(d, sizeof d, "proxy-protocol");
	if (o->n_proxy_from)
		add_nets(d, sizeof d, "proxy-from", o->proxy_from, NULL, o->n_proxy_from);
	if (o->user)
		add(d, sizeof d, "user=%s", o->user);
	if (o->per_peer)
		add(d, sizeof d, "datagram=per-peer");
	for (unsigned i = 0; i < o->n_rlimits; i++)
		add(d, sizeof d, "rlimit=%s:%llu:%llu", contain_rlimit_name(o->rlimits[i].resource),
		    o->rlimits[i].soft, o->rlimits[i].hard);
	if (o->nice_set)
		add(d, sizeof d, "nice=%d", o->nice);
	if (o->umask >= 0)
		add(d, sizeof d, "umask=%04o", (unsigned)o->umask);
	if (o->cgroup)
		add(d, sizeof d, "cgroup");
	for (unsigned i = 0; i < o->n_cg_limits; i++)
		add(d, sizeof d, "cgroup-limit=<%s>:<%s>", o->cg_limits[i].key,
		    o->cg_limits[i].value);
	return d;
}

/* want: the description of the parse, or "!" and the exact error (each
 * '@' the file's path), or "~" and a part of the error. */
struct row {
	const char *text;
	const char *args[10];
	const char *want;
};

static void check_row(const char *what, size_t i, const struct row *row)
{
	enum opt_result r = parse_text(row->text, row->args);
	char err[sizeof run.err], got[8192];

	snprintf(err, sizeof err, "%s", run.err);
	snprintf(got, sizeof got, "%s", r == OPT_OK ? describe(&run.o) : "");
	options_free(&run.o);
	if (row->want[0] != '!' && row->want[0] != '~') {
		ck_assert_msg(r == OPT_OK, "%s row %zu: refused: %s", what, i, err);
		ck_assert_msg(strcmp(got, row->want) == 0, "%s row %zu:\n got \"%s\"\nwant \"%s\"",
			      what, i, got, row->want);
		return;
	}
	ck_assert_msg(r == OPT_USAGE, "%s row %zu: accepted (%s), want error %s", what, i, got,
		      row->want);
	ck_assert_msg(!strchr(err, '\n'), "%s row %zu: \"%s\" is not one line", what, i, err);
	if (row->want[0] == '!')
		ck_assert_msg(strcmp(err, expand(row->want + 1)) == 0,
			      "%s row %zu:\n got \"%s\"\nwant \"%s\"", what, i, err,
			      expand(row->want + 1));
	else
		ck_assert_msg(strstr(err, expand(row->want + 1)) != NULL,
			      "%s row %zu: \"%s\" lacks \"%s\"", what, i, err,
			      expand(row->want + 1));
}

static void check_rows(const char *what, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_row(what, i, &rows[i]);
}

#define CHECK_ROWS(rows) check_rows(#rows, rows, sizeof rows / sizeof rows[0])

/* --- every settable key, once, in its field ------------------------------ */

static const struct row keys[] = {
	{ "", { NULL }, "" },
	{ "listen = 127.0.0.1:7\n", { NULL }, "listen=127.0.0.1:7" },
	{ "listen = [::1]:0\nlisten = unix:/run/a b.sock\nlisten = 8080\n", { NULL },
	  "listen=[::1]:0,unix:/run/a b.sock,8080" },
	{ "inetd = yes\n", { NULL }, "inetd" },
	{ "rules = /etc/acceptd/tcp.smtp\n", { NULL }, "rules=/etc/acceptd/tcp.smtp" },
	{ "datagram = per-peer\nexec = /bin/cat\n", { NULL }, "exec=</bin/cat> datagram=per-peer" },
	{ "datagram = wait\nexec = /bin/cat\n", { NULL }, "exec=</bin/cat>" },
	{ "rlimit = cpu=5\nrlimit = nproc=10:20\nnice = 10\numask = 077\n", { NULL },
	  "rlimit=cpu:5:5 rlimit=nproc:10:20 nice=10 umask=0077" },
	{ "cgroup = yes\ncgroup-limit = memory.max=64M\ncgroup-limit = cpu.max=50000 100000\n",
	  { NULL }, "cgroup cgroup-limit=<memory.max>:<64M> cgroup-limit=<cpu.max>:<50000 100000>" },
	{ "builtin = daytime\n", { NULL }, "builtin=daytime" },
	{ "builtin = echo\n", { NULL }, "" },
	{ "builtin = discard\n", { NULL }, "builtin=discard" },
	{ "exec = /bin/cat -u\n", { NULL }, "exec=</bin/cat><-u>" },
	{ "max-conns = 5\n", { NULL }, "max-conns=5" },
	{ "max-conns = 1000000\n", { NULL }, "max-conns=1000000" },
	{ "workers = 3\n", { NULL }, "workers=3" },
	{ "nodelay = yes\n", { NULL }, "nodelay" },
	{ "verbose = yes\n", { NULL }, "verbose" },
	{ "quiet = yes\n", { NULL }, "quiet" },
	{ "socket-mode = 0660\n", { NULL }, "socket-mode=0660" },
	{ "socket-mode = 600\n", { NULL }, "socket-mode=0600" },
	{ "socket-user = www-data\n", { NULL }, "socket-user=www-data" },
	{ "socket-group = 33\n", { NULL }, "socket-group=33" },
	{ "socket-group = www\nsocket-user = nobody\n", { NULL },
	  "socket-user=nobody socket-group=www" },
	{ "backlog = 7\n", { NULL }, "backlog=7" },
	{ "reuseport = yes\n", { NULL }, "reuseport" },
	{ "drain = 0\n", { NULL }, "drain=0" },
	{ "drain = 86400\n", { NULL }, "drain=86400" },
	{ "fd-passing = yes\nexec = worker\n", { NULL }, "exec=<worker> fd-passing" },
	{ "fd-passing = yes\nworkers = 2\nexec = w\n", { NULL },
	  "exec=<w> workers=2 fd-passing" },
	{ "max-per-ip = 4\n", { NULL }, "max-per-ip=4" },
	{ "max-per-source = 5\n", { NULL }, "max-per-ip=5" },
	{ "source-prefix = 24,64\n", { NULL }, "source-prefix=24,64" },
	{ "rate = 20/1\n", { NULL }, "rate=20/1" },
	{ "allow = 10.0.0.0/8\n", { NULL }, "acl=+10.0.0.0/8" },
	{ "deny = all\n", { NULL }, "acl=-all" },
	{ "timeout = 30\n", { NULL }, "timeout=30" },
	{ "idle-exit = 60\n", { NULL }, "idle-exit=60" },
	{ "proxy-protocol = yes\n", { NULL }, "proxy-protocol" },
	{ "proxy-protocol = yes\nproxy-from = 127.0.0.1\n", { NULL },
	  "proxy-protocol proxy-from=127.0.0.1/32" },
	{ "user = nobody\n", { NULL }, "user=nobody" },
	{ "user = nobody:nogroup\n", { NULL }, "user=nobody:nogroup" },
	/* all of them in one file, mixed with comments and blank lines */
	{ "# acceptd.conf\n"
	  "listen = 127.0.0.1:9\n"
	  "\n"
	  "builtin = chargen\n"
	  "max-conns = 50\n"
	  "workers = 2\n"
	  "nodelay = yes\n"
	  "verbose = on\n"
	  "socket-mode = 0600\n"
	  "backlog = 16\n"
	  "reuseport = true\n"
	  "drain = 3\n"
	  "max-per-ip = 9\n"
	  "\t# admission\n"
	  "source-prefix = 16,48\n"
	  "rate = 5/2\n"
	  "deny = 10.9.0.0/16\n"
	  "allow = 10.0.0.0/8\n"
	  "deny = all\n"
	  "timeout = 11\n"
	  "idle-exit = 12\n"
	  "proxy-protocol = 1\n"
	  "proxy-from = ::1\n"
	  "proxy-from = 192.168.0.0/16\n"
	  "user = daemon\n", { NULL },
	  "listen=127.0.0.1:9 builtin=chargen max-conns=50 workers=2 nodelay verbose "
	  "socket-mode=0600 backlog=16 reuseport drain=3 max-per-ip=9 source-prefix=16,48 "
	  "rate=5/2 acl=-10.9.0.0/16,+10.0.0.0/8,-all timeout=11 idle-exit=12 "
	  "proxy-protocol proxy-from=::1/128,192.168.0.0/16 user=daemon" },
};

START_TEST(test_config_keys)
{
	CHECK_ROWS(keys);
}
END_TEST

/* --- flags: yes/no and their synonyms; "no" is the default --------------- */

static const struct row flags[] = {
	{ "nodelay = yes\n", { NULL }, "nodelay" },
	{ "nodelay = true\n", { NULL }, "nodelay" },
	{ "nodelay = on\n", { NULL }, "nodelay" },
	{ "nodelay = 1\n", { NULL }, "nodelay" },
	{ "nodelay = no\n", { NULL }, "" },
	{ "nodelay = false\n", { NULL }, "" },
	{ "nodelay = off\n", { NULL }, "" },
	{ "nodelay = 0\n", { NULL }, "" },
	{ "inetd = no\nreuseport = off\nfd-passing = false\nproxy-protocol = 0\n"
	  "verbose = no\n", { NULL }, "" },
	{ "quiet = no\n", { NULL }, "" },
	{ "verbose = on\n", { NULL }, "verbose" },
	{ "quiet = on\n", { NULL }, "quiet" },
	/* two names, one setting: both in one file is the mistake of a key
	 * given twice, whatever they say */
	{ "verbose = yes\nquiet = yes\n", { NULL }, "!@:2: quiet: excludes verbose (line 1)" },
	{ "quiet = yes\nverbose = no\n", { NULL }, "!@:2: verbose: excludes quiet (line 1)" },
	{ "nodelay = Yes\n", { NULL }, "!@:1: nodelay 'Yes': want yes or no" },
	{ "nodelay = YES\n", { NULL }, "!@:1: nodelay 'YES': want yes or no" },
	{ "reuseport = y\n", { NULL }, "!@:1: reuseport 'y': want yes or no" },
	{ "inetd = 2\n", { NULL }, "!@:1: inetd '2': want yes or no" },
	{ "quiet = yes please\n", { NULL }, "!@:1: quiet 'yes please': want yes or no" },
	{ "proxy-protocol = enable\n", { NULL },
	  "!@:1: proxy-protocol 'enable': want yes or no" },
	{ "fd-passing = \"yes\"\n", { NULL }, "!@:1: fd-passing '\"yes\"': want yes or no" },
};

START_TEST(test_config_flags)
{
	CHECK_ROWS(flags);
}
END_TEST

/* --- exec: words like a shell's, without expansions ---------------------- */

static const struct row execs[] = {
	{ "exec = /bin/sh -c 'echo #1'\n", { NULL }, "exec=</bin/sh><-c><echo #1>" },
	{ "exec = /bin/cat # not a comment\n", { NULL },
	  "exec=</bin/cat><#><not><a><comment>" },
	{ "exec=prog\n", { NULL }, "exec=<prog>" },
	{ "exec = \t prog \t a \t\n", { NULL }, "exec=<prog><a>" },
	{ "exec = prog 'a b' \"c d\" e\\ f\n", { NULL }, "exec=<prog><a b><c d><e f>" },
	{ "exec = prog '' \"\"\n", { NULL }, "exec=<prog><><>" },
	{ "exec = prog 'it'\\''s' \"say \\\"hi\\\"\"\n", { NULL },
	  "exec=<prog><it's><say \"hi\">" },
	{ "exec = prog '\\n' \"\\$HOME\" $HOME ~ *\n", { NULL },
	  "exec=<prog><\\n><$HOME><$HOME><~><*>" },
	{ "exec = prog a'b'\"c\"d\n", { NULL }, "exec=<prog><abcd>" },
	{ "exec = prog --listen 80 -c 1\n", { NULL }, "exec=<prog><--listen><80><-c><1>" },
	{ "exec = prog key=value\n", { NULL }, "exec=<prog><key=value>" },
	{ "exec = /usr/bin/env A=1 prog\r\n", { NULL }, "exec=</usr/bin/env><A=1><prog>" },
	{ "exec = prog 'a\tb'\n", { NULL }, "exec=<prog><a\tb>" },
	{ "exec = prog 'unterminated\n", { NULL }, "!@:1: exec: unterminated ' quote" },
	{ "\nexec = prog \"unterminated\n", { NULL }, "!@:2: exec: unterminated \" quote" },
	{ "exec = prog a\\\n", { NULL }, "!@:1: exec: trailing backslash" },
	{ "exec = ''\n", { NULL }, "~empty" },
	{ "exec = a\nexec = b\n", { NULL }, "!@:2: exec: given twice (first on line 1)" },
	{ "exec = a\n# exec = b\n", { NULL }, "exec=<a>" },
};

START_TEST(test_config_exec)
{
	CHECK_ROWS(execs);
}
END_TEST

/* The words of exec are kept by the options, not copied: program is the
 * file's argv (conf_argv), and a command-line PROGRAM leaves it unset. */
START_TEST(test_config_exec_words_kept)
{
	static const char *const none[] = { NULL };
	static const char *const prog[] = { "--", "/bin/true", "x", NULL };
	static const char *const blt[] = { "-b", "time", NULL };

	ck_assert_int_eq(parse_text("exec = /bin/echo a 'b c'\n", none), OPT_OK);
	ck_assert_ptr_nonnull(run.o.conf_argv);
	ck_assert_ptr_eq(run.o.program, run.o.conf_argv);
	ck_assert_str_eq(run.o.program[0], "/bin/echo");
	ck_assert_str_eq(run.o.program[1], "a");
	ck_assert_str_eq(run.o.program[2], "b c");
	ck_assert_ptr_null(run.o.program[3]);
	ck_assert_int_eq(run.o.builtin, BUILTIN_NONE);
	options_free(&run.o);

	ck_assert_int_eq(parse_text("exec = /bin/echo a\n", prog), OPT_OK);
	ck_assert_ptr_null(run.o.conf_argv);
	ck_assert_ptr_eq(run.o.program, &run.argv[4]);
	ck_assert_str_eq(run.o.program[0], "/bin/true");
	options_free(&run.o);

	ck_assert_int_eq(parse_text("exec = /bin/echo a\n", blt), OPT_OK);
	ck_assert_ptr_null(run.o.conf_argv);
	ck_assert_ptr_null(run.o.program);
	ck_assert_int_eq(run.o.builtin, BUILTIN_TIME);
	options_free(&run.o);
}
END_TEST

/* 255 words fit, 256 do not. */
START_TEST(test_config_exec_word_limit)
{
	static char text[4096];
	static const char *const none[] = { NULL };
	size_t o = (size_t)snprintf(text, sizeof text, "exec = prog");

	for (int i = 1; i < 255; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, " w%d", i);
	snprintf(text + o, sizeof text - o, "\n");
	ck_assert_int_eq(parse_text(text, none), OPT_OK);
	ck_assert_str_eq(run.o.program[254], "w254");
	ck_assert_ptr_null(run.o.program[255]);
	options_free(&run.o);
	snprintf(text + o, sizeof text - o, " w255\n");
	ck_assert_int_eq(parse_text(text, none), OPT_USAGE);
	ck_assert_str_eq(run.err, expand("@:1: exec: too many words (at most 255)"));
	options_free(&run.o);
}
END_TEST

/* --- layout: comments, blank lines, CRLF, no final newline --------------- */

static const struct row layout[] = {
	{ "\n\n\n", { NULL }, "" },
	{ "# only a comment", { NULL }, "" },
	{ "   \t\n\t\n", { NULL }, "" },
	{ "max-conns = 5", { NULL }, "max-conns=5" },		/* no final newline */
	{ "max-conns=5\nbacklog\t=\t9\n", { NULL }, "max-conns=5 backlog=9" },
	{ "  max-conns   =   5   \n", { NULL }, "max-conns=5" },
	{ "#max-conns = 5\n  # max-conns = 6\n\t#\n", { NULL }, "" },
	{ "#nosuch = key\n# = \n#=\n", { NULL }, "" },
	/* a '#' after a value is part of it */
	{ "max-conns = 5 # five\n", { NULL }, "!@:1: max-conns '5 # five': not a number" },
	{ "listen = 127.0.0.1:7 # here\n", { NULL }, "~@:1: listen '127.0.0.1:7 # here': " },
	/* CRLF: the CR is not part of the value, and lines count the same */
	{ "max-conns = 5\r\nbacklog = 9\r\n", { NULL }, "max-conns=5 backlog=9" },
	{ "\r\n# comment\r\n\r\nuser = nobody\r\n", { NULL }, "user=nobody" },
	{ "listen = unix:/x\r\nlisten = 127.0.0.1:1\r\n", { NULL },
	  "listen=unix:/x,127.0.0.1:1" },
	{ "nodelay = yes\r\n", { NULL }, "nodelay" },
	{ "allow = 10.0.0.0/8 \r\ndeny = all\r\n", { NULL }, "acl=+10.0.0.0/8,-all" },
	{ "max-conns = 5\r\n\r\n# x\r\nmax-conns = 6\r\n", { NULL },
	  "!@:4: max-conns: given twice (first on line 1)" },
	{ "\r\n\r\nnosuch = 1\r\n", { NULL },
	  "!@:3: unknown key 'nosuch' (keys are the long options and exec; see acceptd.conf(5))" },
	{ "max-conns = 5\r", { NULL }, "max-conns=5" },
	/* only \n ends a line: a lone CR inside one is not a line end */
	{ "max-conns = 5\rbacklog = 9\n", { NULL }, "!@:1: max-conns '5\rbacklog = 9': not a number" },
};

START_TEST(test_config_layout)
{
	CHECK_ROWS(layout);
}
END_TEST

/* --- repeatable keys keep their order; others may not repeat ------------- */

static const struct row repeats[] = {
	{ "listen = 1\nlisten = 2\nlisten = 3\n", { NULL }, "listen=1,2,3" },
	{ "allow = 10.0.0.1\ndeny = 10.0.0.0/8\nallow = ::1\ndeny = all\n", { NULL },
	  "acl=+10.0.0.1/32,-10.0.0.0/8,+::1/128,-all" },
	{ "proxy-protocol = yes\nproxy-from = 10.0.0.1\nproxy-from = 10.0.0.2\n", { NULL },
	  "proxy-protocol proxy-from=10.0.0.1/32,10.0.0.2/32" },
	{ "listen = 1\nlisten = 1\n", { NULL }, "listen=1,1" },
	{ "max-conns = 5\nmax-conns = 5\n", { NULL },
	  "!@:2: max-conns: given twice (first on line 1)" },
	{ "user = a\n\n# c\n\nuser = b\n", { NULL }, "!@:5: user: given twice (first on line 1)" },
	{ "nodelay = no\nnodelay = yes\n", { NULL },
	  "!@:2: nodelay: given twice (first on line 1)" },
	{ "nodelay = yes\nnodelay = no\n", { NULL },
	  "!@:2: nodelay: given twice (first on line 1)" },
	{ "builtin = echo\nbuiltin = time\n", { NULL },
	  "!@:2: builtin: given twice (first on line 1)" },
	{ "source-prefix = 24,64\nrate = 1/1\nsource-prefix = 24,64\n", { NULL },
	  "!@:3: source-prefix: given twice (first on line 1)" },
	{ "timeout = 1\nidle-exit = 1\nmax-per-ip = 1\nworkers = 1\nsocket-mode = 0600\n"
	  "backlog = 1\ndrain = 1\nrate = 1/1\ntimeout = 2\n", { NULL },
	  "!@:9: timeout: given twice (first on line 1)" },
	/* the first duplicate is the one reported */
	{ "drain = 1\nbacklog = 1\nbacklog = 2\ndrain = 2\n", { NULL },
	  "!@:3: backlog: given twice (first on line 2)" },
	/* a duplicate is a mistake even when the command line overrides it */
	{ "max-conns = 5\nmax-conns = 6\n", { "-c", "7", NULL },
	  "!@:2: max-conns: given twice (first on line 1)" },
	{ "exec = a\nexec = b\n", { "-b", "time", NULL },
	  "!@:2: exec: given twice (first on line 1)" },
};

START_TEST(test_config_repeats)
{
	CHECK_ROWS(repeats);
}
END_TEST

/* --- the command line replaces the file's values ------------------------- */

static const struct row replaces[] = {
	/* one value */
	{ "max-conns = 5\n", { "-c", "7", NULL }, "max-conns=7" },
	{ "datagram = per-peer\nexec = /bin/cat\n", { "--datagram", "wait", NULL },
	  "exec=</bin/cat>" },
	{ "rlimit = cpu=5\nnice = 1\n", { "--rlimit", "core=0", "--nice", "2", NULL },
	  "rlimit=core:0:0 nice=2" },
	{ "cgroup = yes\ncgroup-limit = pids.max=5\n", { "--cgroup-limit", "memory.max=1G", NULL },
	  "cgroup cgroup-limit=<memory.max>:<1G>" },
	/* --rules is the ACL's other form: either replaces the other */
	{ "allow = 10.0.0.1\ndeny = all\n", { "--rules", "/r", NULL }, "rules=/r" },
	{ "rules = /r\n", { "--deny", "all", NULL }, "acl=-all" },
	{ "rules = /r\n", { "--rules", "/s", NULL }, "rules=/s" },
	{ "max-conns = 5\n", { "--max-conns=7", NULL }, "max-conns=7" },
	{ "max-conns = 5\n", { "-w", "2", NULL }, "max-conns=5 workers=2" },
	{ "user = a\n", { "-u", "b", NULL }, "user=b" },
	{ "socket-user = a\n", { "--socket-user", "b", NULL }, "socket-user=b" },
	{ "socket-group = a\n", { "--socket-group=b", NULL }, "socket-group=b" },
	/* each its own setting: replacing one keeps the other */
	{ "socket-user = a\nsocket-group = g\n", { "--socket-user", "b", NULL },
	  "socket-user=b socket-group=g" },
	{ "rate = 1/1\nsource-prefix = 8,8\n", { "--rate", "2/2", NULL },
	  "source-prefix=8,8 rate=2/2" },
	/* a value the command line replaces is not used, but still checked:
	 * a broken line is found now, not the day the command line changes */
	{ "max-conns = 9\n", { "-c", "7", NULL }, "max-conns=7" },
	/* an option's two names are one setting */
	{ "max-per-ip = 4\n", { "--max-per-source", "5", NULL }, "max-per-ip=5" },
	{ "max-per-source = 4\n", { "--max-per-ip=6", NULL }, "max-per-ip=6" },
	{ "max-per-ip = 4\n", { "-C", "7", NULL }, "max-per-ip=7" },
	{ "max-per-ip = x\n", { "-C", "7", NULL }, "!@:1: max-per-ip 'x': not a number" },
	/* where the sockets come from: -i and --listen replace each other */
	{ "listen = 80\nlisten = 81\n", { "-i", NULL }, "inetd" },
	{ "inetd = yes\n", { "-l", "80", NULL }, "listen=80" },
	{ "max-conns = banana\n", { "-c", "7", NULL }, "!@:1: max-conns 'banana': not a number" },
	{ "exec = prog 'unterminated\n", { "-b", "time", NULL },
	  "!@:1: exec: unterminated ' quote" },
	{ "allow = 10.0.0.1/8\n", { "--deny", "all", NULL }, "~@:1: allow '10.0.0.1/8'" },
	/* flags: the command line can only turn one on */
	{ "nodelay = no\n", { "-D", NULL }, "nodelay" },
	{ "nodelay = yes\n", { "-D", NULL }, "nodelay" },
	{ "nodelay = yes\n", { "-c", "3", NULL }, "max-conns=3 nodelay" },
	/* -v and -q are one setting */
	{ "verbose = yes\n", { "-q", NULL }, "quiet" },
	{ "quiet = yes\n", { "-v", NULL }, "verbose" },
	{ "quiet = yes\n", { "--verbose", NULL }, "verbose" },
	{ "verbose = yes\n", { "--quiet", NULL }, "quiet" },
	{ "quiet = yes\n", { "-c", "2", NULL }, "max-conns=2 quiet" },
	/* listen: all of the file's, for all of the command line's */
	{ "listen = 1\nlisten = 2\n", { "-l", "3", NULL }, "listen=3" },
	{ "listen = 1\n", { "-l", "3", "--listen", "4", NULL }, "listen=3,4" },
	{ "listen = 1\nlisten = 2\n", { "-c", "9", NULL }, "listen=1,2 max-conns=9" },
	/* --allow and --deny are one list: either replaces both */
	{ "allow = 10.0.0.1\ndeny = all\n", { "--allow", "::1", NULL }, "acl=+::1/128" },
	{ "allow = 10.0.0.1\ndeny = all\n", { "--deny", "10.0.0.2", NULL }, "acl=-10.0.0.2/32" },
	{ "deny = 10.0.0.3\n", { "--allow", "all", NULL }, "acl=+all" },
	{ "allow = 10.0.0.3\n", { "--deny", "all", NULL }, "acl=-all" },
	{ "allow = 10.0.0.1\ndeny = all\n", { "--deny", "1.0.0.0/8", "--allow", "all", NULL },
	  "acl=-1.0.0.0/8,+all" },
	/* ...and proxy-from is a list of its own, both ways */
	{ "proxy-protocol = yes\nproxy-from = 10.0.0.1\nallow = 10.0.0.2\n",
	  { "--proxy-from", "::1", NULL }, "acl=+10.0.0.2/32 proxy-protocol proxy-from=::1/128" },
	{ "proxy-protocol = yes\nproxy-from = 10.0.0.1\nallow = 10.0.0.2\n",
	  { "--deny", "::1", NULL }, "acl=-::1/128 proxy-protocol proxy-from=10.0.0.1/32" },
	/* what serves: PROGRAM and --builtin replace exec and builtin */
	{ "exec = /bin/cat\n", { "-b", "daytime", NULL }, "builtin=daytime" },
	{ "exec = /bin/cat\n", { "--builtin=echo", NULL }, "" },
	{ "builtin = chargen\n", { "--", "/bin/true", "-x", NULL }, "exec=</bin/true><-x>" },
	{ "builtin = chargen\n", { "/bin/true", NULL }, "exec=</bin/true>" },
	{ "exec = /bin/cat\n", { "/bin/true", NULL }, "exec=</bin/true>" },
	{ "builtin = chargen\n", { "-b", "time", NULL }, "builtin=time" },
	{ "exec = /bin/cat\nbuiltin = time\n", { "-b", "echo", NULL }, "" },
	{ "exec = /bin/cat\nbuiltin = time\n", { "/bin/true", NULL }, "exec=</bin/true>" },
	/* "--" with no PROGRAM after it names none: the file's exec stands */
	{ "exec = /bin/cat\n", { "--", NULL }, "exec=</bin/cat>" },
	/* PROGRAM's own options are not acceptd's */
	{ "max-conns = 5\n", { "/bin/cat", "-c", "7", NULL }, "exec=</bin/cat><-c><7> max-conns=5" },
	/* the file fills in what the command line left */
	{ "exec = /bin/cat\nfd-passing = yes\n", { "-w", "3", NULL },
	  "exec=</bin/cat> workers=3 fd-passing" },
	{ "workers = 3\n", { "--fd-passing", "/bin/cat", NULL },
	  "exec=</bin/cat> workers=3 fd-passing" },
	{ "proxy-from = 10.0.0.1\n", { "--proxy-protocol", NULL },
	  "proxy-protocol proxy-from=10.0.0.1/32" },
	{ "proxy-protocol = yes\n", { "--proxy-from", "10.0.0.1", NULL },
	  "proxy-protocol proxy-from=10.0.0.1/32" },
	/* the config file's path comes from the command line only */
	{ "", { "--config", "@", NULL }, "~--config: given twice" },
};

START_TEST(test_config_replaces)
{
	CHECK_ROWS(replaces);
}
END_TEST

/* --- errors: FILE:LINE: reason, one line --------------------------------- */

static const struct row errors[] = {
	/* the line itself */
	{ "listen\n", { NULL }, "!@:1: missing '=' (expected KEY = VALUE)" },
	{ "\nlisten 80\n", { NULL }, "!@:2: missing '=' (expected KEY = VALUE)" },
	{ "= 80\n", { NULL }, "!@:1: empty key" },
	{ "allow = 10.0.0.1\nrules = /r\n", { NULL }, "!@:2: rules: excludes allow (line 1)" },
	{ "datagram = sometimes\n", { NULL }, "!@:1: datagram 'sometimes': want wait or per-peer" },
	{ "rlimit = rss=1\n", { NULL }, "~@:1: rlimit 'rss=1'" },
	{ "nice = 99\n", { NULL }, "~@:1: nice '99'" },
	{ "umask = 9\n", { NULL }, "~@:1: umask '9'" },
	{ "cgroup = yes\ncgroup-limit = pids\n", { NULL }, "~@:2: cgroup-limit 'pids'" },
	{ "cgroup-limit = pids.max=5\n", { NULL }, "!--cgroup-limit pids.max: needs --cgroup" },
	{ "datagram = per-peer\n", { NULL }, "~--datagram per-peer: starts a PROGRAM per peer" },
	{ "datagram = per-peer\nlisten = unix-dgram:/run/x\nexec = /bin/cat\n", { NULL },
	  "~--datagram per-peer connects a socket to each peer" },
	{ "rules = /r\nallow = 10.0.0.1\n", { NULL }, "!@:2: allow: excludes rules (line 1)" },
	{ "deny = all\nrules = /r\n", { NULL }, "!@:2: rules: excludes deny (line 1)" },
	{ "", { "--rules", "/r", "--deny", "all", NULL }, "~--rules and --deny exclude" },
	{ "max conns = 5\n", { NULL }, "!@:1: blank inside key" },
	{ "Max-conns = 5\n", { NULL }, "!@:1: bad character in key (keys are a-z, 0-9 and '-')" },
	{ "max_conns = 5\n", { NULL }, "!@:1: bad character in key (keys are a-z, 0-9 and '-')" },
	{ "-c = 5\n", { NULL }, "!@:1: key must start with a letter" },
	{ "--max-conns = 5\n", { NULL }, "!@:1: key must start with a letter" },
	{ "max-conns =\n", { NULL }, "!@:1: empty value for 'max-conns'" },
	{ "# a\n\nmax-conns =   \r\n", { NULL }, "!@:3: empty value for 'max-conns'" },
	/* the key */
	{ "nosuch = 1\n", { NULL },
	  "!@:1: unknown key 'nosuch' (keys are the long options and exec; see acceptd.conf(5))" },
	{ "c = 5\n", { NULL },
	  "!@:1: unknown key 'c' (keys are the long options and exec; see acceptd.conf(5))" },
	{ "max-conn = 5\n", { NULL },
	  "!@:1: unknown key 'max-conn' (keys are the long options and exec; see acceptd.conf(5))" },
	{ "program = /bin/cat\n", { NULL },
	  "!@:1: unknown key 'program' (keys are the long options and exec; see acceptd.conf(5))" },
	{ "config = /etc/acceptd.conf\n", { NULL }, "!@:1: 'config' cannot be set in a config file" },
	{ "help = yes\n", { NULL }, "!@:1: 'help' cannot be set in a config file" },
	{ "version = yes\n", { NULL }, "!@:1: 'version' cannot be set in a config file" },
	/* an unknown key is an error even when the command line gives much */
	{ "nosuch = 1\n", { "-c", "3", "-b", "time", NULL },
	  "~@:1: unknown key 'nosuch'" },
	/* the value: the option's own message, named as the file names it */
	{ "max-conns = 0\n", { NULL }, "!@:1: max-conns '0': out of range (1-1000000)" },
	{ "max-conns = -1\n", { NULL }, "!@:1: max-conns '-1': not a number" },
	{ "max-conns = 1000001\n", { NULL }, "!@:1: max-conns '1000001': out of range (1-1000000)" },
	{ "workers = 4097\n", { NULL }, "!@:1: workers '4097': out of range (1-4096)" },
	{ "backlog = 65536\n", { NULL }, "!@:1: backlog '65536': out of range (1-65535)" },
	{ "drain = 1s\n", { NULL }, "!@:1: drain '1s': not a number" },
	{ "max-per-ip = 0\n", { NULL }, "!@:1: max-per-ip '0': out of range (1-1000000)" },
	{ "max-per-source = 0\n", { NULL },
	  "!@:1: max-per-source '0': out of range (1-1000000)" },
	/* one setting under its two names */
	{ "max-per-ip = 4\nmax-per-source = 5\n", { NULL },
	  "!@:2: max-per-source: excludes max-per-ip (line 1)" },
	{ "timeout = 86401\n", { NULL }, "!@:1: timeout '86401': out of range (1-86400)" },
	{ "idle-exit = x\n", { NULL }, "!@:1: idle-exit 'x': not a number" },
	{ "socket-mode = 0999\n", { NULL },
	  "!@:1: socket-mode '0999': not an octal mode like 0660" },
	{ "socket-user = a\nsocket-user = b\n", { NULL },
	  "!@:2: socket-user: given twice (first on line 1)" },
	{ "socket-group =\n", { NULL }, "!@:1: empty value for 'socket-group'" },
	/* an abstract socket has no file to own */
	{ "listen = unix:@x\nsocket-user = nobody\n", { NULL },
	  "~--socket-user: 'unix:" },
	{ "listen = unix:@x\n", { "--socket-group", "g", NULL },
	  "~x' is an abstract socket, which has no file, no owner and no mode" },
	{ "source-prefix = 33,64\n", { NULL },
	  "!@:1: source-prefix '33,64': want V4LEN,V6LEN with V4LEN 0-32 and V6LEN 0-128, "
	  "as in 24,64" },
	{ "rate = 5\n", { NULL },
	  "!@:1: rate '5': want N/SECS with N 1-1000000 and SECS 1-86400, as in 20/1" },
	{ "listen = 1.2.3:80\n", { NULL }, "!@:1: listen '1.2.3:80': not a valid IPv4 address" },
	{ "listen = 65536\n", { NULL },
	  "!@:1: listen '65536': port must be a number from 0 to 65535" },
	{ "listen = unix:\n", { NULL }, "!@:1: listen 'unix:': empty unix socket path" },
	{ "builtin = nosuch\n", { NULL },
	  "!@:1: builtin 'nosuch': unknown (echo, discard, chargen, daytime, time)" },
	{ "allow = 10.0.0.1/8\n", { NULL },
	  "!@:1: allow '10.0.0.1/8': host bits set (did you mean 10.0.0.0/8?)" },
	{ "allow = all\ndeny = localhost\n", { NULL }, "~@:2: deny 'localhost': " },
	{ "proxy-protocol = yes\nproxy-from = ALL\n", { NULL }, "~@:2: proxy-from 'ALL': " },
	/* exec and builtin in the file: the exec line, naming builtin's */
	{ "builtin = time\n\nexec = /bin/cat\n", { NULL },
	  "!@:3: exec and builtin (line 1) exclude each other" },
	{ "exec = /bin/cat\nbuiltin = time\n", { NULL },
	  "!@:1: exec and builtin (line 2) exclude each other" },
	/* the first bad line is the one reported; later ones are not read */
	{ "max-conns = 0\nnosuch = 1\n", { NULL }, "!@:1: max-conns '0': out of range (1-1000000)" },
	{ "max-conns = 5\nlisten 80\nnosuch = 1\n", { NULL },
	  "!@:2: missing '=' (expected KEY = VALUE)" },
	/* a line error beats a command-line error found later */
	{ "nosuch = 1\n", { "-b", "echo", "/bin/cat", NULL }, "~@:1: unknown key 'nosuch'" },
	/* settings that do not go together, wherever each came from */
	{ "workers = 2\nexec = /bin/cat\n", { NULL }, "~--workers with PROGRAM '/bin/cat'" },
	{ "fd-passing = yes\n", { NULL }, "~--fd-passing needs a PROGRAM" },
	{ "proxy-from = 10.0.0.1\n", { NULL }, "~--proxy-from '10.0.0.1/32': needs --proxy-protocol" },
	{ "inetd = yes\nlisten = 80\n", { NULL }, "!@:2: listen: excludes inetd (line 1)" },
	{ "listen = 80\ninetd = yes\n", { NULL }, "!@:2: inetd: excludes listen (line 1)" },
	{ "listen = 80\ninetd = yes\n", { NULL }, "!@:2: inetd: excludes listen (line 1)" },

	{ "builtin = time\n", { "--fd-passing", NULL }, "~--fd-passing needs a PROGRAM" },
};

START_TEST(test_config_errors)
{
	CHECK_ROWS(errors);
}
END_TEST

/* At most ACCEPTD_MAX_LISTEN_OPTS listen lines. */
START_TEST(test_config_listen_limit)
{
	static char text[ACCEPTD_MAX_LISTEN_OPTS * 32];
	static const char *const none[] = { NULL };
	size_t o = 0;
	char want[64];

	for (int i = 0; i < ACCEPTD_MAX_LISTEN_OPTS; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, "listen = %d\n", 1000 + i);
	ck_assert_int_eq(parse_text(text, none), OPT_OK);
	ck_assert_int_eq(run.o.n_listen, ACCEPTD_MAX_LISTEN_OPTS);
	options_free(&run.o);
	snprintf(text + o, sizeof text - o, "listen = 9999\n");
	ck_assert_int_eq(parse_text(text, none), OPT_USAGE);
	snprintf(want, sizeof want, "@:%d: listen: at most %d addresses",
		 ACCEPTD_MAX_LISTEN_OPTS + 1, ACCEPTD_MAX_LISTEN_OPTS);
	ck_assert_str_eq(run.err, expand(want));
	options_free(&run.o);
}
END_TEST

/* A key name of any length is quoted cut, in a message of one line. */
START_TEST(test_config_long_key)
{
	static char text[600];
	static const char *const none[] = { NULL };

	memset(text, 'k', 500);
	snprintf(text + 500, sizeof text - 500, " = 1\n");
	ck_assert_int_eq(parse_text(text, none), OPT_USAGE);
	ck_assert_msg(strstr(run.err, ":1: unknown key 'kkkkkkkkkk") != NULL, "%s", run.err);
	ck_assert_msg(strstr(run.err, "(keys are the long options") != NULL, "%s", run.err);
	ck_assert_uint_lt(strlen(run.err), 300);
	options_free(&run.o);
}
END_TEST

/* --- the file itself: --config 'FILE': reason ---------------------------- */

START_TEST(test_config_file_missing)
{
	static const char *const none[] = { NULL };
	char path[PATH_MAX + 16], want[PATH_MAX + 64];

	make_dir();
	snprintf(path, sizeof path, "%s/nosuch.conf", run.dir);
	run.path[0] = '\0';
	parse_path(path, none);
	remove_files();
	ck_assert_int_eq(run.r, OPT_USAGE);
	snprintf(want, sizeof want, "--config '%s': No such file or directory", path);
	ck_assert_str_eq(run.err, want);
	options_free(&run.o);
}
END_TEST

START_TEST(test_config_file_not_dir)
{
	static const char *const none[] = { NULL };
	char path[PATH_MAX + 16], want[PATH_MAX + 64];

	make_dir();
	write_file("max-conns = 5\n", 14);
	snprintf(path, sizeof path, "%s/x", run.path);	/* below a regular file */
	parse_path(path, none);
	remove_files();
	ck_assert_int_eq(run.r, OPT_USAGE);
	snprintf(want, sizeof want, "--config '%s': Not a directory", path);
	ck_assert_str_eq(run.err, want);
	options_free(&run.o);
}
END_TEST

START_TEST(test_config_file_directory)
{
	static const char *const none[] = { NULL };
	char want[PATH_MAX + 64];

	make_dir();
	run.path[0] = '\0';
	parse_path(run.dir, none);
	remove_files();
	ck_assert_int_eq(run.r, OPT_USAGE);
	snprintf(want, sizeof want, "--config '%s': not a regular file", run.dir);
	ck_assert_str_eq(run.err, want);
	options_free(&run.o);
}
END_TEST

START_TEST(test_config_file_device)
{
	static const char *const none[] = { NULL };

	ck_assert_int_eq(parse_path("/dev/null", none), OPT_USAGE);
	ck_assert_str_eq(run.err, "--config '/dev/null': not a regular file");
	options_free(&run.o);
}
END_TEST

/* A FIFO with a writer (so opening it cannot block; see the report on a
 * FIFO without one) is not a regular file either. */
START_TEST(test_config_file_fifo)
{
	static const char *const none[] = { NULL };
	char want[PATH_MAX + 64];
	int keep;

	make_dir();
	snprintf(run.path, sizeof run.path, "%s/fifo", run.dir);
	ck_assert_int_eq(mkfifo(run.path, 0600), 0);
	keep = open(run.path, O_RDWR | O_NONBLOCK);
	ck_assert_int_ge(keep, 0);
	ck_assert_int_eq(write(keep, "max-conns = 5\n", 14), 14);
	parse_path(run.path, none);
	close(keep);
	remove_files();
	ck_assert_int_eq(run.r, OPT_USAGE);
	snprintf(want, sizeof want, "--config '%s': not a regular file", run.path);
	ck_assert_str_eq(run.err, want);
	options_free(&run.o);
}
END_TEST

START_TEST(test_config_file_unreadable)
{
	static const char *const none[] = { NULL };
	char want[PATH_MAX + 64];

	if (geteuid() == 0)
		return;		/* root reads it anyway; the other cases run */
	make_dir();
	write_file("max-conns = 5\n", 14);
	ck_assert_int_eq(chmod(run.path, 0), 0);
	parse_path(run.path, none);
	remove_files();
	ck_assert_int_eq(run.r, OPT_USAGE);
	snprintf(want, sizeof want, "--config '%s': Permission denied", run.path);
	ck_assert_str_eq(run.err, want);
	options_free(&run.o);
}
END_TEST

/* 1 MiB is the most a file may hold: exactly that parses, a byte more is
 * refused before any line is read. */
START_TEST(test_config_file_size)
{
	static const char *const none[] = { NULL };
	const size_t max = 1 << 20;
	char *text = malloc(max + 1);

	ck_assert_ptr_nonnull(text);
	memset(text, '\n', max + 1);
	memcpy(text, "max-conns = 5\n", 14);
	memcpy(text + max - 12, "backlog = 9\n", 12);
	ck_assert_int_eq(parse_bytes(text, max, none), OPT_OK);
	ck_assert_str_eq(describe(&run.o), "max-conns=5 backlog=9");
	options_free(&run.o);
	ck_assert_int_eq(parse_bytes(text, max + 1, none), OPT_USAGE);
	ck_assert_str_eq(run.err, expand("--config '@': larger than 1048576 bytes"));
	options_free(&run.o);
	free(text);
}
END_TEST

START_TEST(test_config_file_nul)
{
	static const char *const none[] = { NULL };
	static const char text[] = "max-conns = 5\n\0\nbacklog = 9\n";

	ck_assert_int_eq(parse_bytes(text, sizeof text - 1, none), OPT_USAGE);
	ck_assert_str_eq(run.err,
			 expand("--config '@': contains a NUL byte (not a text file?)"));
	options_free(&run.o);
	/* even as the very last byte */
	ck_assert_int_eq(parse_bytes("max-conns = 5\n", 15, none), OPT_USAGE);
	ck_assert_str_eq(run.err,
			 expand("--config '@': contains a NUL byte (not a text file?)"));
	options_free(&run.o);
}
END_TEST

/* The file is read whole at parse time: what it says then is what counts,
 * and no fd stays open. */
START_TEST(test_config_file_read_once)
{
	static const char *const none[] = { NULL };
	int before = open("/dev/null", O_RDONLY), after;

	ck_assert_int_ge(before, 0);
	close(before);
	ck_assert_int_eq(parse_text("listen = 127.0.0.1:1\nexec = /bin/cat -n\n", none), OPT_OK);
	after = open("/dev/null", O_RDONLY);
	ck_assert_int_eq(after, before);
	close(after);
	/* the values point into the text the options keep */
	ck_assert_ptr_nonnull(run.o.conf_text);
	ck_assert(run.o.listen[0] >= run.o.conf_text &&
		  run.o.listen[0] < run.o.conf_text + 64);
	ck_assert_str_eq(describe(&run.o), "listen=127.0.0.1:1 exec=</bin/cat><-n>");
	options_free(&run.o);
}
END_TEST

/* --- options_free -------------------------------------------------------- */

/* Everything a file can allocate, freed (ASan's leak check sees the
 * rest), and the pointers cleared so a second free is harmless; after an
 * error part-way too. */
START_TEST(test_config_free)
{
	static const char *const none[] = { NULL };
	static const char *const ok_text =
		"listen = 127.0.0.1:1\n"
		"allow = 10.0.0.0/8\n"
		"deny = all\n"
		"proxy-protocol = yes\n"
		"proxy-from = ::1\n"
		"exec = /bin/cat -u\n";

	ck_assert_int_eq(parse_text(ok_text, none), OPT_OK);
	ck_assert(run.o.acl && run.o.proxy_from && run.o.conf_text && run.o.conf_argv);
	options_free(&run.o);
	ck_assert_ptr_null(run.o.acl);
	ck_assert_ptr_null(run.o.proxy_from);
	ck_assert_ptr_null(run.o.conf_text);
	ck_assert_ptr_null(run.o.conf_argv);
	options_free(&run.o);

	/* an error after every kind of allocation */
	ck_assert_int_eq(parse_text("exec = /bin/cat\nallow = all\nproxy-protocol = yes\n"
				    "proxy-from = ::1\nnosuch = 1\n", none), OPT_USAGE);
	options_free(&run.o);
	/* an error found after the file was applied */
	ck_assert_int_eq(parse_text("allow = all\nproxy-from = ::1\nexec = /bin/cat\n",
				    none), OPT_USAGE);
	options_free(&run.o);
	/* command-line rules and file rules together */
	{
		static const char *const args[] = { "--proxy-protocol", "--proxy-from", "::1",
			"--allow", "all", NULL };

		ck_assert_int_eq(parse_text("deny = all\nproxy-from = 10.0.0.1\n", args),
				 OPT_OK);
		ck_assert_str_eq(describe(&run.o), "acl=+all proxy-protocol proxy-from=::1/128");
		options_free(&run.o);
	}
	/* the file error paths */
	ck_assert_int_eq(parse_bytes("a\0", 2, none), OPT_USAGE);
	options_free(&run.o);
	ck_assert_int_eq(parse_path("/dev/null", none), OPT_USAGE);
	options_free(&run.o);
}
END_TEST

/* A reload parses the same command line again (reload.c's validate):
 * twice in one process, the same result, nothing carried over. */
START_TEST(test_config_parse_twice)
{
	static const char *const args[] = { "-c", "3", NULL };
	char first[8192];

	make_dir();
	{
		static const char text[] = "listen = 127.0.0.1:1\nallow = all\nexec = /bin/cat\n";

		write_file(text, sizeof text - 1);
	}
	ck_assert_int_eq(parse_path(run.path, args), OPT_OK);
	snprintf(first, sizeof first, "%s", describe(&run.o));
	options_free(&run.o);
	ck_assert_int_eq(parse_path(run.path, args), OPT_OK);
	remove_files();
	ck_assert_str_eq(describe(&run.o), first);
	ck_assert_str_eq(first, "listen=127.0.0.1:1 exec=</bin/cat> max-conns=3 acl=+all");
	options_free(&run.o);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);	/* the 1 MiB files under ASan */
	tcase_add_test(tc, test_config_keys);
	tcase_add_test(tc, test_config_flags);
	tcase_add_test(tc, test_config_exec);
	tcase_add_test(tc, test_config_exec_words_kept);
	tcase_add_test(tc, test_config_exec_word_limit);
	tcase_add_test(tc, test_config_layout);
	tcase_add_test(tc, test_config_repeats);
	tcase_add_test(tc, test_config_replaces);
	tcase_add_test(tc, test_config_errors);
	tcase_add_test(tc, test_config_listen_limit);
	tcase_add_test(tc, test_config_long_key);
	tcase_add_test(tc, test_config_file_missing);
	tcase_add_test(tc, test_config_file_not_dir);
	tcase_add_test(tc, test_config_file_directory);
	tcase_add_test(tc, test_config_file_device);
	tcase_add_test(tc, test_config_file_fifo);
	tcase_add_test(tc, test_config_file_unreadable);
	tcase_add_test(tc, test_config_file_size);
	tcase_add_test(tc, test_config_file_nul);
	tcase_add_test(tc, test_config_file_read_once);
	tcase_add_test(tc, test_config_free);
	tcase_add_test(tc, test_config_parse_twice);
	suite_add_tcase(s, tc);
	return s;
}
