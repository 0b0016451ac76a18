/*
 * core.h - the types every module shares and the index of their
 * external functions, grouped by the file that defines them.
 *
 * Each module owns one role; the only shared state is struct server,
 * which main.c creates and passes down.  Pure modules (addr.c, cidr.c,
 * confline.c, options.c, proxy.c, wire.c, sdcompat.c's parser, log.c's
 * escaping) do no I/O on their own so the unit tests in tests/unit can
 * drive them table-first.  The sections below follow the tree: one per
 * file, in the order of their names.
 */
#ifndef ACCEPTD_CORE_H
#define ACCEPTD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <stdio.h>
#include <time.h>

#include "clock.h"

#define ACCEPTD_MAX_LISTEN_OPTS 64
#define TABLE_KEY_MAX 20	/* table.c keys: family + 16 address bytes + spare */
#define ADDR_STRLEN 128		/* "[v6%scope]:port" fits; unix paths are cut */
#define ENV_MAX_VARS 16		/* per-connection variables we add */
#define CONN_XENV_MAX 1024	/* struct conn_info's xenv */
#define KILL_GRACE_MS 5000	/* SIGTERM to SIGKILL, at drain's end and -t */

/* cidr.c - a network for --allow/--deny/--proxy-from: "all", an address
 * (a host route) or ADDRESS/PREFIX.  Strict: inet_pton forms only (no octal,
 * no short IPv4), prefix digits without sign or leading zeros and in range,
 * no host bits set below the prefix (rejected: "10.0.0.1/8" is a typo for
 * either 10.0.0.0/8 or 10.0.0.1, and guessing would open or close the wrong
 * hosts).  An IPv4-mapped IPv6 network (::ffff:a.b.c.d/96 or longer) is
 * stored as the IPv4 network it names, since peers arrive un-mapped. */
struct cidr {
	int family;		/* AF_INET, AF_INET6, AF_UNSPEC for "all", or
				 * AF_UNIX for a local user or group */
	unsigned prefix;	/* 0-32 or 0-128; AF_UNIX: CIDR_UID or CIDR_GID */
	uint8_t addr[16];	/* network address, 4 or 16 bytes used;
				 * AF_UNIX: the id, a uint32_t in host order */
};
#define CIDR_UID 0
#define CIDR_GID 1

/* What an epoll event's data.ptr points at: each such struct starts with
 * this, so the loop can tell a listener from a worker's channel. */
enum ev_kind { EV_LISTENER = 1, EV_WORKER, EV_PROXY };	/* the signalfd's is NULL */

/* What the command line (and later the config file) asked for. */
enum builtin_kind { BUILTIN_NONE = 0, BUILTIN_ECHO, BUILTIN_DISCARD,
	BUILTIN_CHARGEN, BUILTIN_DAYTIME, BUILTIN_TIME };

/* --rlimit NAME=SOFT[:HARD] (contain.c) */
struct rlimit_set {
	int resource;		/* RLIMIT_* */
	unsigned long long soft, hard;	/* rlim_t; RLIM_INFINITY: unlimited */
};
#define CONTAIN_MAX_RLIMITS 9	/* one of each name */

/* --cgroup-limit KEY=VALUE (cgroup.c) */
struct cgroup_limit {
	char key[64];		/* a file of the handler's cgroup: memory.max */
	char value[256];
};
#define CGROUP_MAX_LIMITS 16

struct options {
	const char *listen[ACCEPTD_MAX_LISTEN_OPTS];
	int n_listen;
	bool inetd;		/* -i: fd 0 must be our socket */
	enum builtin_kind builtin;
	char **program;		/* argv of PROGRAM, NULL for a built-in */
	unsigned max_conns;	/* -c */
	unsigned backlog;
	unsigned drain_secs;
	int socket_mode;	/* -1: leave it to the umask */
	const char *socket_user;	/* --socket-user, as given; NULL: none */
	const char *socket_group;	/* --socket-group, as given; NULL: none */
	uid_t socket_uid;	/* both resolved by privs_socket_owner; -1: */
	gid_t socket_gid;	/* leave as bind made it */
	bool reuseport;
	bool nodelay;
	bool keepalive;		/* SO_KEEPALIVE on accepted TCP connections */
	bool per_peer;		/* --datagram per-peer (dgram.c) */
	/* Every handler and worker starts with these (contain.c). */
	struct rlimit_set rlimits[CONTAIN_MAX_RLIMITS];
	unsigned n_rlimits;
	int nice;		/* --nice, when nice_set */
	bool nice_set;
	int umask;		/* --umask; -1 none */
	bool cgroup;		/* --cgroup: a cgroup each (cgroup.c) */
	struct cgroup_limit cg_limits[CGROUP_MAX_LIMITS];
	unsigned n_cg_limits;
	char *refusal_message;	/* to clients over -C/--rate; NULL: none */
	size_t refusal_message_len;
	unsigned keepalive_idle, keepalive_intvl, keepalive_cnt;	/* 0: kernel's */
	int verbosity;		/* -1 quiet, 0 default, 1 verbose */
	unsigned workers;	/* -w; 0: one per online CPU */
	bool fd_passing;	/* PROGRAM runs as persistent pool workers */
	/* Admission, in the order it is applied to a connection. */
	bool proxy_protocol;	/* a PROXY header comes first */
	struct cidr *proxy_from;	/* who may send one; none = anyone */
	unsigned n_proxy_from;
	struct acl_rule *acl;	/* --allow/--deny in the order given */
	unsigned n_acl;
	const char *rules;	/* --rules FILE, instead of acl; NULL none */
	unsigned rate_n, rate_secs;	/* --rate N/SECS; rate_n 0 = off */
	unsigned max_per_source;	/* -C; 0 = no limit */
	unsigned prefix4, prefix6;	/* --source-prefix: what one source is */
	unsigned timeout_secs;	/* -t; 0 = none */
	unsigned idle_exit_secs;	/* 0 = never */
	const char *user;	/* -u USER[:GROUP], NULL to stay who we are */
	const char *config;	/* --config FILE */
	uint64_t cmdline_keys;	/* options.c: what the command line set, a bit
				 * per key (OPTIONS_MAX_KEYS of them) */
	char *conf_text;	/* the file, which values above point into */
	char **conf_argv;	/* its exec = words: program, when it is used */
};

/* How many option keys there can be: one bit of cmdline_keys each.
 * options.c asserts its table fits; config.c sizes its arrays by it. */
#define OPTIONS_MAX_KEYS 64
_Static_assert(OPTIONS_MAX_KEYS == 8 * sizeof ((struct options *)0)->cmdline_keys,
	       "OPTIONS_MAX_KEYS is not the number of bits in cmdline_keys");

struct acl_rule {
	bool allow;
	struct cidr net;
};

/* A parsed ADDR (the -l argument), before any socket exists. */
enum addr_kind { ADDR_ANY, ADDR_IPV4, ADDR_IPV6, ADDR_HOST, ADDR_UNIX };

struct addr_spec {
	enum addr_kind kind;
	int socktype;		/* SOCK_STREAM, or SOCK_DGRAM (udp:, unix-dgram:) */
	uint16_t port;
	char host[256];		/* ADDR_HOST: name to resolve */
	struct sockaddr_storage ss;	/* ADDR_IPV4/IPV6/UNIX: ready to bind */
	socklen_t sslen;
};

/* A socket address reduced to what handlers and the logs see. */
struct peer {
	int family;		/* AF_INET, AF_INET6 (never v4-mapped), AF_UNIX */
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;
	uint8_t raw[16];	/* address bytes, 4 or 16 used: the source key;
				 * AF_UNIX: the peer's uid (a unix source is a user) */
	char path[108];		/* AF_UNIX bound path, "" if unnamed */
};

struct listener {
	enum ev_kind kind;	/* EV_LISTENER: first, for the event loop */
	int fd;
	bool owned;		/* we created it: close and unlink on stop */
	bool stored;		/* a copy is in the service manager's fd store:
				 * its unix file must outlive us */
	bool is_conn;		/* an inherited connected socket, not a listener */
	bool armed;		/* currently in the epoll set */
	bool fixed_local;	/* bound to one address: getsockname not needed */
	char name[ADDR_STRLEN];	/* ACCEPTD_LISTENER */
	char fdname[256];	/* the service manager's name for it, "" if none */
	char unix_path[108];	/* owned unix socket to unlink, "" if none */
	dev_t unix_dev;		/* identity of the file we created */
	ino_t unix_ino;
	struct peer local;	/* the bound address when fixed_local */
	int socktype;		/* SOCK_STREAM, or SOCK_DGRAM: served by dgram.c */
	/* SOCK_DGRAM, wait mode: the handler that has the socket now (the
	 * socket is out of the poll set until it exits), and the back-off
	 * for handlers that leave their datagram unread. */
	pid_t dgram_pid;
	unsigned dgram_fails;
	int64_t dgram_resume_ms;	/* back in the poll set then; 0 none */
	uint32_t dgram_mark;		/* the queue's head when it started */
};

struct rule;

struct conn_info {
	int fd;
	struct peer remote;
	struct peer local;
	struct listener *lst;	/* NULL for a single inherited connection */
	uid_t uid;		/* AF_UNIX peer credentials */
	gid_t gid;
	pid_t pid;
	unsigned connnum;	/* open connections from this source, this one included */
	bool dgram;		/* a waiting datagram's source; fd is its listener's */
	const struct rule *rule;	/* --rules: the rule that matched; NULL none */
	/* More variables for its handler (spawn.c) or worker (pool.c): what
	 * the PROXY v2 header's TLVs said (proxyq.c).  "NAME=value" strings,
	 * each NUL-terminated, back to back; xenv_len bytes in all.  Last,
	 * so that CONN_INFO_CLEAR leaves its kilobyte alone. */
	unsigned xenv_len;
	char xenv[CONN_XENV_MAX];
};
/* Zeroes a conn_info but for xenv's bytes (xenv_len says none are
 * there): every accepted connection is described, few carry TLVs. */
#define CONN_INFO_CLEAR(c) memset((c), 0, offsetof(struct conn_info, xenv))

struct table;
struct proxyq;
struct pool;
struct wslot;

/* What a reload hands over to the new image, as conns.c and poolsup.c
 * report it; reload.c alone knows how the state is written and read. */
struct handover {
	void (*child)(void *arg, pid_t pid, int64_t started_ms, int stage,
		      const struct peer *remote);
	void (*worker)(void *arg, pid_t pid, unsigned n_held);
	void (*held)(void *arg, const struct peer *remote);	/* the last worker's */
	void (*dgram)(void *arg, pid_t pid, const struct listener *l);	/* the last
				 * child has l's datagram socket (wait mode) */
	void (*cgroup)(void *arg, pid_t pid, uint32_t id);	/* the last child's
				 * or worker's cgroup (cgroup.c) */
	void *arg;
};

struct server {
	struct options *opt;
	struct listener *lst;
	int n_lst;
	int epfd;
	int sigfd;
	unsigned active;	/* connections handed on and not yet ended */
	unsigned proxying;	/* accepted, still reading their PROXY header */
	unsigned long long total, refused, failed;
	unsigned long long timeouts;	/* handlers -t ended */
	unsigned long long cgkills;	/* cgroups killed: -t, drain, leftovers */
	int64_t idle_since_ms;	/* --idle-exit: when the last connection ended */
	int64_t timeout_at_ms;	/* -t: next handler deadline to look at, 0 none */
	bool reload_wanted;	/* SIGHUP: re-execute once nothing is half done */
	int64_t resume_at_ms;	/* accept paused until then (EMFILE), 0 if not */
	int64_t last_pause_log_ms;
	bool stopping;
	int stop_stage;		/* 0 drain, 1 TERM sent, 2 KILL sent */
	int64_t stop_deadline_ms;
	int exit_status;	/* the last handler's, for single-connection mode */
	bool sigchld;		/* a SIGCHLD was read: reap this turn */
	bool abandon;		/* unkillable handlers: exit regardless */
	struct table *sources;	/* open connections per source address */
	struct table *rates;	/* --rate: token buckets per source */
	struct proxyq *proxyq;	/* connections reading a PROXY header */
	struct table *children;	/* handler processes by pid */
	struct pool *pool;	/* built-in workers; NULL in spawn mode */
	struct rules *rules;	/* --rules, compiled; NULL without */
	sigset_t sigs_ignored;	/* ignored at start: reset in handlers */
	char **base_env;	/* environ minus our plumbing */
	const char *program_path;	/* resolved PROGRAM */
};

/* accept.c */
void accept_update(struct server *s);
int64_t accept_tick(struct server *s);
int accept_serve(struct server *s, int fd, struct listener *l,
		 const struct sockaddr_storage *ss, socklen_t sslen);
void accept_ready(struct server *s, struct listener *l);
int accept_hand(struct server *s, struct conn_info *c);
void accept_replace_fd(struct server *s, struct listener *l, int fd);

/* addr.c */
int addr_parse(const char *s, struct addr_spec *out, char *err, size_t errlen);
int addr_parse_ipv4(const char *s, struct in_addr *out);
void addr_peer_from(struct peer *p, const struct sockaddr *sa, socklen_t len);
int addr_peer_format(const struct peer *p, char *buf, size_t len);
bool addr_is_wildcard(const struct sockaddr *sa);

/* admit.c */
struct log_limit;
bool admit_conn(struct server *s, struct conn_info *c);
int admit_acl_match(const struct acl_rule *rules, unsigned n, const struct peer *p);
const char *admit_policy(const struct server *s, const struct peer *p, uint32_t gid,
			 const struct rule **rule, char *why, size_t whylen);
void admit_refuse(struct server *s, struct conn_info *c, struct log_limit *lim,
		  const char *why, const unsigned char *got, size_t n);

/* builtin.c */
int builtin_lookup(const char *name, enum builtin_kind *out);
const char *builtin_name(enum builtin_kind k);
struct bconn {
	int fd;
	enum builtin_kind kind;
	unsigned off, len;	/* chargen: place in the pattern; echo: pend */
	char *pend;		/* echo: bytes not yet written back */
};
uint32_t builtin_begin(struct bconn *b, enum builtin_kind kind, int fd);
uint32_t builtin_step(struct bconn *b, uint32_t events);
void builtin_end(struct bconn *b);
size_t builtin_chargen_line(unsigned line, char out[74]);
#define BUILTIN_CHARGEN_DGRAM (6 * 74)	/* RFC 864 over UDP: at most 512 */
size_t builtin_dgram_reply(enum builtin_kind kind, const void *req, size_t len,
			   unsigned *line, time_t now, char *out, size_t outmax);
uint32_t builtin_time_value(time_t now);

/* cidr.c */
int cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen);
bool cidr_match(const struct cidr *c, const struct peer *p);
bool cidr_match_cred(const struct cidr *c, uint32_t uid, uint32_t gid);
int cidr_format(const struct cidr *c, char *buf, size_t len);

/* cgroup.c - --cgroup: a cgroup v2 directory per handler and worker.
 * An id is N of conn-N, or of worker-N with CGROUP_WORKER set; 0 none. */
#define CGROUP_WORKER 0x80000000u
#define CGROUP_NAME_MAX 24
struct privs;
int cgroup_parse_limit(const char *arg, struct cgroup_limit *out, char *err, size_t errlen);
bool cgroup_on(void);
void cgroup_name(uint32_t id, char out[CGROUP_NAME_MAX]);
int cgroup_setup(const struct options *o, const struct privs *p, bool restored, char *err,
		 size_t errlen);
int cgroup_check(const struct options *o, char *err, size_t errlen);
void cgroup_adopt(uint32_t id);
uint32_t cgroup_next(void);
void cgroup_adopt_next(uint32_t next);
int cgroup_create(bool worker, uint32_t *id);
void cgroup_discard(uint32_t id);
int cgroup_kill(uint32_t id);
unsigned cgroup_release(uint32_t id);
unsigned cgroup_pending(void);
void cgroup_left(void);
unsigned cgroup_pending_ids(uint32_t *out, unsigned max);
void cgroup_adopt_pending(uint32_t id);
int64_t cgroup_tick(void);
/* config.c - --config FILE: its KEY = VALUE lines applied as the long
 * options they name, except those the command line gave (it replaces the
 * file's values).  Errors say FILE:LINE and why; OPT_USAGE. */
enum opt_result config_load(struct options *o, const char *path, char *err, size_t errlen);
void config_check_after_drop(const struct options *o);

/* confline.c - one line of a --config file, without I/O.  Blank lines and
 * lines whose first non-blank is '#' are CONF_SKIP; otherwise
 * "KEY = VALUE" with blanks around either trimmed, KEY of [a-z0-9-],
 * VALUE non-empty.  The line is modified in place (NULs written); key and
 * value point into it. */
enum conf_kind { CONF_ERROR = -1, CONF_SKIP = 0, CONF_PAIR = 1 };
struct conf_pair {
	char *key;
	char *value;
};
int confline_parse(char *line, struct conf_pair *out, char *err, size_t errlen);
/* Splits an exec = value into words, as a shell would without
 * expansions: blanks separate words, '...' is literal, "..." and bare text
 * take a backslash as "next character literal".  An unterminated quote, a
 * trailing backslash or more than max-1 words is an error.  Words are
 * written in place over value; argv ends with NULL.  Returns the count or -1. */
int confline_split_words(char *value, char **argv, int max, char *err, size_t errlen);

/* conns.c */
int conns_init(struct server *s);
int conns_track(struct server *s, pid_t pid, const struct conn_info *c, uint32_t cg);
void conns_reap(struct server *s);
void conns_signal_all(struct server *s, int sig);
int64_t conns_tick(struct server *s);
unsigned conns_lingering(void);
void conns_hand_over(struct server *s, const struct handover *h);
void conns_adopt_child(struct server *s, pid_t pid, long long started_ms, unsigned stage,
		       const struct peer *p);
void conns_adopt_worker(struct server *s, pid_t pid);
void conns_adopt_held(struct server *s, pid_t worker, const struct peer *p);
void conns_adopt_dgram(struct server *s, pid_t pid, struct listener *l);
bool conns_adopt_cgroup(struct server *s, pid_t pid, uint32_t id);

/* contain.c - rlimits, nice and umask for every handler and worker */
const char *contain_rlimit_name(int resource);
int contain_parse_rlimit(const char *arg, struct rlimit_set *out, char *err, size_t errlen);
int contain_apply(const struct options *o);
int contain_check(const struct options *o, char *err, size_t errlen);

/* dgram.c - datagram sockets served the inetd way (wait mode) */
void dgram_ready(struct server *s, struct listener *l);
void dgram_reaped(struct listener *l);
int64_t dgram_tick(struct server *s);
bool dgram_idle(const struct listener *l);
void dgram_prepare(struct listener *l);

/* listen.c */
void listen_fix_stdio(void);
void listen_seal_inherited(void);
int listen_acquire(struct server *s, char *err, size_t errlen);
void listen_close_owned(struct server *s);
void listen_store_name(const struct listener *l, char *out, size_t len);
int listen_probe(const struct server *s, const struct options *o, char *err, size_t errlen);
int listen_rebind(const struct server *s, const struct listener *l);

/* log.c */
enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };
void log_init(int verbosity);
bool log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t log_escape(char *dst, size_t dstlen, const void *src, size_t srclen);
struct log_limit {
	const char *what;	/* "denied connections": for the summary line */
	int64_t window_ms;
	unsigned n;
	unsigned long long dropped;
	bool listed;		/* on the list log_limits_flush walks */
	struct log_limit *next;
};
bool log_limited(struct log_limit *l);
int64_t log_limits_flush(bool final);
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)

/* notify.c */
void notify_init(void);
int64_t notify_tick(const struct server *s);

/* options.c */
enum opt_result { OPT_OK = 0, OPT_EXIT_OK = 1, OPT_USAGE = 2 };
void options_defaults(struct options *o);
enum opt_result options_parse(struct options *o, int argc, char **argv,
			      char *err, size_t errlen);
int options_parse_uint(const char *s, unsigned long long max, unsigned long long *out);
void options_usage(void);
void options_free(struct options *o);
/* Options by long name, for config.c.  A key is an option's row in the
 * table, 0 to OPTIONS_MAX_KEYS - 1 (an alias names its option's key); -1
 * unknown.  options_key_apply takes the name as the file spells it, for
 * the message. */
int options_key(const char *name);
bool options_key_settable(int key);
bool options_key_repeatable(int key);
int options_key_group(int key);
bool options_key_on_cmdline(const struct options *o, int key);
bool options_handler_on_cmdline(const struct options *o);
enum opt_result options_key_apply(struct options *o, int key, const char *name,
				  const char *value, char *err, size_t errlen);

/* pool.c - the worker pool's dispatch: a worker with room takes each
 * connection, counted until its DONE (pool.h) */
bool pool_ready(const struct server *s);
pid_t pool_dispatch(struct server *s, const struct conn_info *c);
void pool_readable(struct server *s, struct wslot *w);
void pool_flush(struct server *s);
bool pool_holding(const struct server *s);
struct fdpass_msg *pool_recv_batch(void);

/* poolsup.c - the worker pool's supervision: start, restart with
 * back-off, stop, hand over at a reload (pool.h) */
int poolsup_init(struct server *s);
unsigned poolsup_backoff_ms(unsigned fails);
bool poolsup_reaped(struct server *s, pid_t pid, int status);
int64_t poolsup_tick(struct server *s);
void poolsup_stop(struct server *s);
void poolsup_signal_all(struct server *s, int sig);
unsigned poolsup_alive(const struct server *s);
void poolsup_hand_over(struct server *s, const struct handover *h);
void poolsup_seal(struct server *s);
void poolsup_unseal(struct server *s);

/* privs.c */
struct privs {
	bool wanted;
	bool group_given;
	uid_t uid;
	gid_t gid;
	char name[256];		/* "" for a bare uid */
};
int privs_resolve(const char *spec, struct privs *p, char *err, size_t errlen);
int privs_socket_owner(struct options *o, char *err, size_t errlen);
const char *privs_owner_denied(const struct options *o);
int privs_check(const struct privs *p, const char *spec, bool reloaded, char *err,
		size_t errlen);
int privs_drop(const struct privs *p, const char *spec, bool reloaded, char *err,
	       size_t errlen);

/* proxy.c - the HAProxy PROXY protocol header, v1 and v2, parsed from a
 * buffer that holds the first bytes of a connection.  Pure: the answer
 * depends only on buf[0..len).  Fed the connection's bytes as they come
 * (a growing prefix), it answers PROXY_NEED_MORE until the first other
 * answer, which is then the same as for the whole stream: a header is
 * declared invalid as soon as its bytes so far cannot begin a valid one,
 * and never later than PROXY_MAX bytes. */
#define PROXY_V1_MAX 107	/* "PROXY TCP6 ...\r\n", CRLF included */
#define PROXY_V2_MAX_BODY 2048	/* addresses + TLVs we accept */
#define PROXY_MAX (16 + PROXY_V2_MAX_BODY)
enum proxy_status { PROXY_INVALID = -1, PROXY_NEED_MORE = 0, PROXY_DONE = 1 };
/* The TLVs (and SSL sub-TLVs) that become PROXY_* variables. */
enum proxy_tlv { PROXY_TLV_ALPN, PROXY_TLV_AUTHORITY, PROXY_TLV_UNIQUE_ID,
	PROXY_TLV_SSL_VERSION, PROXY_TLV_SSL_CN, PROXY_TLV_SSL_CIPHER,
	PROXY_TLV_SSL_SIG_ALG, PROXY_TLV_SSL_KEY_ALG, PROXY_TLV_N };
struct proxy_header {
	size_t len;		/* PROXY_DONE: bytes the header occupies */
	int version;		/* 1 or 2, once known */
	bool has_addr;		/* false: UNKNOWN, LOCAL, UNSPEC or AF_UNIX:
				 * keep the connection's real addresses */
	struct sockaddr_storage src, dst;	/* AF_INET or AF_INET6 */
	const char *why;	/* PROXY_INVALID: static text for the log */
	/* v2, PROXY_DONE: what its TLVs said, as places in the parsed
	 * buffer (the parser copies nothing); proxy_env formats them. */
	bool local;		/* the LOCAL command: the proxy's own connection */
	bool has_ssl;		/* a PP2_TYPE_SSL TLV came: client, verify valid */
	uint8_t ssl_client;	/* its PP2_CLIENT_* bits */
	uint32_t ssl_verify;	/* its verify field */
	struct proxy_span {
		uint16_t off, len;	/* off 0: no such TLV (values start at 16+) */
	} tlv[PROXY_TLV_N];
};
int proxy_parse(const void *buf, size_t len, struct proxy_header *out);
/* What proxy_env left out: the first value, why, and how many in all. */
struct proxy_env_drop {
	const char *name;	/* its variable, "PROXY_SSL_CN"; NULL: none left out */
	const char *tlv;	/* its TLV, "SSL_CN" */
	const char *why;
	size_t off, len;	/* its value in the buffer */
	unsigned n;
};
size_t proxy_env(const struct proxy_header *h, const void *buf, char *out, size_t outlen,
		 struct proxy_env_drop *drop);

/* proxyq.c */
struct pconn;
int proxyq_init(struct server *s);
void proxyq_begin(struct server *s, struct conn_info *c);
void proxyq_readable(struct server *s, struct pconn *p, uint32_t events);
int64_t proxyq_tick(struct server *s);
void proxyq_stop(struct server *s);
void proxyq_free(struct server *s);

/* reload.c */
void reload_init(int argc, char **argv);
bool reload_quiet(const struct server *s);
void reload_exec(struct server *s);
void reload_restore(struct server *s);
bool reload_restored(void);

/* rules.c - a --rules file (tcprules(1) text, plus acceptd's CIDRs, unix
 * peers and instructions) compiled from memory into a structure whose
 * lookup cost does not grow with the number of rules.  Pure: errors are
 * "LINE: reason" (the caller adds FILE).  rules_match gives the most
 * specific rule for a peer, NULL when none matches (allowed). */
struct rule_var {
	const char *name;
	const char *value;	/* NULL: unset name (",-NAME") */
};
struct rule {
	unsigned line;		/* in the file, from 1 */
	struct cidr net;	/* what it matches: AF_UNSPEC the default;
				 * AF_INET/AF_INET6 a network (a range: its
				 * first address); AF_UNIX unix:uid=/gid= */
	int range_last;		/* a last-number range: the last value of
				 * that number; -1 none */
	bool deny;
	const char *msg;	/* deny: written before the close; NULL none */
	size_t msg_len;
	char **argv;		/* exec=: another PROGRAM; NULL none */
	struct rule_var *vars;	/* set and unset, in file order */
	unsigned n_vars;
	unsigned max_per_source;	/* 0: the command line's -C */
	unsigned rate_n, rate_secs;	/* rate_n 0: the command line's --rate */
	char *buf;		/* owns the strings above */
};
struct rules;
struct rules *rules_parse(const char *text, size_t len, char *err, size_t errlen);
const struct rule *rules_match(const struct rules *r, const struct peer *p, uint32_t gid);
size_t rules_count(const struct rules *r);
const struct rule *rules_at(const struct rules *r, size_t i);	/* file order */
void rules_free(struct rules *r);

/* rulesfile.c - the --rules file read, compiled and checked against how
 * this acceptd serves; errors "--rules FILE:LINE: reason" */
struct rules *rulesfile_load(const struct options *o, char *err, size_t errlen);
bool rulesfile_has_rate(const struct rules *r);
void rulesfile_check_after_drop(const struct options *o);

/* sdcompat.c */
int sdc_parse_listen_env(const char *pid_s, const char *fds_s, const char *names_s,
			 pid_t self, int *n, char ***names);
int sdc_listen_fds_with_names(char ***names);
int sdc_notify(const char *state);
int sdc_notify_with_fds(const char *state, const int *fds, unsigned n_fds);
long long sdc_parse_watchdog(const char *usec_s, const char *pid_s, pid_t self);

/* sdglue.c */
int sdg_listen_fds(char ***names);
void sdg_notify(const char *msg);
int sdg_notify_fds(const char *msg, const int *fds, unsigned n);
long long sdg_watchdog_usec(void);

/* server.c */
int server_init(struct server *s, struct options *o);
int server_run(struct server *s);

/* signals.c */
int signals_init(sigset_t *ignored_at_start);
int signals_read(int sigfd);
const char *signals_abbrev(int sig);

/* source.c - a connection's source (an address cut to --source-prefix,
 * or a local uid) and what is counted by it: open connections (-C) and
 * the --rate bucket. */
int source_init(struct server *s);
void source_key(const struct options *o, const struct peer *p,
		unsigned char key[TABLE_KEY_MAX]);
unsigned source_acquire(struct server *s, const struct peer *p);
void source_release(struct server *s, const struct peer *p);
bool source_gcra(int64_t *tat_us, int64_t now_us, int64_t interval_us, unsigned burst);
int source_rate(struct server *s, const struct peer *p, unsigned n, unsigned secs);
bool source_rate_ok(struct server *s, const struct peer *p, unsigned n, unsigned secs);

/* spawn.c */
char **spawn_base_env(char **environ_in);
int spawn_resolve(const char *prog, char *out, size_t outlen);
pid_t spawn_handler(struct server *s, const struct conn_info *c, uint32_t *cg);
pid_t spawn_worker(struct server *s, int ch, uint32_t *cg);

/* table.c */
struct table *table_new(size_t entries, size_t recsize);
void table_free(struct table *t);
void *table_get(struct table *t, const unsigned char *key);
void *table_put(struct table *t, const unsigned char *key);
void table_del(struct table *t, const unsigned char *key);
size_t table_count(const struct table *t);
void table_each(struct table *t, void (*fn)(void *rec, void *arg), void *arg);
size_t table_sweep(struct table *t, bool (*expired)(const void *rec));

/* worker.c */
pid_t worker_fork(struct server *s, int ch, bool dgrams, uint32_t *cg);

/* wdgram.c - the built-ins over datagram sockets, in a pool worker; a
 * per-source rate on by default (--rate or a rule's replaces it) */
#define WDGRAM_RATE_N 10
#define WDGRAM_RATE_SECS 1
bool wdgram_start(struct server *s, int epfd);
void wdgram_stop(struct server *s, int epfd);
unsigned wdgram_ready(struct server *s, struct listener *l);

#endif
