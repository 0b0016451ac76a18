/*
 * proxy.c - the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * versions 1 and 2), parsed from the first bytes of a connection.
 *
 * Pure: no I/O, no allocation, nothing written but *out.  The parser
 * reads buf left to right, and each check it makes looks only at bytes
 * it has already passed; when it needs a byte that is not there it stops
 * with PROXY_NEED_MORE.  So the answer is a function of the prefix: fed
 * a growing prefix, it says NEED_MORE until its first other answer, and
 * that answer (status, length, addresses, reason) stays the same however
 * many bytes follow.  Bytes are checked as they arrive, so a client that
 * speaks some other protocol is refused at its first byte that cannot
 * begin a header, and a sender that goes wrong is refused where it does;
 * a v1 line is decided within PROXY_V1_MAX bytes and a v2 header within
 * PROXY_MAX, never later.
 *
 * A v2 header's TLVs that handlers see (ALPN, AUTHORITY, UNIQUE_ID, and
 * SSL with its sub-TLVs) are kept as offsets into buf, and proxy_env
 * turns them into PROXY_* variables; their structure is checked here
 * (an SSL TLV's sub-TLVs must fill it exactly, one TLV of a kind), their
 * contents there (printable ASCII, bounded lengths: a bad value costs its
 * variable, not the connection).
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

static int fail(struct proxy_header *out, const char *why)
{
	out->why = why;
	out->has_addr = false;
	return PROXY_INVALID;
}

/* Compares the signature bytes that have arrived: PROXY_DONE once all n
 * match. */
static int match_sig(const uint8_t *p, size_t len, const uint8_t *sig, size_t n,
		     struct proxy_header *out)
{
	for (size_t i = 0; i < n; i++) {
		if (i >= len)
			return PROXY_NEED_MORE;
		if (p[i] != sig[i])
			return fail(out, "not a PROXY header");
	}
	return PROXY_DONE;
}

/* Fills src and dst as sockaddr_in or sockaddr_in6 from v2's layout,
 * which v1 copies: the source then the destination address (4 or 16
 * bytes each), and the two ports, all in network order. */
static void set_addrs(struct proxy_header *out, int af, const uint8_t *addr,
		      const uint8_t *ports)
{
	struct sockaddr_storage *ss[2] = { &out->src, &out->dst };

	for (int k = 0; k < 2; k++) {
		if (af == AF_INET) {
			struct sockaddr_in sin = { .sin_family = AF_INET };

			memcpy(&sin.sin_addr, addr + 4 * k, 4);
			memcpy(&sin.sin_port, ports + 2 * k, 2);
			memcpy(ss[k], &sin, sizeof sin);
		} else {
			struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

			memcpy(&sin6.sin6_addr, addr + 16 * k, 16);
			memcpy(&sin6.sin6_port, ports + 2 * k, 2);
			memcpy(ss[k], &sin6, sizeof sin6);
		}
	}
	out->has_addr = true;
}

/* --- version 1: "PROXY TCP4 SRC DST SPORT DPORT\r\n" --------------------- */

/* The fields of a line, in order; UNKNOWN's free text is F_REST. */
enum { F_TOKEN, F_SRC, F_DST, F_SPORT, F_DPORT, F_REST };

struct v1 {
	int af;			/* AF_INET, AF_INET6, AF_UNSPEC once the token ends */
	int field;
	size_t start;		/* offset of the current field's first byte */
	bool cr;		/* the last byte was the CR of the CRLF */
	uint8_t addr[32];	/* as set_addrs wants them */
	uint8_t ports[4];
};

static const char *const v1_tokens[] = { "TCP4", "TCP6", "UNKNOWN" };
static const int v1_families[] = { AF_INET, AF_INET6, AF_UNSPEC };

/* The token s[0..n) begins (whole: is) one of v1_tokens: its index, or -1. */
static int v1_token(const char *s, size_t n, bool whole)
{
	for (int k = 0; k < 3; k++) {
		size_t tl = strlen(v1_tokens[k]);

		if (n <= tl && memcmp(s, v1_tokens[k], n) == 0 && (!whole || n == tl))
			return k;
	}
	return -1;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether s[0..n) can still become a dotted quad as inet_pton reads one:
 * four numbers 0-255, no leading zeros (octal to some readers). */
static bool v4_prefix_ok(const char *s, size_t n)
{
	unsigned dots = 0, digits = 0, val = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (digits == 0 || ++dots > 3)
				return false;
			digits = val = 0;
		} else if (is_digit(s[i])) {
			if (digits++ == 1 && val == 0)
				return false;
			val = val * 10 + (unsigned)(s[i] - '0');
			if (val > 255)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* Counts the hex groups of s[0..n), IPv6 text without a dotted tail, and
 * whether it holds the one "::" allowed; false on what no continuation
 * mends: a bad byte, five digits in a group, ":::", a second "::", a
 * lone leading ':'. */
static bool v6_groups(const char *s, size_t n, size_t *groups, bool *dcolon)
{
	size_t run = 0;

	*groups = 0;
	*dcolon = false;
	if (n >= 2 && s[0] == ':' && s[1] != ':')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ':') {
			if (i > 0 && s[i - 1] == ':') {
				if (*dcolon)
					return false;
				*dcolon = true;
			}
			run = 0;
		} else if (is_hex(s[i])) {
			if (run++ == 0)
				(*groups)++;
			if (run > 4)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* Whether s[0..n) can still become IPv6 text that inet_pton accepts: at
 * most eight groups, seven around a "::" (which must stand for at least
 * one), or six before a dotted IPv4 tail (five with a "::").  Exact for
 * glibc's reader; the complete field is checked by inet_pton anyway, so
 * a gap here could only make a rejection later, never wrong. */
static bool v6_prefix_ok(const char *s, size_t n)
{
	const char *dot = memchr(s, '.', n);
	size_t groups, tail;
	bool dcolon;

	if (n >= INET6_ADDRSTRLEN)
		return false;
	if (!dot) {
		/* "1:" still owes a group, or the ':' of a "::" */
		size_t owed = n >= 2 && s[n - 1] == ':' && s[n - 2] != ':';

		return v6_groups(s, n, &groups, &dcolon) &&
		       groups + owed <= (dcolon ? 7u : 8u);
	}
	for (tail = (size_t)(dot - s); tail > 0 && s[tail - 1] != ':'; tail--)
		;
	if (tail == 0)		/* a bare dotted quad is not IPv6 text */
		return false;
	if (!v6_groups(s, tail, &groups, &dcolon) || !v4_prefix_ok(s + tail, n - tail))
		return false;
	return dcolon ? groups <= 5 : groups == 6;
}

/* Decimal 0-65535, digits only, "0" the one number that starts with 0. */
static bool port_prefix_ok(const char *s, size_t n)
{
	unsigned long v = 0;

	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]) || (i == 1 && s[0] == '0'))
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > 65535)
			return false;
	}
	return true;
}

/* Checks the current field's bytes so far: NULL, or why they cannot
 * begin a valid field. */
static const char *v1_field_why(const struct v1 *st, const char *s, size_t n)
{
	switch (st->field) {
	case F_TOKEN:
		return v1_token(s, n, false) >= 0 ? NULL : "v1: unknown protocol";
	case F_SRC:
	case F_DST:
		if (st->af == AF_INET)
			return v4_prefix_ok(s, n) ? NULL : "v1: bad IPv4 address";
		return v6_prefix_ok(s, n) ? NULL : "v1: bad IPv6 address";
	case F_SPORT:
	case F_DPORT:
		return port_prefix_ok(s, n) ? NULL : "v1: bad port";
	default:
		return NULL;	/* UNKNOWN: any printable text */
	}
}

/* The fewest bytes that could still finish the line when the current
 * field holds `have` bytes: how the 107-byte limit refuses a line as
 * soon as it can no longer fit, rather than at byte 107. */
static size_t v1_rest(const struct v1 *st, size_t have)
{
	size_t addr = st->af == AF_INET ? 7 : 2;	/* "0.0.0.0", "::" */
	size_t least[] = { 0, addr, addr, 1, 1 };
	size_t r = 2;		/* CRLF */

	if (st->cr)
		return 1;
	if (st->field == F_TOKEN || st->field == F_REST)
		return r;
	for (int f = st->field + 1; f <= F_DPORT; f++)
		r += 1 + least[f];
	return r + (have < least[st->field] ? least[st->field] - have : 0);
}

/* A complete field s[0..n), already known to be a good prefix. */
static const char *v1_take(struct v1 *st, const char *s, size_t n)
{
	char text[INET6_ADDRSTRLEN];
	size_t alen = st->af == AF_INET ? 4 : 16;
	unsigned long v = 0;
	int k;

	switch (st->field) {
	case F_TOKEN:
		if ((k = v1_token(s, n, true)) < 0)
			return "v1: unknown protocol";
		st->af = v1_families[k];
		return NULL;
	case F_SRC:
	case F_DST:
		memcpy(text, s, n);	/* n < 46: the prefix checks saw to it */
		text[n] = '\0';
		if (inet_pton(st->af, text, st->addr + (st->field == F_DST) * alen) != 1)
			return st->af == AF_INET ? "v1: bad IPv4 address" : "v1: bad IPv6 address";
		return NULL;
	default:
		for (size_t i = 0; i < n; i++)
			v = v * 10 + (unsigned long)(s[i] - '0');
		k = st->field == F_DPORT ? 2 : 0;
		st->ports[k] = (uint8_t)(v >> 8);
		st->ports[k + 1] = (uint8_t)v;
		return NULL;
	}
}

/* A space or the CR at p[i] ends the current field. */
static int v1_field_end(const uint8_t *p, size_t i, struct v1 *st,
			struct proxy_header *out)
{
	const char *s = (const char *)p + st->start;
	size_t n = i - st->start;
	bool sp = p[i] == ' ';
	const char *why;

	if (st->field == F_REST) {
		st->cr = !sp;
		return PROXY_NEED_MORE;
	}
	if (n == 0)
		return fail(out, sp ? "v1: fields must be separated by one space"
			    : "v1: line ends after a space");
	if ((why = v1_take(st, s, n)) != NULL)
		return fail(out, why);
	if (st->field == F_TOKEN && st->af == AF_UNSPEC) {
		st->field = F_REST;
		st->cr = !sp;
	} else if (st->field == F_DPORT) {
		if (sp)
			return fail(out, "v1: too many fields");
		st->cr = true;
	} else if (!sp) {
		return fail(out, st->field == F_TOKEN ? "v1: missing addresses"
			    : "v1: missing fields");
	} else {
		st->field++;
	}
	st->start = i + 1;
	return PROXY_NEED_MORE;
}

static int v1_byte(const uint8_t *p, size_t i, struct v1 *st, struct proxy_header *out)
{
	const char *why;

	if (st->cr) {
		if (p[i] != '\n')
			return fail(out, "v1: CR not followed by LF");
		if (st->af != AF_UNSPEC)
			set_addrs(out, st->af, st->addr, st->ports);
		out->len = i + 1;
		return PROXY_DONE;
	}
	if (p[i] == ' ' || p[i] == '\r')
		return v1_field_end(p, i, st, out);
	if (p[i] == '\n')
		return fail(out, "v1: LF without CR");
	if (p[i] < 0x20 || p[i] > 0x7e)
		return fail(out, "v1: byte outside printable ASCII");
	why = v1_field_why(st, (const char *)p + st->start, i + 1 - st->start);
	return why ? fail(out, why) : PROXY_NEED_MORE;
}

static int parse_v1(const uint8_t *p, size_t len, struct proxy_header *out)
{
	static const uint8_t sig[] = { 'P', 'R', 'O', 'X', 'Y', ' ' };
	struct v1 st = { .af = AF_UNSPEC, .field = F_TOKEN, .start = sizeof sig };
	int r = match_sig(p, len, sig, sizeof sig, out);

	if (r != PROXY_DONE)
		return r;
	out->version = 1;
	/* v1_rest makes the line's fate known by byte 107 */
	for (size_t i = sizeof sig; i < len && i < PROXY_V1_MAX; i++) {
		if ((r = v1_byte(p, i, &st, out)) != PROXY_NEED_MORE)
			return r;
		if (i + 1 + v1_rest(&st, i + 1 - st.start) > PROXY_V1_MAX)
			return fail(out, "v1: no CRLF within 107 bytes");
	}
	return PROXY_NEED_MORE;
}

/* --- version 2: a 16-byte binary header, addresses, TLVs ------------------ */

enum { V2_LOCAL = 0, V2_PROXY = 1 };
enum { FAM_UNSPEC, FAM_INET, FAM_INET6, FAM_UNIX };
enum { TR_UNSPEC, TR_STREAM, TR_DGRAM };
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_SSL 0x20
#define PP2_SSL_HEAD 5		/* the SSL TLV's client byte and verify field */

/* The address block's size for each family; the body holds at least it. */
static const size_t v2_block[] = { 0, 12, 36, 216 };

struct v2 {
	int cmd, fam, tr;
	size_t end;		/* 16 + the body's length: the header's */
	size_t crc_at;		/* offset of the CRC32c value, 0 if none */
	size_t ssl_at;		/* offset of the SSL TLV's value, 0 if none */
};

/* The TLVs (level 1) and SSL sub-TLVs (level 2) kept for proxy_env, by
 * type; a second one of a kind makes the header invalid, as for CRC32c:
 * which one would the sender mean? */
static const struct {
	uint8_t type, level;
	const char *twice;
} kept[PROXY_TLV_N] = {
	[PROXY_TLV_ALPN] = { 0x01, 1, "v2: two ALPN TLVs" },
	[PROXY_TLV_AUTHORITY] = { 0x02, 1, "v2: two AUTHORITY TLVs" },
	[PROXY_TLV_UNIQUE_ID] = { 0x05, 1, "v2: two UNIQUE_ID TLVs" },
	[PROXY_TLV_SSL_VERSION] = { 0x21, 2, "v2: two SSL_VERSION sub-TLVs" },
	[PROXY_TLV_SSL_CN] = { 0x22, 2, "v2: two SSL_CN sub-TLVs" },
	[PROXY_TLV_SSL_CIPHER] = { 0x23, 2, "v2: two SSL_CIPHER sub-TLVs" },
	[PROXY_TLV_SSL_SIG_ALG] = { 0x24, 2, "v2: two SSL_SIG_ALG sub-TLVs" },
	[PROXY_TLV_SSL_KEY_ALG] = { 0x25, 2, "v2: two SSL_KEY_ALG sub-TLVs" },
};

/* The kept TLV of this type and level, or PROXY_TLV_N. */
static int kept_index(uint8_t type, uint8_t level)
{
	int k;

	for (k = 0; k < PROXY_TLV_N; k++)
		if (kept[k].type == type && kept[k].level == level)
			break;
	return k;
}

/* A TLV's type byte at p[pos], of this level, has arrived: a second one
 * of a kept kind is refused here, at its first byte.  NULL: fine. */
static const char *v2_type_why(const uint8_t *p, size_t pos, uint8_t level,
			       const struct proxy_header *out)
{
	int k = kept_index(p[pos], level);

	if (k < PROXY_TLV_N && out->tlv[k].off)
		return kept[k].twice;
	if (level == 1 && p[pos] == PP2_TYPE_SSL && out->has_ssl)
		return "v2: two SSL TLVs";
	return NULL;
}

/* A TLV whose head is read: its value is at vpos, tl bytes. */
static void v2_keep(const uint8_t *p, size_t pos, uint8_t level, size_t tl,
		    struct proxy_header *out)
{
	int k = kept_index(p[pos], level);

	if (k < PROXY_TLV_N)
		out->tlv[k] = (struct proxy_span){ (uint16_t)(pos + 3), (uint16_t)tl };
}

/* The SSL TLV's value, p[v..vend): the client byte and verify field, then
 * sub-TLVs that must end exactly at vend.  Checked as bytes arrive, like
 * the TLVs around it (v2_tlvs); PROXY_DONE once walked to vend. */
static int v2_ssl(const uint8_t *p, size_t len, size_t v, size_t vend,
		  struct proxy_header *out)
{
	size_t q = v + PP2_SSL_HEAD, tl;
	const char *why;

	if (vend - v < PP2_SSL_HEAD)
		return fail(out, "v2: SSL TLV shorter than 5 bytes");
	while (q < vend) {
		if (vend - q < 3)
			return fail(out, "v2: stray bytes after the SSL sub-TLVs");
		if (len <= q)
			return PROXY_NEED_MORE;
		if ((why = v2_type_why(p, q, 2, out)) != NULL)
			return fail(out, why);
		if (len <= q + 1)
			return PROXY_NEED_MORE;
		if (q + 3 + ((size_t)p[q + 1] << 8) > vend)
			return fail(out, "v2: SSL sub-TLVs overrun the SSL TLV");
		if (len <= q + 2)
			return PROXY_NEED_MORE;
		tl = (size_t)p[q + 1] << 8 | p[q + 2];
		if (q + 3 + tl > vend)
			return fail(out, "v2: SSL sub-TLVs overrun the SSL TLV");
		v2_keep(p, q, 2, tl, out);
		q += 3 + tl;
	}
	return PROXY_DONE;
}

/* CRC32c (Castagnoli, RFC 4960 appendix B), bit by bit: it runs once per
 * header that carries one, over at most PROXY_MAX bytes. */
static uint32_t crc32c(uint32_t crc, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc;
}

/* The header's CRC32c, computed with its own 4 bytes as zeros. */
static bool v2_crc_ok(const uint8_t *p, const struct v2 *h)
{
	static const uint8_t zeros[4];
	const uint8_t *v = p + h->crc_at;
	uint32_t want = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
			(uint32_t)v[2] << 8 | v[3];
	uint32_t crc = crc32c(0xFFFFFFFFu, p, h->crc_at);

	crc = crc32c(crc, zeros, 4);
	crc = crc32c(crc, v + 4, h->end - h->crc_at - 4);
	return (crc ^ 0xFFFFFFFFu) == want;
}

/* Bytes 12-15: version and command, family and transport, the length.
 * PROXY_DONE once all four are read and sound. */
static int v2_fixed(const uint8_t *p, size_t len, struct v2 *h, struct proxy_header *out)
{
	size_t body;

	if (len <= 12)
		return PROXY_NEED_MORE;
	if (p[12] >> 4 != 2)
		return fail(out, "v2: version is not 2");
	if ((h->cmd = p[12] & 15) > V2_PROXY)
		return fail(out, "v2: unknown command");
	if (len <= 13)
		return PROXY_NEED_MORE;
	if ((h->fam = p[13] >> 4) > FAM_UNIX)
		return fail(out, "v2: unknown address family");
	if ((h->tr = p[13] & 15) > TR_DGRAM)
		return fail(out, "v2: unknown transport");
	if (h->cmd == V2_PROXY && h->tr == TR_DGRAM &&
	    (h->fam == FAM_INET || h->fam == FAM_INET6))
		return fail(out, "v2: UDP addresses on a stream connection");
	/* The high byte alone can already say the body is too long. */
	if (len <= 14)
		return PROXY_NEED_MORE;
	if ((size_t)p[14] << 8 > PROXY_V2_MAX_BODY)
		return fail(out, "v2: header longer than 2048 bytes");
	if (len <= 15)
		return PROXY_NEED_MORE;
	body = (size_t)p[14] << 8 | p[15];
	if (body > PROXY_V2_MAX_BODY)
		return fail(out, "v2: header longer than 2048 bytes");
	if (body < v2_block[h->fam])
		return fail(out, "v2: too short for its addresses");
	h->end = 16 + body;
	return PROXY_DONE;
}

/* Walks the TLVs after the address block; they must end exactly at the
 * header's end.  Only the 3-byte TLV heads are read, so a bad length is
 * seen before the value bytes arrive.  PROXY_DONE: the walk reached the
 * end (the values themselves may still be on their way). */
static int v2_tlvs(const uint8_t *p, size_t len, struct v2 *h, struct proxy_header *out)
{
	size_t pos = 16 + v2_block[h->fam], tl;
	const char *why;
	int r;

	while (pos < h->end) {
		if (h->end - pos < 3)
			return fail(out, "v2: stray bytes after the TLVs");
		if (len <= pos)
			return PROXY_NEED_MORE;
		if ((why = v2_type_why(p, pos, 1, out)) != NULL)
			return fail(out, why);
		if (len <= pos + 1)
			return PROXY_NEED_MORE;
		if (pos + 3 + ((size_t)p[pos + 1] << 8) > h->end)
			return fail(out, "v2: TLVs overrun the header");
		if (p[pos] == PP2_TYPE_CRC32C && p[pos + 1] != 0)
			return fail(out, "v2: CRC32c TLV is not 4 bytes");
		if (len <= pos + 2)
			return PROXY_NEED_MORE;
		tl = (size_t)p[pos + 1] << 8 | p[pos + 2];
		if (pos + 3 + tl > h->end)
			return fail(out, "v2: TLVs overrun the header");
		if (p[pos] == PP2_TYPE_CRC32C) {
			if (tl != 4)
				return fail(out, "v2: CRC32c TLV is not 4 bytes");
			if (h->crc_at)	/* which one would the sender mean? */
				return fail(out, "v2: two CRC32c TLVs");
			h->crc_at = pos + 3;
		}
		/* Known from the lengths alone: said before the SSL walk,
		 * which must wait for the value's bytes. */
		if (h->end - (pos + 3 + tl) > 0 && h->end - (pos + 3 + tl) < 3)
			return fail(out, "v2: stray bytes after the TLVs");
		v2_keep(p, pos, 1, tl, out);
		if (p[pos] == PP2_TYPE_SSL) {
			out->has_ssl = true;
			h->ssl_at = pos + 3;
			if ((r = v2_ssl(p, len, pos + 3, pos + 3 + tl, out)) != PROXY_DONE)
				return r;
		}
		pos += 3 + tl;
	}
	return PROXY_DONE;
}

static int parse_v2(const uint8_t *p, size_t len, struct proxy_header *out)
{
	static const uint8_t sig[] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
		0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
	struct v2 h = { .crc_at = 0 };
	int r = match_sig(p, len, sig, sizeof sig, out);

	if (r != PROXY_DONE)
		return r;
	out->version = 2;
	if ((r = v2_fixed(p, len, &h, out)) != PROXY_DONE)
		return r;
	if ((r = v2_tlvs(p, len, &h, out)) != PROXY_DONE)
		return r;
	if (len < h.end)
		return PROXY_NEED_MORE;
	if (h.crc_at && !v2_crc_ok(p, &h))
		return fail(out, "v2: bad CRC32c");
	out->local = h.cmd == V2_LOCAL;
	if (h.ssl_at) {
		const uint8_t *v = p + h.ssl_at;

		out->ssl_client = v[0];
		out->ssl_verify = (uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 |
				  (uint32_t)v[3] << 8 | v[4];
	}
	/* LOCAL, UNSPEC, AF_UNIX: the connection's own addresses stand. */
	if (h.cmd == V2_PROXY && h.tr == TR_STREAM && h.fam == FAM_INET)
		set_addrs(out, AF_INET, p + 16, p + 24);
	else if (h.cmd == V2_PROXY && h.tr == TR_STREAM && h.fam == FAM_INET6)
		set_addrs(out, AF_INET6, p + 16, p + 48);
	out->len = h.end;
	return PROXY_DONE;
}

int proxy_parse(const void *buf, size_t len, struct proxy_header *out)
{
	const uint8_t *p = buf;

	memset(out, 0, sizeof *out);
	if (len == 0)
		return PROXY_NEED_MORE;
	if (p[0] == 'P')
		return parse_v1(p, len, out);
	if (p[0] == '\r')
		return parse_v2(p, len, out);
	return fail(out, "not a PROXY header");
}

/* --- the TLVs as environment variables ------------------------------------ */

/* Each variable's name and longest value: a DNS name (253), the protocol's
 * own limit for a unique ID (128), and 64 for the rest (X.509's upper
 * bound for a common name; ALPN names, TLS versions, ciphers and
 * algorithms are far shorter).  All of them together fit a conn_info. */
static const struct {
	const char *name, *tlv;
	size_t max;
	const char *too_long;
} env_vars[PROXY_TLV_N] = {
	[PROXY_TLV_ALPN] = { "PROXY_ALPN", "ALPN", 64, "longer than 64 bytes" },
	[PROXY_TLV_AUTHORITY] = { "PROXY_AUTHORITY", "AUTHORITY", 253,
		"longer than 253 bytes" },
	[PROXY_TLV_UNIQUE_ID] = { "PROXY_UNIQUE_ID", "UNIQUE_ID", 128,
		"longer than 128 bytes" },
	[PROXY_TLV_SSL_VERSION] = { "PROXY_SSL_VERSION", "SSL_VERSION", 64,
		"longer than 64 bytes" },
	[PROXY_TLV_SSL_CN] = { "PROXY_SSL_CN", "SSL_CN", 64, "longer than 64 bytes" },
	[PROXY_TLV_SSL_CIPHER] = { "PROXY_SSL_CIPHER", "SSL_CIPHER", 64,
		"longer than 64 bytes" },
	[PROXY_TLV_SSL_SIG_ALG] = { "PROXY_SSL_SIG_ALG", "SSL_SIG_ALG", 64,
		"longer than 64 bytes" },
	[PROXY_TLV_SSL_KEY_ALG] = { "PROXY_SSL_KEY_ALG", "SSL_KEY_ALG", 64,
		"longer than 64 bytes" },
};
#define ENV_ONE(n, max) (sizeof "PROXY_" n "=" + (max))	/* with its NUL */
_Static_assert(ENV_ONE("ALPN", 64) + ENV_ONE("AUTHORITY", 253) +
	       ENV_ONE("UNIQUE_ID", 128) + ENV_ONE("SSL", 1) +
	       ENV_ONE("SSL_CLIENT_CERT", 1) + ENV_ONE("SSL_VERIFY", 10) +
	       ENV_ONE("SSL_VERSION", 64) + ENV_ONE("SSL_CN", 64) +
	       ENV_ONE("SSL_CIPHER", 64) + ENV_ONE("SSL_SIG_ALG", 64) +
	       ENV_ONE("SSL_KEY_ALG", 64) <= CONN_XENV_MAX,
	       "every PROXY_* variable at its longest fits conn_info's xenv");

#define PP2_CLIENT_SSL 0x01
#define PP2_CLIENT_CERT_CONN 0x02
#define PP2_CLIENT_CERT_SESS 0x04

struct env_out {
	char *p;
	size_t len, cap;
	struct proxy_env_drop *drop;
};

static void drop_var(struct env_out *e, const char *name, const char *tlv, const char *why,
		     size_t off, size_t len)
{
	struct proxy_env_drop *d = e->drop;

	if (d->n++ == 0)
		*d = (struct proxy_env_drop){ name, tlv, why, off, len, 1 };
}

/* Appends "NAME=value" and its NUL, or says why not in e->drop. */
static void put_var(struct env_out *e, const char *name, const char *tlv,
		    const void *v, size_t n, size_t off)
{
	size_t nl = strlen(name);

	if (e->cap - e->len < nl + 1 + n + 1) {
		drop_var(e, name, tlv, "no room left", off, off ? n : 0);
		return;
	}
	memcpy(e->p + e->len, name, nl);
	e->p[e->len + nl] = '=';
	memcpy(e->p + e->len + nl + 1, v, n);
	e->p[e->len + nl + 1 + n] = '\0';
	e->len += nl + 1 + n + 1;
}

static bool printable(const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return false;
	return true;
}

/* A string TLV: empty sets nothing; too long or not printable is left
 * out, and said so in e->drop. */
static void put_tlv_var(struct env_out *e, const struct proxy_header *h,
			const uint8_t *buf, int k)
{
	size_t off = h->tlv[k].off, n = h->tlv[k].len;

	if (off == 0 || n == 0)
		return;
	if (n > env_vars[k].max)
		drop_var(e, env_vars[k].name, env_vars[k].tlv, env_vars[k].too_long, off, n);
	else if (!printable(buf + off, n))
		drop_var(e, env_vars[k].name, env_vars[k].tlv, "not printable ASCII", off, n);
	else
		put_var(e, env_vars[k].name, env_vars[k].tlv, buf + off, n, off);
}

/* The SSL TLV: PROXY_SSL says whether the client used TLS at all; only
 * then do the others mean anything (and verify only with a certificate:
 * without one HAProxy sends 0, which must not read as "verified"). */
static void put_ssl_vars(struct env_out *e, const struct proxy_header *h, const uint8_t *buf)
{
	bool tls = h->ssl_client & PP2_CLIENT_SSL;
	bool cert = h->ssl_client & (PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS);
	char num[16];

	put_var(e, "PROXY_SSL", "SSL", tls ? "1" : "0", 1, 0);
	if (!tls)
		return;
	put_var(e, "PROXY_SSL_CLIENT_CERT", "SSL", cert ? "1" : "0", 1, 0);
	if (cert)
		put_var(e, "PROXY_SSL_VERIFY", "SSL", num,
			(size_t)snprintf(num, sizeof num, "%u", (unsigned)h->ssl_verify), 0);
	for (int k = PROXY_TLV_SSL_VERSION; k <= PROXY_TLV_SSL_KEY_ALG; k++)
		put_tlv_var(e, h, buf, k);
}

/* Formats what a v2 header's TLVs said as "NAME=value" strings, each
 * NUL-terminated, back to back in out[0..outlen): the return value is
 * their total length.  buf is the buffer h was parsed from.  A LOCAL
 * header (the proxy speaking for itself) and v1 give nothing. */
size_t proxy_env(const struct proxy_header *h, const void *buf, char *out, size_t outlen,
		 struct proxy_env_drop *drop)
{
	struct env_out e = { out, 0, outlen, drop };

	memset(drop, 0, sizeof *drop);
	if (h->version != 2 || h->local)
		return 0;
	for (int k = PROXY_TLV_ALPN; k <= PROXY_TLV_UNIQUE_ID; k++)
		put_tlv_var(&e, h, buf, k);
	if (h->has_ssl)
		put_ssl_vars(&e, h, buf);
	return e.len;
}
