/*
 * wire.c - the worker protocol's messages, as text (acceptd-workers(7)).
 *
 * One message is one SOCK_SEQPACKET datagram of printable ASCII: a verb,
 * then words separated by single spaces; key=value words carry values
 * percent-encoded where they hold a space, '%' or a byte outside 0x21-0x7e.
 * Unknown verbs and unknown keys are ignored by both sides, so a later
 * version can add to a message without breaking an older peer.  This file
 * is pure - formatting and parsing only - and is compiled into both the
 * daemon and libacceptd, so the two can never disagree.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static size_t encode(char *dst, size_t len, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *src && o + 4 < len; src++) {
		unsigned char c = (unsigned char)*src;

		if (c > 0x20 && c < 0x7f && c != '%') {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes src[0..n) into dst (NUL-terminated); -1 on a bad escape or when
 * it does not fit. */
static int decode(char *dst, size_t len, const char *src, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = src[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hexval(src[i + 1]);
			lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (o + 1 >= len)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

int wire_format_hello(char *buf, size_t len, unsigned version, unsigned max)
{
	return snprintf(buf, len, "HELLO %u max=%u", version, max);
}

/* Appends to buf[*o..len): a string, then a decimal.  On overflow *o
 * becomes len, which the caller reports. */
static void put_str(char *buf, size_t len, size_t *o, const char *str)
{
	size_t n = strlen(str);

	if (*o + n >= len) {
		*o = len;
		return;
	}
	memcpy(buf + *o, str, n);
	*o += n;
}

static void put_u64(char *buf, size_t len, size_t *o, unsigned long long v)
{
	char tmp[24];
	size_t n = sizeof tmp;

	tmp[--n] = '\0';
	do
		tmp[--n] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	put_str(buf, len, o, tmp + n);
}

static void put_i64(char *buf, size_t len, size_t *o, long long v)
{
	if (v < 0) {
		put_str(buf, len, o, "-");
		put_u64(buf, len, o, 0ULL - (unsigned long long)v);
	} else {
		put_u64(buf, len, o, (unsigned long long)v);
	}
}

/* Appends src encoded; on overflow *o becomes len, as put_str. */
static void put_enc(char *buf, size_t len, size_t *o, const char *src)
{
	size_t n = strlen(src);

	if (*o >= len || len - *o < 3 * n + 1) {
		/* Only a worst-case guess failed: encode and look. */
		char tmp[WIRE_MSG_MAX];

		if (*o >= len || 3 * n + 1 > sizeof tmp || encode(tmp, sizeof tmp, src) >= len - *o) {
			*o = len;
			return;
		}
		put_str(buf, len, o, tmp);
		return;
	}
	*o += encode(buf + *o, len - *o, src);
}

/* Formatted by hand, not with snprintf: this runs for every connection. */
int wire_format_conn(char *buf, size_t len, const struct wire_conn *c)
{
	char lname[3 * sizeof c->listener];
	size_t o = 0;

	if (len == 0)
		return -1;
	encode(lname, sizeof lname, c->listener);
	put_str(buf, len, &o, "CONN id=");
	put_u64(buf, len, &o, c->id);
	if (c->unix_peer) {
		put_str(buf, len, &o, " proto=UNIX uid=");
		put_u64(buf, len, &o, c->uid);
		put_str(buf, len, &o, " gid=");
		put_u64(buf, len, &o, c->gid);
		put_str(buf, len, &o, " pid=");
		put_i64(buf, len, &o, c->pid);
	} else {
		put_str(buf, len, &o, " proto=TCP local=");
		put_str(buf, len, &o, c->local_ip);
		put_str(buf, len, &o, " lport=");
		put_u64(buf, len, &o, c->local_port);
		put_str(buf, len, &o, " remote=");
		put_str(buf, len, &o, c->remote_ip);
		put_str(buf, len, &o, " rport=");
		put_u64(buf, len, &o, c->remote_port);
	}
	put_str(buf, len, &o, " listener=");
	put_str(buf, len, &o, lname);
	put_str(buf, len, &o, " connnum=");
	put_u64(buf, len, &o, c->connnum);
	for (size_t i = 0; i < c->env_len; i += strlen(c->env + i) + 1) {
		put_str(buf, len, &o, strchr(c->env + i, '=') ? " env=" : " unenv=");
		put_enc(buf, len, &o, c->env + i);
	}
	if (o >= len)
		return -1;
	buf[o] = '\0';
	return (int)o;
}

/* The next word of [*p, end): returns its length and advances *p. */
static size_t next_word(const char **p, const char *end, const char **word)
{
	const char *s = *p, *e;

	while (s < end && *s == ' ')
		s++;
	e = s;
	while (e < end && *e != ' ')
		e++;
	*word = s;
	*p = e;
	return (size_t)(e - s);
}

static bool is_verb(const char *w, size_t n, const char *verb)
{
	return n == strlen(verb) && memcmp(w, verb, n) == 0;
}

static int parse_num(const char *w, size_t n, unsigned long long max,
		     unsigned long long *out)
{
	unsigned long long v = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(w[i] - '0');

		if (d > 9 || v > (max - d) / 10 || d > max)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

enum wire_verb wire_verb(const char *buf, size_t len)
{
	const char *p = buf, *w;
	size_t n = next_word(&p, buf + len, &w);

	if (is_verb(w, n, "HELLO"))
		return WIRE_HELLO;
	if (is_verb(w, n, "CONN"))
		return WIRE_CONN;
	if (is_verb(w, n, "DONE"))
		return WIRE_DONE;
	if (is_verb(w, n, "STOP"))
		return WIRE_STOP;
	return WIRE_UNKNOWN;
}

/* "HELLO V [max=N]": the version and the capacity (0 = no limit). */
int wire_parse_hello(const char *buf, size_t len, unsigned *version, unsigned *max)
{
	const char *p = buf, *end = buf + len, *w;
	unsigned long long v;
	size_t n;

	next_word(&p, end, &w);
	n = next_word(&p, end, &w);
	if (parse_num(w, n, 65535, &v) < 0)
		return -1;
	*version = (unsigned)v;
	*max = 0;
	while ((n = next_word(&p, end, &w)) > 0)
		if (n > 4 && memcmp(w, "max=", 4) == 0 &&
		    parse_num(w + 4, n - 4, 1000000000, &v) == 0)
			*max = (unsigned)v;
	return 0;
}

/* "DONE ID [ID...]": calls fn for each id; -1 on a malformed id. */
int wire_parse_done(const char *buf, size_t len, void (*fn)(uint64_t id, void *arg),
		    void *arg)
{
	const char *p = buf, *end = buf + len, *w;
	unsigned long long v;
	size_t n;

	next_word(&p, end, &w);
	while ((n = next_word(&p, end, &w)) > 0) {
		if (parse_num(w, n, UINT64_MAX, &v) < 0)
			return -1;
		fn(v, arg);
	}
	return 0;
}

int wire_format_done(char *buf, size_t len, const uint64_t *ids, size_t n)
{
	size_t o = (size_t)snprintf(buf, len, "DONE");

	for (size_t i = 0; i < n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, " %llu", (unsigned long long)ids[i]);
	return o < len ? (int)o : -1;
}

/* How long src[0..n) is once decoded (its escapes well formed). */
static size_t decoded_len(const char *src, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++, len++)
		if (src[i] == '%')
			i += 2;
	return len;
}

static int conn_key(struct wire_conn *c, const char *k, size_t kn, const char *v, size_t vn)
{
	unsigned long long x;

#define KEY(s) (kn == sizeof(s) - 1 && memcmp(k, s, kn) == 0)
	if (KEY("id"))
		return parse_num(v, vn, UINT64_MAX, &x) < 0 ? -1 : (c->id = x, 0);
	if (KEY("proto")) {
		c->unix_peer = vn == 4 && memcmp(v, "UNIX", 4) == 0;
		return 0;
	}
	if (KEY("local"))
		return decode(c->local_ip, sizeof c->local_ip, v, vn);
	if (KEY("remote"))
		return decode(c->remote_ip, sizeof c->remote_ip, v, vn);
	if (KEY("listener"))
		return decode(c->listener, sizeof c->listener, v, vn);
	if (KEY("lport"))
		return parse_num(v, vn, 65535, &x) < 0 ? -1 : (c->local_port = (unsigned)x, 0);
	if (KEY("rport"))
		return parse_num(v, vn, 65535, &x) < 0 ? -1 : (c->remote_port = (unsigned)x, 0);
	if (KEY("uid"))
		return parse_num(v, vn, UINT32_MAX, &x) < 0 ? -1 : (c->uid = (unsigned)x, 0);
	if (KEY("gid"))
		return parse_num(v, vn, UINT32_MAX, &x) < 0 ? -1 : (c->gid = (unsigned)x, 0);
	if (KEY("pid"))
		return parse_num(v, vn, INT32_MAX, &x) < 0 ? -1 : (c->pid = (int)x, 0);
	if (KEY("env") || KEY("unenv")) {
		/* NAME=value for env, NAME for unenv; NAME never empty. */
		size_t room = sizeof c->env - c->env_len;
		char *at = c->env + c->env_len, *eq;

		if (decode(at, room, v, vn) < 0 || !*at || *at == '=' ||
		    strlen(at) != decoded_len(v, vn))	/* a %00 inside */
			return -1;
		eq = strchr(at, '=');
		if (KEY("env") ? !eq : eq != NULL)
			return -1;
		c->env_len += strlen(at) + 1;
		return 0;
	}
	if (KEY("connnum"))
		return parse_num(v, vn, UINT32_MAX, &x) < 0 ? -1 : (c->connnum = (unsigned)x, 0);
#undef KEY
	return 0;	/* a key from a later version */
}

int wire_parse_conn(const char *buf, size_t len, struct wire_conn *c)
{
	const char *p = buf, *end = buf + len, *w;
	bool have_id = false;
	size_t n;

	memset(c, 0, sizeof *c);
	next_word(&p, end, &w);
	while ((n = next_word(&p, end, &w)) > 0) {
		const char *eq = memchr(w, '=', n);

		if (!eq)
			continue;
		if (conn_key(c, w, (size_t)(eq - w), eq + 1, n - (size_t)(eq - w) - 1) < 0)
			return -1;
		have_id |= eq - w == 2 && memcmp(w, "id", 2) == 0;
	}
	return have_id ? 0 : -1;
}
