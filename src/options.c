/*
 * options.c - the command line, parsed strictly and without side effects.
 *
 * Every value is checked here, before any socket exists, so a typo costs a
 * one-line message and exit 2 rather than a half-started daemon.  Numbers
 * take no sign, no blanks, no trailing junk and never wrap.  Nothing here
 * prints except --help and --version; errors go back to the caller as text.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/un.h>

#include "core.h"

#define MAX_CONNS_LIMIT 1000000
#define MAX_BACKLOG 65535
#define MAX_WORKERS 4096

#define MAX_SECS (24 * 3600)
#define MAX_RATE 1000000
#define MAX_RULES 100000	/* --allow/--deny/--proxy-from, together */

/* The codes of options without a short letter; a short letter is its own. */
enum { OPT_SOCKET_MODE = 256, OPT_BACKLOG, OPT_REUSEPORT, OPT_DRAIN, OPT_FD_PASSING,
	OPT_SOURCE_PREFIX, OPT_RATE, OPT_ALLOW, OPT_DENY, OPT_IDLE_EXIT,
	OPT_PROXY_PROTOCOL, OPT_PROXY_FROM, OPT_CONFIG, OPT_KEEPALIVE, OPT_REFUSAL_MESSAGE, OPT_RULES, OPT_DATAGRAM, OPT_RLIMIT, OPT_NICE, OPT_UMASK,
	OPT_CGROUP, OPT_CGROUP_LIMIT,
	OPT_SOCKET_USER, OPT_SOCKET_GROUP };

#define OF_FILE 1u	/* a config file may set it (as KEY = VALUE) */
#define OF_REPEAT 2u	/* each use adds to a list: given twice is no mistake */

/* One row per option: the one place an option is declared.  getopt's
 * longopts and shortopts, the config keys (a key is a row's index) and
 * --help are made from it; one_opt, by code, checks and stores the value.
 * Rows are in the order of --help. */
struct opt_def {
	const char *name;	/* the long name, and the config key */
	const char *alias;	/* a second long name (an old one), or NULL */
	int code;		/* the short letter, or an OPT_* (no short form) */
	const char *arg;	/* the value's name in --help; NULL: a flag
				 * (no value; yes/no in a file) */
	unsigned flags;		/* OF_* */
	int group;		/* the code of the option this one is one setting
				 * with (replaced together, excluded in one file);
				 * 0: its own */
	const char *help;	/* --help: one or more lines, '\n' between */
};

static const struct opt_def opts[] = {
	{ "listen", NULL, 'l', "ADDR", OF_FILE | OF_REPEAT, 0,
	  "listen on ADDR (repeatable): PORT, IPV4:PORT,\n"
	  "[IPV6]:PORT, HOST:PORT or unix:PATH (default 8080)" },
	/* where the sockets come from: -i or --listen */
	{ "inetd", NULL, 'i', NULL, OF_FILE, 'l',
	  "take the socket from fd 0 (inetd wait or nowait)" },
	/* what serves the connections; PROGRAM (a file's exec) is in its group */
	{ "builtin", NULL, 'b', "NAME", OF_FILE, 0,
	  "echo, discard, chargen, daytime or time (default echo)" },
	{ "max-conns", NULL, 'c', "N", OF_FILE, 0,
	  "at most N connections at once (default 100)" },
	{ "workers", NULL, 'w', "N", OF_FILE, 0,
	  "worker processes for a built-in or with --fd-passing\n"
	  "(default: one per CPU)" },
	{ "fd-passing", NULL, OPT_FD_PASSING, NULL, OF_FILE, 0,
	  "run PROGRAM as N persistent workers that receive\n"
	  "connections on fd 3 (see acceptd-workers(7))" },
	{ "max-per-source", "max-per-ip", 'C', "N", OF_FILE, 0,
	  "at most N connections at once from one source\n"
	  "(an address, a --source-prefix network or a\n"
	  "local user; --max-per-ip is its old name)" },
	{ "source-prefix", NULL, OPT_SOURCE_PREFIX, "V4,V6", OF_FILE, 0,
	  "one source is an IPv4 /V4 or IPv6 /V6\n"
	  "network (default 32,128: one address)" },
	{ "rate", NULL, OPT_RATE, "N/SECS", OF_FILE, 0,
	  "at most N new connections per SECS from one source" },
	{ "refusal-message", NULL, OPT_REFUSAL_MESSAGE, "TEXT", OF_FILE, 0,
	  "written to a client over -C or --rate before the\n"
	  "close (\\r \\n \\t \\\\ understood; default: none)" },
	/* one ordered list, which must stay whole */
	{ "allow", NULL, OPT_ALLOW, "CIDR|all", OF_FILE | OF_REPEAT, 0,
	  "allow these clients (repeatable; first match wins)" },
	{ "deny", NULL, OPT_DENY, "CIDR|all", OF_FILE | OF_REPEAT, OPT_ALLOW,
	  "deny these clients (repeatable; no match: allowed)" },
	{ "rules", NULL, OPT_RULES, "FILE", OF_FILE, OPT_ALLOW,
	  "per-client rules instead (acceptd.rules(5), tcprules\n"
	  "text): allow/deny, variables, PROGRAM, -C, --rate" },
	{ "datagram", NULL, OPT_DATAGRAM, "MODE", OF_FILE, 0,
	  "how PROGRAM serves datagram sockets: wait (it gets\n"
	  "the socket; default) or per-peer (a handler each\n"
	  "peer, its socket connected to it, as udpsvd)" },
	{ "timeout", NULL, 't', "SECS", OF_FILE, 0,
	  "end a connection's handler after SECS" },
	{ "idle-exit", NULL, OPT_IDLE_EXIT, "SECS", OF_FILE, 0,
	  "exit once no connection was open for SECS" },
	{ "proxy-protocol", NULL, OPT_PROXY_PROTOCOL, NULL, OF_FILE, 0,
	  "connections start with a PROXY header (v1 or v2)" },
	{ "proxy-from", NULL, OPT_PROXY_FROM, "CIDR", OF_FILE | OF_REPEAT, 0,
	  "only these may send one (repeatable)" },
	/* what every handler and worker starts with */
	{ "rlimit", NULL, OPT_RLIMIT, "NAME=VALUE", OF_FILE | OF_REPEAT, 0,
	  "a resource limit for handlers and workers (repeatable):\n"
	  "as, cpu, data, fsize, nofile, nproc, core, stack or\n"
	  "memlock = N[K|M|G|T] or unlimited, or SOFT:HARD" },
	{ "nice", NULL, OPT_NICE, "N", OF_FILE, 0,
	  "their nice value, -20 to 19" },
	{ "umask", NULL, OPT_UMASK, "MODE", OF_FILE, 0,
	  "their umask, as 0027" },
	{ "cgroup", NULL, OPT_CGROUP, NULL, OF_FILE, 0,
	  "start each in a cgroup v2 of its own, in the one\n"
	  "delegated to acceptd (systemd: Delegate=yes), and\n"
	  "end all it started with it (cgroup.kill)" },
	{ "cgroup-limit", NULL, OPT_CGROUP_LIMIT, "KEY=VALUE", OF_FILE | OF_REPEAT, 0,
	  "write VALUE to KEY in each one's cgroup (repeatable):\n"
	  "memory.max=64M, pids.max=32, cpu.max=\"50000 100000\"" },
	{ "user", NULL, 'u', "USER[:GROUP]", OF_FILE, 0,
	  "run as USER once the listeners exist" },
	/* What a file may not set: where the file is, and what only a person
	 * asks. */
	{ "config", NULL, OPT_CONFIG, "FILE", 0, 0,
	  "read options from FILE (acceptd.conf(5)); the\n"
	  "command line replaces the file's values" },
	{ "nodelay", NULL, 'D', NULL, OF_FILE, 0,
	  "set TCP_NODELAY on accepted connections" },
	{ "keepalive", NULL, OPT_KEEPALIVE, "SPEC", OF_FILE, 0,
	  "SO_KEEPALIVE on accepted TCP connections, so a\n"
	  "vanished peer frees its -c/-C slot: yes (the\n"
	  "kernel's timers), no, or IDLE[,INTVL[,CNT]]" },
	{ "backlog", NULL, OPT_BACKLOG, "N", OF_FILE, 0,
	  "listen backlog of sockets acceptd creates" },
	{ "reuseport", NULL, OPT_REUSEPORT, NULL, OF_FILE, 0,
	  "set SO_REUSEPORT on sockets acceptd creates" },
	{ "socket-mode", NULL, OPT_SOCKET_MODE, "MODE", OF_FILE, 0,
	  "permissions of unix sockets acceptd creates" },
	{ "socket-user", NULL, OPT_SOCKET_USER, "USER", OF_FILE, 0,
	  "owner of unix sockets acceptd creates (and its\n"
	  "group, unless --socket-group)" },
	{ "socket-group", NULL, OPT_SOCKET_GROUP, "GROUP", OF_FILE, 0,
	  "group of unix sockets acceptd creates" },
	{ "drain", NULL, OPT_DRAIN, "SECS", OF_FILE, 0,
	  "on SIGTERM, wait this long for connections (default 10)" },
	/* one verbosity */
	{ "verbose", NULL, 'v', NULL, OF_FILE, 0, "log every connection" },
	{ "quiet", NULL, 'q', NULL, OF_FILE, 'v', "log only warnings and errors" },
	{ "help", NULL, 'h', NULL, 0, 0, "show this help and exit" },
	{ "version", NULL, 'V', NULL, 0, 0, "show the version and exit" },
};

#define N_OPTS (sizeof opts / sizeof opts[0])

/* A key is a bit of options.cmdline_keys. */
_Static_assert(N_OPTS <= OPTIONS_MAX_KEYS, "more options than bits in cmdline_keys");

/* getopt's view of the table, made by getopt_tables. */
#define N_LONGOPTS (2 * N_OPTS + 1)	/* a name and an alias a row, the end */
#define N_SHORTOPTS (2 + 2 * N_OPTS + 1)	/* "+:", "x:" a row, the NUL */

static int add_longopt(struct option *lo, int n, const char *name, const struct opt_def *d)
{
	lo[n].name = name;
	lo[n].has_arg = d->arg ? required_argument : no_argument;
	lo[n].flag = NULL;
	lo[n].val = d->code;
	return n + 1;
}

/* Leading '+' in shortopts: stop at PROGRAM so its own options stay its
 * own; ':' next: a missing value is told apart from an unknown option. */
static void getopt_tables(struct option *lo, char *so)
{
	int n = 0, k = 0;

	so[k++] = '+';
	so[k++] = ':';
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt_def *d = &opts[i];

		n = add_longopt(lo, n, d->name, d);
		if (d->alias)
			n = add_longopt(lo, n, d->alias, d);
		if (d->code < 256) {
			so[k++] = (char)d->code;
			if (d->arg)
				so[k++] = ':';
		}
	}
	memset(&lo[n], 0, sizeof lo[n]);
	so[k] = '\0';
}

void options_defaults(struct options *o)
{
	memset(o, 0, sizeof *o);
	o->max_conns = 100;
	o->backlog = SOMAXCONN;
	o->drain_secs = 10;
	o->socket_mode = -1;
	o->umask = -1;
	o->socket_uid = (uid_t)-1;
	o->socket_gid = (gid_t)-1;
	o->prefix4 = 32;
	o->prefix6 = 128;
}

/* Decimal, 0..max, digits only.  Returns 0 or -1 (errno ERANGE when the
 * digits are fine but the value is too large). */
int options_parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (!s || !*s)
		return errno = EINVAL, -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return errno = EINVAL, -1;
		/* digit > max first, or max - digit wraps (max below 9) */
		if ((unsigned long long)(*p - '0') > max ||
		    v > (max - (unsigned long long)(*p - '0')) / 10)
			return errno = ERANGE, -1;
		v = v * 10 + (unsigned long long)(*p - '0');
	}
	*out = v;
	return 0;
}

static int num_opt(const char *name, const char *arg, unsigned long long min,
		   unsigned long long max, unsigned *out, char *err, size_t errlen)
{
	unsigned long long v;

	if (options_parse_uint(arg, max, &v) < 0 || v < min) {
		if (errno == EINVAL && (!*arg || arg[strspn(arg, "0123456789")] != '\0'))
			snprintf(err, errlen, "%s '%s': not a number", name, arg);
		else
			snprintf(err, errlen, "%s '%s': out of range (%llu-%llu)",
				 name, arg, min, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int mode_opt(const char *arg, int *out, char *err, size_t errlen)
{
	char *end;
	long v;

	if (!*arg || arg[strspn(arg, "01234567")] != '\0' || strlen(arg) > 4) {
		snprintf(err, errlen, "--socket-mode '%s': not an octal mode like 0660", arg);
		return -1;
	}
	v = strtol(arg, &end, 8);
	*out = (int)v;
	return 0;
}

/* Splits "A<sep>B" into its first part (copied into first) and a pointer
 * to the second; -1 when sep is missing or A does not fit. */
static int split_two(const char *arg, char sep, char *first, size_t firstlen,
		     const char **second)
{
	const char *at = strchr(arg, sep);

	if (!at || (size_t)(at - arg) >= firstlen)
		return -1;
	memcpy(first, arg, (size_t)(at - arg));
	first[at - arg] = '\0';
	*second = at + 1;
	return 0;
}

/* "V4LEN,V6LEN", e.g. 24,64: how much of an address is one source.
 * Prefix lengths follow the CIDR rule: no leading zeros. */
static int prefix_opt(const char *arg, struct options *o, char *err, size_t errlen)
{
	char v4[8];
	const char *v6;
	unsigned long long a, b;

	if (split_two(arg, ',', v4, sizeof v4, &v6) < 0 ||
	    options_parse_uint(v4, 32, &a) < 0 || options_parse_uint(v6, 128, &b) < 0 ||
	    (v4[0] == '0' && v4[1]) || (v6[0] == '0' && v6[1])) {
		snprintf(err, errlen, "--source-prefix '%s': want V4LEN,V6LEN with "
			 "V4LEN 0-32 and V6LEN 0-128, as in 24,64", arg);
		return -1;
	}
	o->prefix4 = (unsigned)a;
	o->prefix6 = (unsigned)b;
	return 0;
}

/* --refusal-message: TEXT with \r, \n, \t and \\ turned into their
 * bytes (a shell or a config line cannot easily carry a CR); at most
 * 512 bytes, so one non-blocking send takes it whole. */
static int message_opt(const char *arg, struct options *o, char *err, size_t errlen)
{
	char out[512];
	size_t n = 0;

	for (const char *p = arg; *p; p++) {
		char c = *p;

		if (c == '\\') {
			c = *++p;
			c = c == 'r' ? '\r' : c == 'n' ? '\n' : c == 't' ? '\t' : c == '\\' ? '\\' : 0;
			if (!c) {
				snprintf(err, errlen, "--refusal-message '%s': only \\r, \\n, \\t "
					 "and \\\\ may follow a backslash", arg);
				return -1;
			}
		}
		if (n == sizeof out) {
			snprintf(err, errlen, "--refusal-message: longer than %zu bytes",
				 sizeof out);
			return -1;
		}
		out[n++] = c;
	}
	if (n == 0) {
		snprintf(err, errlen, "--refusal-message: empty (leave it out for none)");
		return -1;
	}
	free(o->refusal_message);
	o->refusal_message = malloc(n);
	if (!o->refusal_message)
		return snprintf(err, errlen, "out of memory"), -1;
	memcpy(o->refusal_message, out, n);
	o->refusal_message_len = n;
	return 0;
}

/* --keepalive: "yes" (the kernel's timers), or IDLE[,INTVL[,CNT]], each
 * in the range TCP_KEEPIDLE/INTVL/CNT take (seconds, probes). */
static int keepalive_opt(const char *arg, struct options *o, char *err, size_t errlen)
{
	static const unsigned max[3] = { 32767, 32767, 127 };
	unsigned v[3] = { 0, 0, 0 };
	const char *p = arg;
	int n = 0;

	/* Not "1" nor "0": those are seconds. */
	if (strcmp(arg, "yes") == 0 || strcmp(arg, "on") == 0 || strcmp(arg, "true") == 0 ||
	    strcmp(arg, "no") == 0 || strcmp(arg, "off") == 0 || strcmp(arg, "false") == 0) {
		o->keepalive = arg[0] == 'y' || arg[1] == 'n' || arg[0] == 't';
		o->keepalive_idle = o->keepalive_intvl = o->keepalive_cnt = 0;
		return 0;
	}
	/* Up to three numbers, a comma between each two and nowhere else. */
	for (bool more = true; more && n < 3;) {
		char word[8];
		size_t len = strcspn(p, ",");
		unsigned long long x;

		if (len == 0 || len >= sizeof word)
			break;
		memcpy(word, p, len);
		word[len] = '\0';
		if (options_parse_uint(word, max[n], &x) < 0 || x < 1)
			break;
		v[n++] = (unsigned)x;
		p += len;
		more = *p == ',';
		p += more;
	}
	if (n == 0 || *p != '\0' || p[-1] == ',') {
		snprintf(err, errlen, "--keepalive '%s': want yes, or IDLE[,INTVL[,CNT]] with "
			 "IDLE and INTVL 1-32767 s and CNT 1-127, as in 60,10,5", arg);
		return -1;
	}
	o->keepalive = true;
	o->keepalive_idle = v[0];
	o->keepalive_intvl = v[1];
	o->keepalive_cnt = v[2];
	return 0;
}

/* "N/SECS": N new connections per SECS seconds from one source. */
static int rate_opt(const char *arg, struct options *o, char *err, size_t errlen)
{
	char n[16];
	const char *secs;
	unsigned long long a, b;

	if (split_two(arg, '/', n, sizeof n, &secs) < 0 ||
	    options_parse_uint(n, MAX_RATE, &a) < 0 || a < 1 ||
	    options_parse_uint(secs, MAX_SECS, &b) < 0 || b < 1) {
		snprintf(err, errlen, "--rate '%s': want N/SECS with N 1-%d and SECS 1-%d, "
			 "as in 20/1", arg, MAX_RATE, MAX_SECS);
		return -1;
	}
	o->rate_n = (unsigned)a;
	o->rate_secs = (unsigned)b;
	return 0;
}

/* An abstract unix name (unix:@NAME) has no file, so no mode and no
 * owner: anyone on the host can connect.  --socket-mode, --socket-user or
 * --socket-group there would be a promise not kept. */
static enum opt_result check_abstract(const struct options *o, char *err, size_t errlen)
{
	const char *opt = o->socket_mode >= 0 ? "--socket-mode" :
			  o->socket_user ? "--socket-user" :
			  o->socket_group ? "--socket-group" : NULL;

	for (int i = 0; i < o->n_listen && opt; i++) {
		struct addr_spec spec;
		char why[160];

		if (addr_parse(o->listen[i], &spec, why, sizeof why) == 0 &&
		    spec.kind == ADDR_UNIX && ((const struct sockaddr_un *)&spec.ss)->sun_path[0] == '\0') {
			snprintf(err, errlen, "%s: '%s' is an abstract socket, which has no file, "
				 "no owner and no mode (anyone on the host can connect)", opt,
				 o->listen[i]);
			return OPT_USAGE;
		}
	}
	return OPT_OK;
}

static int rule_opt(const char *name, const char *arg, struct options *o, bool allow,
		    char *err, size_t errlen)
{
	struct cidr net;
	char why[160];

	if (cidr_parse(arg, &net, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s '%s': %s", name, arg, why);
		return -1;
	}
	if (net.family == AF_UNIX && strcmp(name, "--proxy-from") != 0) {
		snprintf(err, errlen, "%s '%s': unix peers are named in --proxy-from only", name,
			 arg);
		return -1;
	}
	if (o->n_acl + o->n_proxy_from >= MAX_RULES) {
		snprintf(err, errlen, "%s: at most %d rules", name, MAX_RULES);
		return -1;
	}
	if (strcmp(name, "--proxy-from") == 0) {
		struct cidr *p = realloc(o->proxy_from, (o->n_proxy_from + 1) * sizeof *p);

		if (!p)
			return snprintf(err, errlen, "out of memory"), -1;
		o->proxy_from = p;
		p[o->n_proxy_from++] = net;
	} else {
		struct acl_rule *r = realloc(o->acl, (o->n_acl + 1) * sizeof *r);

		if (!r)
			return snprintf(err, errlen, "out of memory"), -1;
		o->acl = r;
		r[o->n_acl].allow = allow;
		r[o->n_acl++].net = net;
	}
	return 0;
}

static enum opt_result one_opt(struct options *o, int c, const char *arg,
			       const char *optname, char *err, size_t errlen)
{
	struct addr_spec spec;
	char why[160];

	switch (c) {
	case 'l':
		if (addr_parse(arg, &spec, why, sizeof why) < 0) {
			snprintf(err, errlen, "--listen '%s': %s", arg, why);
			return OPT_USAGE;
		}
		if (o->n_listen == ACCEPTD_MAX_LISTEN_OPTS) {
			snprintf(err, errlen, "--listen: at most %d addresses",
				 ACCEPTD_MAX_LISTEN_OPTS);
			return OPT_USAGE;
		}
		o->listen[o->n_listen++] = arg;
		return OPT_OK;
	case 'i': o->inetd = true; return OPT_OK;
	case 'b':
		if (builtin_lookup(arg, &o->builtin) < 0) {
			snprintf(err, errlen,
				 "--builtin '%s': unknown (echo, discard, chargen, daytime, time)", arg);
			return OPT_USAGE;
		}
		return OPT_OK;
	case 'c':
		return num_opt("--max-conns", arg, 1, MAX_CONNS_LIMIT, &o->max_conns,
			       err, errlen) ? OPT_USAGE : OPT_OK;
	case 'w':
		return num_opt("--workers", arg, 1, MAX_WORKERS, &o->workers,
			       err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_BACKLOG:
		return num_opt("--backlog", arg, 1, MAX_BACKLOG, &o->backlog,
			       err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_DRAIN:
		return num_opt("--drain", arg, 0, MAX_SECS, &o->drain_secs,
			       err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_SOCKET_MODE:
		return mode_opt(arg, &o->socket_mode, err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_SOCKET_USER:
	case OPT_SOCKET_GROUP:
		if (!*arg) {
			snprintf(err, errlen, "--socket-%s '': want a name or a number",
				 c == OPT_SOCKET_USER ? "user" : "group");
			return OPT_USAGE;
		}
		/* Looked up by main (privs_socket_owner): a name is not syntax. */
		*(c == OPT_SOCKET_USER ? &o->socket_user : &o->socket_group) = arg;
		return OPT_OK;
	case OPT_REUSEPORT: o->reuseport = true; return OPT_OK;
	case OPT_FD_PASSING: o->fd_passing = true; return OPT_OK;
	case 'C':
		/* Named as typed: --max-per-ip is its old name, kept. */
		return num_opt(strncmp(optname, "--max-per-ip", 12) == 0 ? "--max-per-ip" :
			       "--max-per-source", arg, 1, MAX_CONNS_LIMIT, &o->max_per_source,
			       err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_SOURCE_PREFIX:
		return prefix_opt(arg, o, err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_RATE:
		return rate_opt(arg, o, err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_ALLOW:
	case OPT_DENY:
	case OPT_PROXY_FROM:
		return rule_opt(c == OPT_ALLOW ? "--allow" : c == OPT_DENY ? "--deny" :
				"--proxy-from", arg, o, c == OPT_ALLOW, err, errlen) ?
		       OPT_USAGE : OPT_OK;
	case 't':
		return num_opt("--timeout", arg, 1, MAX_SECS, &o->timeout_secs,
			       err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_IDLE_EXIT:
		return num_opt("--idle-exit", arg, 1, MAX_SECS, &o->idle_exit_secs,
			       err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_PROXY_PROTOCOL: o->proxy_protocol = true; return OPT_OK;
	case 'u':
		if (!*arg) {
			snprintf(err, errlen, "--user '': want USER or USER:GROUP");
			return OPT_USAGE;
		}
		o->user = arg;	/* looked up by main: a name is not syntax */
		return OPT_OK;
	case OPT_CONFIG:
		if (o->config) {
			snprintf(err, errlen, "--config: given twice ('%s', '%s')", o->config, arg);
			return OPT_USAGE;
		}
		o->config = arg;
		return OPT_OK;
	case 'D': o->nodelay = true; return OPT_OK;
	case OPT_RLIMIT: {
		struct rlimit_set r;
		unsigned i;

		if (contain_parse_rlimit(arg, &r, err, errlen) < 0)
			return OPT_USAGE;
		/* Given again for the same NAME: the later one counts. */
		for (i = 0; i < o->n_rlimits && o->rlimits[i].resource != r.resource; i++)
			;
		o->rlimits[i] = r;
		if (i == o->n_rlimits)
			o->n_rlimits++;
		return OPT_OK;
	}
	case OPT_NICE: {
		char *end;
		long v;

		errno = 0;
		v = strtol(arg, &end, 10);
		if (!*arg || *end || errno || v < -20 || v > 19 || arg[0] == '+' ||
		    (arg[0] == '-' && arg[1] == '0') || (arg[0] == '0' && arg[1])) {
			snprintf(err, errlen, "--nice '%s': want a number from -20 to 19", arg);
			return OPT_USAGE;
		}
		o->nice = (int)v;
		o->nice_set = true;
		return OPT_OK;
	}
	case OPT_UMASK:
		if (!*arg || arg[strspn(arg, "01234567")] != '\0' || strlen(arg) > 4) {
			snprintf(err, errlen, "--umask '%s': not an octal mode like 0027", arg);
			return OPT_USAGE;
		}
		o->umask = (int)strtol(arg, NULL, 8) & 0777;
		return OPT_OK;
	case OPT_CGROUP: o->cgroup = true; return OPT_OK;
	case OPT_CGROUP_LIMIT: {
		struct cgroup_limit l;
		unsigned i;

		if (cgroup_parse_limit(arg, &l, err, errlen) < 0)
			return OPT_USAGE;
		/* Given again for the same KEY: the later one counts. */
		for (i = 0; i < o->n_cg_limits && strcmp(o->cg_limits[i].key, l.key) != 0; i++)
			;
		if (i == CGROUP_MAX_LIMITS) {
			snprintf(err, errlen, "--cgroup-limit '%s': more than %d keys", arg,
				 CGROUP_MAX_LIMITS);
			return OPT_USAGE;
		}
		o->cg_limits[i] = l;
		if (i == o->n_cg_limits)
			o->n_cg_limits++;
		return OPT_OK;
	}
	case OPT_DATAGRAM:
		if (strcmp(arg, "wait") != 0 && strcmp(arg, "per-peer") != 0) {
			snprintf(err, errlen, "--datagram '%s': want wait or per-peer", arg);
			return OPT_USAGE;
		}
		o->per_peer = arg[0] == 'p';
		return OPT_OK;
	case OPT_RULES:
		if (!*arg) {
			snprintf(err, errlen, "--rules '': want a FILE");
			return OPT_USAGE;
		}
		o->rules = arg;	/* read by rulesfile.c once the handler is known */
		return OPT_OK;
	case OPT_REFUSAL_MESSAGE:
		return message_opt(arg, o, err, errlen) ? OPT_USAGE : OPT_OK;
	case OPT_KEEPALIVE:
		return keepalive_opt(arg, o, err, errlen) ? OPT_USAGE : OPT_OK;
	case 'v': o->verbosity = 1; return OPT_OK;
	case 'q': o->verbosity = -1; return OPT_OK;
	case 'h': options_usage(); return OPT_EXIT_OK;
	case 'V':
		printf("%s %s\nsd-daemon: %s\n", PACKAGE_NAME, PACKAGE_VERSION, SD_DAEMON_IMPL);
		return OPT_EXIT_OK;
	case ':':
		snprintf(err, errlen, "%s: missing value", optname);
		return OPT_USAGE;
	default:
		snprintf(err, errlen, "unknown option '%s' (see acceptd --help)", optname);
		return OPT_USAGE;
	}
}

/* --- keys: an option by its long name, for the config file ---------------
 * A key is its row in opts[]; an alias names the same key.  Options the
 * command line gave are remembered by key, so the file's values for them
 * are skipped: the command line replaces them.  Some options are one
 * setting under two names (a row's group) and are replaced together:
 * --allow/--deny/--rules (one policy: an ordered list, which must stay
 * whole, or the rules file that replaces it), -v/-q (one
 * verbosity), -i/--listen (where the sockets come from), and
 * --builtin/PROGRAM (what serves the connections; the file's exec is
 * PROGRAM). */

static int key_of(int code)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].code == code)
			return (int)i;
	return -1;
}

/* The option a key is one setting with (or itself).  config.c also takes
 * a second key of a group in one file as the mistake a key given twice is. */
int options_key_group(int key)
{
	if (key < 0)
		return -1;
	return opts[key].group ? key_of(opts[key].group) : key;
}

static void mark_cmdline(struct options *o, int code)
{
	int g = options_key_group(key_of(code));

	if (g >= 0)
		o->cmdline_keys |= 1ULL << g;
}

int options_key(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strcmp(opts[i].name, name) == 0 ||
		    (opts[i].alias && strcmp(opts[i].alias, name) == 0))
			return (int)i;
	return -1;
}

bool options_key_settable(int key)
{
	return opts[key].flags & OF_FILE;
}

bool options_key_repeatable(int key)
{
	return opts[key].flags & OF_REPEAT;
}

bool options_key_on_cmdline(const struct options *o, int key)
{
	return (o->cmdline_keys >> options_key_group(key)) & 1;
}

bool options_handler_on_cmdline(const struct options *o)
{
	return options_key_on_cmdline(o, key_of('b'));
}

/* yes/no for a flag: what people write in config files. */
static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcmp(v, yes[i]) == 0)
			return *out = true, 0;
		if (strcmp(v, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

enum opt_result options_key_apply(struct options *o, int key, const char *name,
				  const char *value, char *err, size_t errlen)
{
	const struct opt_def *d = &opts[key];
	char dashed[40];
	bool on;

	snprintf(dashed, sizeof dashed, "--%s", name);
	if (d->arg)
		return one_opt(o, d->code, value, dashed, err, errlen);
	if (parse_bool(value, &on) < 0) {
		snprintf(err, errlen, "%s '%s': want yes or no", dashed, value);
		return OPT_USAGE;
	}
	/* "no" is the default: nothing set, nothing to undo. */
	return on ? one_opt(o, d->code, NULL, dashed, err, errlen) : OPT_OK;
}

enum opt_result options_parse(struct options *o, int argc, char **argv,
			      char *err, size_t errlen)
{
	struct option longopts[N_LONGOPTS];
	char shortopts[N_SHORTOPTS];
	enum opt_result r;
	int c, at = 1;	/* the word getopt reads next */

	getopt_tables(longopts, shortopts);
	opterr = 0;
	optind = 0;	/* 0, not 1: makes glibc re-initialise between calls */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		/* For the message: the word as typed, not getopt's guess.  For
		 * a long option optopt is its val ('c', or 256 and up).  The
		 * words are never reordered: shortopts starts with '+'. */
		const char *typed = argv[at];
		char shortname[3] = { '-', (char)optopt, '\0' };

		at = optind;
		if ((c == '?' || c == ':') && strncmp(typed, "--", 2) != 0)
			typed = shortname;
		r = one_opt(o, c, optarg, typed, err, errlen);
		if (r != OPT_OK)
			return r;
		mark_cmdline(o, c);
	}
	if (optind < argc) {
		o->program = argv + optind;
		mark_cmdline(o, 'b');
	}
	if (o->config && (r = config_load(o, o->config, err, errlen)) != OPT_OK)
		return r;
	if (o->program && o->builtin != BUILTIN_NONE) {
		snprintf(err, errlen, "--builtin and PROGRAM '%s' exclude each other",
			 o->program[0]);
		return OPT_USAGE;
	}
	if (o->program && !o->program[0][0]) {
		snprintf(err, errlen, "PROGRAM: empty name");
		return OPT_USAGE;
	}
	if (o->program && o->workers && !o->fd_passing) {
		snprintf(err, errlen, "--workers with PROGRAM '%s' needs --fd-passing "
			 "(without it PROGRAM runs once per connection)", o->program[0]);
		return OPT_USAGE;
	}
	if (o->fd_passing && !o->program) {
		snprintf(err, errlen, "--fd-passing needs a PROGRAM to run as worker");
		return OPT_USAGE;
	}
	if (!o->program && o->builtin == BUILTIN_NONE)
		o->builtin = BUILTIN_ECHO;
	if (o->n_proxy_from && !o->proxy_protocol) {
		char net[64];

		cidr_format(&o->proxy_from[0], net, sizeof net);
		snprintf(err, errlen, "--proxy-from '%s': needs --proxy-protocol", net);
		return OPT_USAGE;
	}
	if (o->per_peer && (!o->program || o->fd_passing)) {
		snprintf(err, errlen, "--datagram per-peer: starts a PROGRAM per peer; %s",
			 o->fd_passing ? "--fd-passing workers take no datagrams" :
			 "a built-in answers each datagram itself");
		return OPT_USAGE;
	}
	for (int i = 0; i < o->n_listen && o->per_peer; i++)
		if (strncmp(o->listen[i], "unix-dgram:", 11) == 0) {
			snprintf(err, errlen, "--listen '%s': --datagram per-peer connects a socket "
				 "to each peer, and a unix one cannot be bound twice (use wait)",
				 o->listen[i]);
			return OPT_USAGE;
		}
	if (o->rules && o->n_acl) {
		snprintf(err, errlen, "--rules and --%s exclude each other (one policy: "
			 "put the networks in '%s')", o->acl[0].allow ? "allow" : "deny", o->rules);
		return OPT_USAGE;
	}
	for (int i = 0; i < o->n_listen && o->fd_passing; i++) {
		struct addr_spec spec;
		char why[160];

		if (addr_parse(o->listen[i], &spec, why, sizeof why) == 0 &&
		    spec.socktype == SOCK_DGRAM) {
			snprintf(err, errlen, "--listen '%s': --fd-passing workers take connections, "
				 "not datagrams (a PROGRAM that reads them runs without it)",
				 o->listen[i]);
			return OPT_USAGE;
		}
	}
	if (o->inetd && o->n_listen) {
		snprintf(err, errlen, "--inetd and --listen exclude each other");
		return OPT_USAGE;
	}
	if (o->n_cg_limits && !o->cgroup) {
		snprintf(err, errlen, "--cgroup-limit %s: needs --cgroup", o->cg_limits[0].key);
		return OPT_USAGE;
	}
	return check_abstract(o, err, errlen);
}

void options_free(struct options *o)
{
	free(o->acl);
	free(o->proxy_from);
	free(o->conf_text);
	free(o->conf_argv);
	free(o->refusal_message);
	o->refusal_message = NULL;
	o->acl = NULL;
	o->proxy_from = NULL;
	o->conf_text = NULL;
	o->conf_argv = NULL;
}

#define HELP_COL 25	/* where --help's descriptions start */

/* "  -c, --max-conns N", padded to HELP_COL, then the help lines, each
 * after the first indented to HELP_COL. */
static void usage_row(const struct opt_def *d)
{
	char left[64];
	const char *line = d->help;

	if (d->code < 256)
		snprintf(left, sizeof left, "  -%c, --%s", d->code, d->name);
	else
		snprintf(left, sizeof left, "      --%s", d->name);
	if (d->arg)
		snprintf(left + strlen(left), sizeof left - strlen(left), " %s", d->arg);
	printf("%-*s ", HELP_COL - 1, left);
	for (;;) {
		size_t len = strcspn(line, "\n");

		printf("%.*s\n", (int)len, line);
		if (!line[len])
			break;
		line += len + 1;
		printf("%*s", HELP_COL, "");
	}
}

void options_usage(void)
{
	fputs("Usage: acceptd [OPTION]... [--] [PROGRAM [ARG]...]\n"
	      "Accept connections and hand each to PROGRAM, or to a built-in service.\n"
	      "\n", stdout);
	for (size_t i = 0; i < N_OPTS; i++)
		usage_row(&opts[i]);
	fputs("\n"
	      "Sockets come from systemd (LISTEN_FDS), else a socket on fd 0 (inetd),\n"
	      "else from --listen.  See acceptd(8).\n", stdout);
}
