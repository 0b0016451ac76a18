/* test_wire.c - unit tests of src/wire.c, the worker protocol's messages
 * (acceptd-workers(7)): CONN formatted and parsed back field for field,
 * over TCP (IPv4, IPv6) and UNIX peers, with listener names that need
 * percent-encoding (spaces, '%', '=', non-ASCII and control bytes) - the
 * formatted message must be printable ASCII words separated by single
 * spaces; the parser ignores unknown keys and runs of spaces and rejects
 * a missing id, numbers out of range and bad escapes; wire_verb; HELLO and
 * DONE both ways, 150 ids of 20 digits within WIRE_MSG_MAX.  Every parse
 * reads a heap copy of exactly the given length with no NUL after it, so
 * a parser that reads past its length shows up (and under ASan, fails). */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"
#include "wire.h"
#include "suites.h"

/* A heap copy of s[0..len) without a terminating NUL. */
static char *exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, s, len);
	return p;
}

static int parse_conn(const char *s, size_t len, struct wire_conn *c)
{
	char *p = exact(s, len);
	int r = wire_parse_conn(p, len, c);

	free(p);
	return r;
}

static int parse_hello(const char *s, size_t len, unsigned *v, unsigned *max)
{
	char *p = exact(s, len);
	int r = wire_parse_hello(p, len, v, max);

	free(p);
	return r;
}

static enum wire_verb verb(const char *s, size_t len)
{
	char *p = exact(s, len);
	enum wire_verb v = wire_verb(p, len);

	free(p);
	return v;
}

struct ids {
	uint64_t id[200];
	size_t n;
};

static void collect(uint64_t id, void *arg)
{
	struct ids *ids = arg;

	ck_assert_uint_lt(ids->n, 200);
	ids->id[ids->n++] = id;
}

static int parse_done(const char *s, size_t len, struct ids *ids)
{
	char *p = exact(s, len);
	int r;

	memset(ids, 0, sizeof *ids);
	r = wire_parse_done(p, len, collect, ids);
	free(p);
	return r;
}

/* The formatted message's shape: a verb, then words of printable ASCII
 * (0x21-0x7e) separated by single spaces, no space at either end. */
static void check_shape(const char *msg, int n)
{
	ck_assert_int_gt(n, 0);
	ck_assert_uint_eq(strlen(msg), (size_t)n);
	ck_assert_msg(msg[0] != ' ' && msg[n - 1] != ' ', "space at an end: \"%s\"", msg);
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)msg[i];

		ck_assert_msg((c > 0x20 && c < 0x7f) || c == ' ',
			      "byte 0x%02x at %d in \"%s\"", c, i, msg);
		ck_assert_msg(!(c == ' ' && msg[i + 1] == ' '), "two spaces in \"%s\"", msg);
	}
}

/* --- CONN round trips ------------------------------------------------------ */

static const struct wire_conn conns[] = {
	{ .id = 1, .local_ip = "127.0.0.1", .local_port = 8080, .remote_ip = "10.1.2.3",
	  .remote_port = 54321, .connnum = 1, .listener = "127.0.0.1:8080" },
	{ .id = UINT64_MAX, .local_ip = "::1", .local_port = 65535,
	  .remote_ip = "2001:db8::ff:1", .remote_port = 1, .connnum = 4294967295u,
	  .listener = "[::]:7000" },
	{ .id = 0, .local_ip = "fe80::1:2:3:4", .local_port = 0,
	  .remote_ip = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", .remote_port = 65535,
	  .connnum = 0, .listener = "" },
	{ .id = 42, .local_ip = "0.0.0.0", .local_port = 7, .remote_ip = "255.255.255.255",
	  .remote_port = 7, .connnum = 3, .listener = "web front end" },
	{ .id = 43, .local_ip = "1.2.3.4", .local_port = 9, .remote_ip = "5.6.7.8",
	  .remote_port = 10, .connnum = 2, .listener = "100% a%20b %41 %" },
	{ .id = 44, .local_ip = "1.2.3.4", .local_port = 9, .remote_ip = "5.6.7.8",
	  .remote_port = 10, .connnum = 2, .listener = "key=value==x=" },
	{ .id = 45, .local_ip = "1.2.3.4", .local_port = 9, .remote_ip = "5.6.7.8",
	  .remote_port = 10, .connnum = 2, .listener = "caf\xc3\xa9 \xff\x80\xfe\xa0" },
	{ .id = 46, .local_ip = "1.2.3.4", .local_port = 9, .remote_ip = "5.6.7.8",
	  .remote_port = 10, .connnum = 2, .listener = "tab\there\nnl\r\x01\x1b[0m\x7f end" },
	{ .id = 47, .unix_peer = true, .uid = 0, .gid = 0, .pid = 1, .connnum = 1,
	  .listener = "unix:/run/acceptd/a sock%1=2" },
	{ .id = 18446744073709551614u, .unix_peer = true, .uid = 4294967295u,
	  .gid = 65534, .pid = 2147483647, .connnum = 7, .listener = "unix:@abstract\xe2\x82\xac" },
	{ .id = 49, .unix_peer = true, .uid = 1000, .gid = 100, .pid = 4242, .connnum = 1,
	  .listener = "srv" },
};

static void check_same(const struct wire_conn *want, const struct wire_conn *got,
		       const char *msg)
{
	ck_assert_msg(got->id == want->id, "id %llu, want %llu in \"%s\"",
		      (unsigned long long)got->id, (unsigned long long)want->id, msg);
	ck_assert_msg(got->unix_peer == want->unix_peer, "unix_peer in \"%s\"", msg);
	ck_assert_msg(strcmp(got->listener, want->listener) == 0,
		      "listener \"%s\", want \"%s\" in \"%s\"", got->listener,
		      want->listener, msg);
	ck_assert_uint_eq(got->connnum, want->connnum);
	if (want->unix_peer) {
		ck_assert_uint_eq(got->uid, want->uid);
		ck_assert_uint_eq(got->gid, want->gid);
		ck_assert_int_eq(got->pid, want->pid);
		/* TCP fields are not sent for a unix peer */
		ck_assert_str_eq(got->local_ip, "");
		ck_assert_str_eq(got->remote_ip, "");
		ck_assert_uint_eq(got->local_port, 0);
		ck_assert_uint_eq(got->remote_port, 0);
	} else {
		ck_assert_str_eq(got->local_ip, want->local_ip);
		ck_assert_str_eq(got->remote_ip, want->remote_ip);
		ck_assert_uint_eq(got->local_port, want->local_port);
		ck_assert_uint_eq(got->remote_port, want->remote_port);
		ck_assert_uint_eq(got->uid, 0);
		ck_assert_uint_eq(got->gid, 0);
		ck_assert_int_eq(got->pid, 0);
	}
}

static void round_trip(const struct wire_conn *c)
{
	char msg[WIRE_MSG_MAX];
	struct wire_conn got;
	int n;

	memset(msg, 'Z', sizeof msg);
	n = wire_format_conn(msg, sizeof msg, c);
	check_shape(msg, n);
	ck_assert_msg(strncmp(msg, "CONN ", 5) == 0, "\"%s\"", msg);
	ck_assert_int_eq(verb(msg, (size_t)n), WIRE_CONN);
	ck_assert_msg(strstr(msg, c->unix_peer ? " proto=UNIX" : " proto=TCP") != NULL,
		      "\"%s\"", msg);
	memset(&got, 0x5a, sizeof got);	/* the parser must clear what it does not set */
	ck_assert_msg(parse_conn(msg, (size_t)n, &got) == 0, "cannot parse \"%s\"", msg);
	check_same(c, &got, msg);
	/* A buffer exactly the message's size: no room for the NUL. */
	ck_assert_int_eq(wire_format_conn(msg, (size_t)n, c), -1);
	ck_assert_int_eq(wire_format_conn(msg, (size_t)n + 1, c), n);
}

START_TEST(test_wire_conn_round_trip)
{
	round_trip(&conns[_i]);
}
END_TEST

/* Every byte 0x01-0xff in a listener name, and the longest names that fit
 * the field: 255 bytes, even when each one needs an escape. */
START_TEST(test_wire_conn_round_trip_every_byte)
{
	struct wire_conn c = { .id = 5, .local_ip = "127.0.0.1", .local_port = 1,
		.remote_ip = "127.0.0.1", .remote_port = 2, .connnum = 1 };

	for (int b = 1; b < 256; b++)
		c.listener[b - 1] = (char)b;
	c.listener[255] = '\0';
	round_trip(&c);
	memset(c.listener, 0xff, 255);
	round_trip(&c);
	memset(c.listener, '%', 255);
	round_trip(&c);
	memset(c.listener, 'x', 255);
	c.unix_peer = true;
	round_trip(&c);
}
END_TEST

/* The exact text, against the man page's message format (hex digits in
 * either case). */
START_TEST(test_wire_conn_exact_text)
{
	static const struct wire_conn tcp = { .id = 7, .local_ip = "127.0.0.1",
		.local_port = 80, .remote_ip = "::1", .remote_port = 40000,
		.connnum = 2, .listener = "a b%c=d\xc3\xa9" };
	static const struct wire_conn unx = { .id = 9, .unix_peer = true, .uid = 1000,
		.gid = 100, .pid = 4242, .connnum = 1, .listener = "unix:/tmp/s\n" };
	char msg[WIRE_MSG_MAX];

	ck_assert_int_gt(wire_format_conn(msg, sizeof msg, &tcp), 0);
	ck_assert_msg(strcasecmp(msg, "CONN id=7 proto=TCP local=127.0.0.1 lport=80 "
				 "remote=::1 rport=40000 listener=a%20b%25c=d%C3%A9 "
				 "connnum=2") == 0, "got \"%s\"", msg);
	ck_assert_int_gt(wire_format_conn(msg, sizeof msg, &unx), 0);
	ck_assert_msg(strcasecmp(msg, "CONN id=9 proto=UNIX uid=1000 gid=100 pid=4242 "
				 "listener=unix:/tmp/s%0A connnum=1") == 0, "got \"%s\"", msg);
}
END_TEST

/* --- CONN parsing: tolerance and rejection ------------------------------- */

#define S(lit) lit, (sizeof lit - 1)

START_TEST(test_wire_conn_tolerant)
{
	struct wire_conn c;

	/* runs of spaces, unknown keys (even with values that are not valid
	 * escapes: they are a later version's business), words without '=',
	 * any key order */
	ck_assert_int_eq(parse_conn(S("CONN  id=5   proto=TCP future=%ZZ   lport=80 flag "
				      " connnum=3 listener=a%2fb  "), &c), 0);
	ck_assert_uint_eq(c.id, 5);
	ck_assert(!c.unix_peer);
	ck_assert_uint_eq(c.local_port, 80);
	ck_assert_uint_eq(c.connnum, 3);
	ck_assert_str_eq(c.listener, "a/b");	/* lower-case hex too */
	ck_assert_int_eq(parse_conn(S("CONN connnum=2 listener=x pid=77 proto=UNIX "
				      "uid=1 gid=2 id=3 x-new=1"), &c), 0);
	ck_assert_uint_eq(c.id, 3);
	ck_assert(c.unix_peer);
	ck_assert_uint_eq(c.uid, 1);
	ck_assert_uint_eq(c.gid, 2);
	ck_assert_int_eq(c.pid, 77);
	ck_assert_str_eq(c.listener, "x");
	/* the largest values each field takes */
	ck_assert_int_eq(parse_conn(S("CONN id=18446744073709551615 lport=65535 "
				      "rport=65535 uid=4294967295 gid=4294967295 "
				      "pid=2147483647 connnum=4294967295"), &c), 0);
	ck_assert(c.id == UINT64_MAX);
	ck_assert_uint_eq(c.local_port, 65535);
	ck_assert_uint_eq(c.remote_port, 65535);
	ck_assert_uint_eq(c.uid, 4294967295u);
	ck_assert_uint_eq(c.gid, 4294967295u);
	ck_assert_int_eq(c.pid, 2147483647);
	ck_assert_uint_eq(c.connnum, 4294967295u);
	/* an empty listener is a name too */
	ck_assert_int_eq(parse_conn(S("CONN id=1 listener="), &c), 0);
	ck_assert_str_eq(c.listener, "");
	/* an escape for a byte that needs none still decodes */
	ck_assert_int_eq(parse_conn(S("CONN id=1 listener=%41%42c"), &c), 0);
	ck_assert_str_eq(c.listener, "ABc");
}
END_TEST

static const struct {
	const char *msg;
	size_t len;
} bad_conns[] = {
	{ S("CONN proto=TCP lport=80 listener=x connnum=1") },	/* no id */
	{ S("CONN") },
	{ S("") },
	{ S("CONN idx=5") },
	{ S("CONN xid=5") },
	{ S("CONN id") },
	{ S("CONN id=") },
	{ S("CONN id=abc") },
	{ S("CONN id=12a") },
	{ S("CONN id=-1") },
	{ S("CONN id=+1") },
	{ S("CONN id=0x10") },
	{ S("CONN id=18446744073709551616") },
	{ S("CONN id=99999999999999999999") },
	{ S("CONN id=100000000000000000000") },
	{ S("CONN id=1 lport=70000") },
	{ S("CONN id=1 lport=65536") },
	{ S("CONN id=1 lport=") },
	{ S("CONN id=1 rport=-1") },
	{ S("CONN id=1 rport=1x") },
	{ S("CONN id=1 uid=4294967296") },
	{ S("CONN id=1 gid=-2") },
	{ S("CONN id=1 pid=2147483648") },
	{ S("CONN id=1 pid=-1") },
	{ S("CONN id=1 connnum=4294967296") },
	{ S("CONN id=1 listener=%G1") },
	{ S("CONN id=1 listener=%1G") },
	{ S("CONN id=1 listener=ab%4") },
	{ S("CONN id=1 listener=ab%") },
	{ S("CONN id=1 listener=%%41") },
	{ S("CONN id=1 listener=%-1") },
	{ S("CONN id=1 listener=% 1") },
	{ S("CONN id=1 remote=%zz") },
	{ S("CONN id=1 local=1%") },
	{ S("CONN listener=%4 id=1") },
	{ S("CONN id=1 env=NOEQUALS") },
	{ S("CONN id=1 env==value") },
	{ S("CONN id=1 env=") },
	{ S("CONN id=1 unenv=") },
	{ S("CONN id=1 unenv=A=b") },
	{ S("CONN id=1 unenv=A%3Db") },
	{ S("CONN id=1 env=A=b%00c") },
	{ S("CONN id=1 env=A%00=b") },
	{ S("CONN id=1 env=A=%zz") },
};

START_TEST(test_wire_conn_rejects)
{
	struct wire_conn c;

	ck_assert_msg(parse_conn(bad_conns[_i].msg, bad_conns[_i].len, &c) == -1,
		      "accepted \"%s\"", bad_conns[_i].msg);
}
END_TEST

/* Values too long for their fields are refused, not cut or overrun. */
START_TEST(test_wire_conn_rejects_too_long)
{
	char msg[WIRE_MSG_MAX];
	struct wire_conn c;
	int n;

	n = snprintf(msg, sizeof msg, "CONN id=1 listener=");
	for (int i = 0; i < 255; i++)
		msg[n++] = 'x';
	ck_assert_int_eq(parse_conn(msg, (size_t)n, &c), 0);	/* 255 fit */
	ck_assert_uint_eq(strlen(c.listener), 255);
	msg[n++] = 'x';
	ck_assert_int_eq(parse_conn(msg, (size_t)n, &c), -1);	/* 256 do not */
	n = snprintf(msg, sizeof msg, "CONN id=1 listener=");
	for (int i = 0; i < 256; i++)
		n += snprintf(msg + n, sizeof msg - (size_t)n, "%%%02X", 0x80 + i % 64);
	ck_assert_int_eq(parse_conn(msg, (size_t)n, &c), -1);
	n = snprintf(msg, sizeof msg, "CONN id=1 remote=");
	for (int i = 0; i < 64; i++)
		msg[n++] = '1';
	ck_assert_int_eq(parse_conn(msg, (size_t)n, &c), -1);
	n = snprintf(msg, sizeof msg, "CONN id=1 local=");
	for (int i = 0; i < 64; i++)
		msg[n++] = '1';
	ck_assert_int_eq(parse_conn(msg, (size_t)n, &c), -1);
}
END_TEST

/* A rule's and the PROXY TLVs' variables: env=/unenv= words in order,
 * any byte of a value but NUL, back exactly; too many is -1, not a cut. */
START_TEST(test_wire_conn_env_round_trip)
{
	static const char env[] = "RELAYCLIENT=\0X=a b%c=d\0HOME\0Y=\xff\x01\t\0X=again";
	struct wire_conn in, out;
	char msg[WIRE_MSG_MAX];
	int n;

	memset(&in, 0, sizeof in);
	in.id = 7;
	snprintf(in.listener, sizeof in.listener, "l");
	memcpy(in.env, env, sizeof env);
	in.env_len = sizeof env;
	n = wire_format_conn(msg, sizeof msg, &in);
	ck_assert_int_gt(n, 0);
	ck_assert_ptr_nonnull(strstr(msg, " env=RELAYCLIENT= env=X=a%20b%25c=d unenv=HOME "
				     "env=Y=%FF%01%09 env=X=again"));
	for (int i = 0; i < n; i++)
		ck_assert(msg[i] > 0x20 ? msg[i] < 0x7f : msg[i] == ' ');
	ck_assert_int_eq(parse_conn(msg, (size_t)n, &out), 0);
	ck_assert_uint_eq(out.env_len, sizeof env);
	ck_assert(memcmp(out.env, env, sizeof env) == 0);

	/* 2048 encoded bytes of variables fit beside the longest keys. */
	memset(&in, 0, sizeof in);
	in.id = UINT64_MAX;
	memset(in.listener, '%', sizeof in.listener - 1);
	snprintf(in.local_ip, sizeof in.local_ip, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	snprintf(in.remote_ip, sizeof in.remote_ip, "%s", in.local_ip);
	in.local_port = in.remote_port = 65535;
	in.connnum = UINT32_MAX;
	for (int i = 0; i < 16; i++)
		in.env_len += (size_t)snprintf(in.env + in.env_len, sizeof in.env - in.env_len,
					       "V%02d=%0*d", i, (2048 / 16) - 10, 0) + 1;
	n = wire_format_conn(msg, sizeof msg, &in);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(parse_conn(msg, (size_t)n, &out), 0);
	ck_assert_uint_eq(out.env_len, in.env_len);

	/* More than a message holds: refused whole. */
	in.env_len = 0;
	for (int i = 0; i < 40; i++)
		in.env_len += (size_t)snprintf(in.env + in.env_len, sizeof in.env - in.env_len,
					       "V%02d=%090d", i, 0) + 1;
	ck_assert_int_eq(wire_format_conn(msg, sizeof msg, &in), -1);
}
END_TEST

/* The parsers read len bytes, not up to a NUL. */
START_TEST(test_wire_length_not_nul)
{
	static const char conn[] = "CONN id=12345 lport=8080 listener=a%41";
	struct wire_conn c;
	struct ids ids;
	unsigned v, max;

	ck_assert_int_eq(parse_conn(conn, strlen("CONN id=12"), &c), 0);
	ck_assert_uint_eq(c.id, 12);
	ck_assert_uint_eq(c.local_port, 0);
	ck_assert_int_eq(parse_conn(conn, strlen("CONN id=12345 lport=80"), &c), 0);
	ck_assert_uint_eq(c.id, 12345);
	ck_assert_uint_eq(c.local_port, 80);
	ck_assert_int_eq(parse_conn(conn, sizeof conn - 1, &c), 0);
	ck_assert_str_eq(c.listener, "aA");
	ck_assert_int_eq(parse_conn(conn, sizeof conn - 2, &c), -1);	/* "a%4" */
	ck_assert_int_eq(parse_conn(conn, sizeof conn - 3, &c), -1);	/* "a%" */
	ck_assert_int_eq(parse_conn(conn, strlen("CONN id"), &c), -1);
	ck_assert_int_eq(parse_hello(S("HELLO 1 max=57") - 1, &v, &max), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_uint_eq(max, 5);
	ck_assert_int_eq(parse_hello(S("HELLO 12") - 1, &v, &max), 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(parse_hello(S("HELLO 1") - 2, &v, &max), -1);
	ck_assert_int_eq(parse_done(S("DONE 1 2 3") - 2, &ids), 0);
	ck_assert_uint_eq(ids.n, 2);
	ck_assert(ids.id[0] == 1 && ids.id[1] == 2);
	ck_assert_int_eq(parse_done(S("DONE 1 23") - 1, &ids), 0);
	ck_assert(ids.n == 2 && ids.id[1] == 2);
	ck_assert_int_eq(verb(S("STOPPED") - 3), WIRE_STOP);
	ck_assert_int_eq(verb(S("DONE") - 1), WIRE_UNKNOWN);
	ck_assert_int_eq(verb(S("HELLO 1") - 3), WIRE_UNKNOWN);	/* "HELL" */
	ck_assert_int_eq(verb(S("CONN") - 4), WIRE_UNKNOWN);
}
END_TEST

/* --- verbs, HELLO, DONE ------------------------------------------------ */

static const struct {
	const char *msg;
	size_t len;
	enum wire_verb want;
} verbs[] = {
	{ S("HELLO 1"), WIRE_HELLO },
	{ S("HELLO 1 max=5"), WIRE_HELLO },
	{ S("HELLO"), WIRE_HELLO },
	{ S("CONN id=1 proto=TCP"), WIRE_CONN },
	{ S("DONE 1 2"), WIRE_DONE },
	{ S("DONE"), WIRE_DONE },
	{ S("STOP"), WIRE_STOP },
	{ S("STOP now"), WIRE_STOP },
	{ S("STOPX"), WIRE_UNKNOWN },
	{ S("STO"), WIRE_UNKNOWN },
	{ S("stop"), WIRE_UNKNOWN },
	{ S("Hello 1"), WIRE_UNKNOWN },
	{ S("DONE1"), WIRE_UNKNOWN },
	{ S("CONNECT id=1"), WIRE_UNKNOWN },
	{ S("PING"), WIRE_UNKNOWN },
	{ S("PAUSE id=1"), WIRE_UNKNOWN },
	{ S(""), WIRE_UNKNOWN },
	{ S(" "), WIRE_UNKNOWN },
	{ S("\x80\xff"), WIRE_UNKNOWN },
};

START_TEST(test_wire_verb)
{
	ck_assert_msg(verb(verbs[_i].msg, verbs[_i].len) == verbs[_i].want,
		      "\"%s\": got %d, want %d", verbs[_i].msg,
		      (int)verb(verbs[_i].msg, verbs[_i].len), (int)verbs[_i].want);
}
END_TEST

static const struct {
	const char *msg;
	size_t len;
	int ret;
	unsigned version, max;
} hellos[] = {
	{ S("HELLO 1 max=5"), 0, 1, 5 },
	{ S("HELLO 1"), 0, 1, 0 },
	{ S("HELLO 1 max=0"), 0, 1, 0 },
	{ S("HELLO 1 max=1"), 0, 1, 1 },
	{ S("HELLO 2 max=0"), 0, 2, 0 },
	{ S("HELLO 1 max=abc"), 0, 1, 0 },
	{ S("HELLO 1 max="), 0, 1, 0 },
	{ S("HELLO 1 max=-3"), 0, 1, 0 },
	{ S("HELLO 1 future=x max=7 more"), 0, 1, 7 },
	{ S("HELLO  1  max=3"), 0, 1, 3 },
	{ S("HELLO 1 max=1000000000"), 0, 1, 1000000000 },
	{ S("HELLO x"), -1, 0, 0 },
	{ S("HELLO"), -1, 0, 0 },
	{ S("HELLO "), -1, 0, 0 },
	{ S("HELLO -1"), -1, 0, 0 },
	{ S("HELLO 1x max=1"), -1, 0, 0 },
	{ S("HELLO max=1"), -1, 0, 0 },
	{ S(""), -1, 0, 0 },
};

START_TEST(test_wire_parse_hello)
{
	unsigned v = 999, max = 999;
	int r = parse_hello(hellos[_i].msg, hellos[_i].len, &v, &max);

	ck_assert_msg(r == hellos[_i].ret, "\"%s\": returned %d", hellos[_i].msg, r);
	if (r == 0) {
		ck_assert_msg(v == hellos[_i].version, "\"%s\": version %u", hellos[_i].msg, v);
		ck_assert_msg(max == hellos[_i].max, "\"%s\": max %u", hellos[_i].msg, max);
	}
}
END_TEST

START_TEST(test_wire_format_hello)
{
	static const unsigned cases[][2] = { { 1, 0 }, { 1, 1 }, { 1, 5 }, { 7, 1000000000 } };
	char msg[64];
	unsigned v, max;
	int n;

	n = wire_format_hello(msg, sizeof msg, 1, 5);
	ck_assert_str_eq(msg, "HELLO 1 max=5");
	ck_assert_int_eq(n, 13);
	n = wire_format_hello(msg, sizeof msg, WIRE_VERSION, 0);
	ck_assert_str_eq(msg, "HELLO 1 max=0");
	ck_assert_int_eq(n, 13);
	for (size_t i = 0; i < 4; i++) {
		n = wire_format_hello(msg, sizeof msg, cases[i][0], cases[i][1]);
		check_shape(msg, n);
		ck_assert_int_eq(verb(msg, (size_t)n), WIRE_HELLO);
		ck_assert_int_eq(parse_hello(msg, (size_t)n, &v, &max), 0);
		ck_assert_uint_eq(v, cases[i][0]);
		ck_assert_uint_eq(max, cases[i][1]);
	}
}
END_TEST

START_TEST(test_wire_done_round_trip)
{
	uint64_t ids[150];
	char msg[WIRE_MSG_MAX];
	struct ids got;
	int n;

	ids[0] = 42;
	n = wire_format_done(msg, sizeof msg, ids, 1);
	ck_assert_str_eq(msg, "DONE 42");
	ck_assert_int_eq(n, 7);
	ck_assert_int_eq(verb(msg, (size_t)n), WIRE_DONE);
	ck_assert_int_eq(parse_done(msg, (size_t)n, &got), 0);
	ck_assert_uint_eq(got.n, 1);
	ck_assert(got.id[0] == 42);
	/* the buffer's edge: "DONE 42" and its NUL need 8 bytes */
	ck_assert_int_eq(wire_format_done(msg, 8, ids, 1), 7);
	ck_assert_int_eq(wire_format_done(msg, 7, ids, 1), -1);
	ck_assert_int_eq(wire_format_done(msg, 5, ids, 1), -1);
	/* no ids: the bare verb */
	ck_assert_int_eq(wire_format_done(msg, sizeof msg, ids, 0), 4);
	ck_assert_str_eq(msg, "DONE");
	/* a worker's full batch of the longest ids fits one message */
	for (size_t i = 0; i < 150; i++)
		ids[i] = UINT64_MAX - i * 1000003u;
	n = wire_format_done(msg, sizeof msg, ids, 150);
	check_shape(msg, n);
	ck_assert_int_lt(n, WIRE_MSG_MAX);
	ck_assert_int_eq(parse_done(msg, (size_t)n, &got), 0);
	ck_assert_uint_eq(got.n, 150);
	for (size_t i = 0; i < 150; i++)
		ck_assert_msg(got.id[i] == ids[i], "id %zu", i);
	/* and too small a buffer says so rather than cutting an id off */
	ck_assert_int_eq(wire_format_done(msg, (size_t)n, ids, 150), -1);
	ck_assert_int_eq(wire_format_done(msg, 100, ids, 150), -1);
	for (size_t i = 0; i < 150; i++)
		ids[i] = i;
	n = wire_format_done(msg, sizeof msg, ids, 150);
	check_shape(msg, n);
	ck_assert_int_eq(parse_done(msg, (size_t)n, &got), 0);
	ck_assert_uint_eq(got.n, 150);
	for (size_t i = 0; i < 150; i++)
		ck_assert(got.id[i] == i);
}
END_TEST

static const struct {
	const char *msg;
	size_t len;
	int ret;
	size_t n;	/* ids, when ret is 0 */
} dones[] = {
	{ S("DONE"), 0, 0 },
	{ S("DONE 1"), 0, 1 },
	{ S("DONE  1   2 "), 0, 2 },
	{ S("DONE 0 18446744073709551615"), 0, 2 },
	{ S("DONE x"), -1, 0 },
	{ S("DONE 1 x"), -1, 0 },
	{ S("DONE -1"), -1, 0 },
	{ S("DONE +1"), -1, 0 },
	{ S("DONE 1,2"), -1, 0 },
	{ S("DONE 1x"), -1, 0 },
	{ S("DONE 18446744073709551616"), -1, 0 },
	{ S("DONE 123456789012345678901"), -1, 0 },
	{ S("DONE id=1"), -1, 0 },
};

START_TEST(test_wire_parse_done)
{
	struct ids got;
	int r = parse_done(dones[_i].msg, dones[_i].len, &got);

	ck_assert_msg(r == dones[_i].ret, "\"%s\": returned %d", dones[_i].msg, r);
	if (r == 0)
		ck_assert_msg(got.n == dones[_i].n, "\"%s\": %zu ids", dones[_i].msg, got.n);
	if (r == 0 && got.n == 2 && dones[_i].msg[5] == '0') {
		ck_assert(got.id[0] == 0);
		ck_assert(got.id[1] == UINT64_MAX);
	}
}
END_TEST

Suite *wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_wire_conn_round_trip, 0, sizeof conns / sizeof conns[0]);
	tcase_add_test(tc, test_wire_conn_round_trip_every_byte);
	tcase_add_test(tc, test_wire_conn_exact_text);
	tcase_add_test(tc, test_wire_conn_tolerant);
	tcase_add_loop_test(tc, test_wire_conn_rejects, 0, sizeof bad_conns / sizeof bad_conns[0]);
	tcase_add_test(tc, test_wire_conn_rejects_too_long);
	tcase_add_test(tc, test_wire_conn_env_round_trip);
	tcase_add_test(tc, test_wire_length_not_nul);
	tcase_add_loop_test(tc, test_wire_verb, 0, sizeof verbs / sizeof verbs[0]);
	tcase_add_loop_test(tc, test_wire_parse_hello, 0, sizeof hellos / sizeof hellos[0]);
	tcase_add_test(tc, test_wire_format_hello);
	tcase_add_test(tc, test_wire_done_round_trip);
	tcase_add_loop_test(tc, test_wire_parse_done, 0, sizeof dones / sizeof dones[0]);
	suite_add_tcase(s, tc);
	return s;
}
