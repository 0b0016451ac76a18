/* test_proxy.c - unit tests of src/proxy.c, the PROXY protocol parser.
 *
 * One table of samples, each valid form of v1 and v2 and each rule a
 * header can break (with its reason), drives most tests.  An invalid
 * sample is cut right after the byte that breaks it, so "refused as early
 * as the bytes allow" is checked the same way for all of them: fed one
 * byte more each time, the parser must answer NEED_MORE until exactly the
 * sample's full length, and then what the whole sample gives; a valid
 * sample must be decided at its last byte.  Bytes after a header never
 * change the answer or its length.  Around the table: every first byte,
 * every signature byte, the 107- and 2064-byte limits, CRC32c (checked
 * against the standard check value with a table CRC of the tests' own),
 * and IPv4, IPv6 and port fields compared with inet_pton on thousands of
 * generated strings.  Every parse reads a heap copy of exactly the given
 * length, so reading past it fails under ASan. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "suites.h"

#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

/* check records each passing ck_assert (a write to its log), which the
 * loops here would do millions of times; this costs nothing until it fails. */
#define REQUIRE(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

#define SIG "\r\n\r\n\0\r\nQUIT\n"
/* 192.0.2.1:56324 -> 198.51.100.7:443 */
#define A4 "\xc0\x00\x02\x01\xc6\x33\x64\x07\xdc\x04\x01\xbb"
/* [2001:db8::1]:1 -> [2001:db8::ff]:65535 */
#define A6 "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01" \
	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\xff\x00\x01\xff\xff"
#define A45 "0000:0000:0000:0000:0000:ffff:255.255.255.255"
#define V1MAX "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff " \
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535"

static int parse(const uint8_t *b, size_t n, struct proxy_header *h)
{
	uint8_t *p = malloc(n ? n : 1);
	int r;

	REQUIRE(p, "out of memory");
	memcpy(p, b, n);
	r = proxy_parse(p, n, h);
	free(p);
	return r;
}

/* The version the parser must report once it has seen this much. */
static int version_of(const uint8_t *b, size_t n)
{
	if (n >= 6 && memcmp(b, "PROXY ", 6) == 0)
		return 1;
	if (n >= 12 && memcmp(b, SIG, 12) == 0)
		return 2;
	return 0;
}

static size_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
		: sizeof(struct sockaddr_in6);
}

/* The same answer: status, version, reason; for DONE also the length and
 * the addresses. */
static void check_same(int ra, const struct proxy_header *a, int rb,
		       const struct proxy_header *b, const char *ctx)
{
	REQUIRE(ra == rb, "%s: status %d, then %d", ctx, ra, rb);
	REQUIRE(a->version == b->version, "%s: version %d, then %d", ctx,
		a->version, b->version);
	if (ra == PROXY_INVALID)
		REQUIRE(strcmp(a->why, b->why) == 0, "%s: \"%s\", then \"%s\"",
			ctx, a->why, b->why);
	if (ra != PROXY_DONE)
		return;
	REQUIRE(a->len == b->len, "%s: len %zu, then %zu", ctx, a->len, b->len);
	REQUIRE(a->has_addr == b->has_addr, "%s: has_addr changed", ctx);
	REQUIRE(a->local == b->local && a->has_ssl == b->has_ssl &&
		a->ssl_client == b->ssl_client && a->ssl_verify == b->ssl_verify &&
		memcmp(a->tlv, b->tlv, sizeof a->tlv) == 0, "%s: TLVs changed", ctx);
	if (a->has_addr) {
		REQUIRE(a->src.ss_family == b->src.ss_family &&
			memcmp(&a->src, &b->src, sa_len(&a->src)) == 0, "%s: src", ctx);
		REQUIRE(a->dst.ss_family == b->dst.ss_family &&
			memcmp(&a->dst, &b->dst, sa_len(&a->dst)) == 0, "%s: dst", ctx);
	}
}

/* Feeds b[0..n) as the daemon does, one byte more each time: NEED_MORE
 * until a first decision, which every longer prefix repeats.  Returns the
 * prefix length of that decision (0: none) with its answer. */
static size_t first_answer(const uint8_t *b, size_t n, int *r, struct proxy_header *h,
			   const char *ctx)
{
	struct proxy_header x;
	size_t at = 0;

	*r = PROXY_NEED_MORE;
	for (size_t k = 0; k <= n; k++) {
		int rk = parse(b, k, &x);

		REQUIRE(rk == PROXY_NEED_MORE || rk == PROXY_DONE ||
			rk == PROXY_INVALID, "%s: returned %d", ctx, rk);
		if (rk == PROXY_NEED_MORE)
			REQUIRE(at == 0, "%s: NEED_MORE at %zu after a decision at %zu",
				ctx, k, at);
		else if (at == 0) {
			at = k;
			*r = rk;
			*h = x;
		} else
			check_same(*r, h, rk, &x, ctx);
		if (k >= PROXY_MAX)
			REQUIRE(rk != PROXY_NEED_MORE, "%s: NEED_MORE at %zu", ctx, k);
	}
	return at;
}

/* --- the samples ---------------------------------------------------------- */

struct sample {
	const uint8_t *buf;
	size_t len;
	int status;
	const char *why;	/* PROXY_INVALID */
	const char *src, *dst;	/* has_addr: the addresses, as inet_pton reads them */
	unsigned sport, dport;
};

#define OK(lit) { S(lit), PROXY_DONE, NULL, NULL, NULL, 0, 0 }
#define OKA(lit, s, sp, d, dp) { S(lit), PROXY_DONE, NULL, s, d, sp, dp }
#define BAD(lit, why) { S(lit), PROXY_INVALID, why, NULL, NULL, 0, 0 }

static const struct sample fixed[] = {
	/* v1 */
	OKA("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
	    "192.168.0.1", 56324, "192.168.0.11", 443),
	OKA("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", "0.0.0.0", 0, "0.0.0.0", 0),
	OKA("PROXY TCP4 255.255.255.255 10.20.30.40 65535 65535\r\n",
	    "255.255.255.255", 65535, "10.20.30.40", 65535),
	OKA("PROXY TCP6 2001:db8::1 2001:DB8::2 1 2\r\n", "2001:db8::1", 1, "2001:db8::2", 2),
	OKA("PROXY TCP6 :: ::1 0 65535\r\n", "::", 0, "::1", 65535),
	OKA("PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:7:: 80 443\r\n",
	    "::ffff:192.0.2.1", 80, "1:2:3:4:5:6:7:0", 443),
	OKA("PROXY TCP6 1:2:3:4:5:6:1.2.3.4 1::2:3:4:5:6.7.8.9 10 20\r\n",
	    "1:2:3:4:5:6:102:304", 10, "1:0:2:3:4:5:607:809", 20),
	OKA("PROXY TCP6 FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
	/* 107 bytes exactly, with the longest text inet_pton takes */
	OKA("PROXY TCP6 " A45 " ffff:ffff:ffff:ffff:ffff:ffff:ffff:f 65535 65535\r\n",
	    "::ffff:255.255.255.255", 65535, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:f", 65535),
	OK("PROXY UNKNOWN\r\n"),
	OK("PROXY UNKNOWN \r\n"),
	OK("PROXY UNKNOWN TCP4 1.2.3.4 junk ~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./\r\n"),
	OK(V1MAX "\r\n"),
	/* v2 */
	OK(SIG "\x20\x00\x00\x00"),			/* LOCAL */
	OK(SIG "\x20\x11\x00\x0c" A4),			/* LOCAL: addresses ignored */
	OK(SIG "\x20\x12\x00\x0c" A4),			/* LOCAL: even UDP ones */
	OK(SIG "\x20\x22\x00\x24" A6),
	OKA(SIG "\x21\x11\x00\x0c" A4, "192.0.2.1", 56324, "198.51.100.7", 443),
	OKA(SIG "\x21\x21\x00\x24" A6, "2001:db8::1", 1, "2001:db8::ff", 65535),
	OK(SIG "\x21\x00\x00\x00"),			/* PROXY, UNSPEC */
	OK(SIG "\x21\x01\x00\x00"),			/* UNSPEC over STREAM */
	OK(SIG "\x21\x00\x00\x06" "\x04\x00\x03" "pad"),
	OK(SIG "\x21\x10\x00\x0c" A4),			/* INET, transport UNSPEC */
	/* ALPN, AUTHORITY, an empty NOOP, SSL with a sub-TLV */
	OKA(SIG "\x21\x11\x00\x34" A4 "\x01\x00\x02" "h2" "\x02\x00\x0b" "example.com"
	    "\x04\x00\x00" "\x20\x00\x0f" "\x01\0\0\0\0" "\x21\x00\x07" "TLSv1.3",
	    "192.0.2.1", 56324, "198.51.100.7", 443),
	/* with CRC32c, computed by another implementation */
	OKA(SIG "\x21\x11\x00\x13" A4 "\x03\x00\x04\xd4\x5a\x11\xb9",
	    "192.0.2.1", 56324, "198.51.100.7", 443),
	OKA(SIG "\x21\x21\x00\x36" A6 "\x05\x00\x05" "id-42" "\x03\x00\x04\xfd\x3b\x63\x8c"
	    "\x04\x00\x00", "2001:db8::1", 1, "2001:db8::ff", 65535),
	OK(SIG "\x20\x00\x00\x07" "\x03\x00\x04\xa9\xb8\x7e\x8f"),
	/* SSL: every sub-TLV, an unknown one, and one that ends it exactly */
	OK(SIG "\x21\x00\x00\x38" "\x20\x00\x32" "\x07\0\0\0\0" "\x21\x00\x07" "TLSv1.3"
	   "\x22\x00\x01" "a" "\x23\x00\x02" "c1" "\x24\x00\x0a" "RSA-SHA256"
	   "\x25\x00\x07" "RSA2048" "\x2f\x00\x00" "\x01\x00\x00"),
	OK(SIG "\x21\x00\x00\x08" "\x20\x00\x05" "\x00\xff\xff\xff\xff"),	/* no sub-TLVs */
	OK(SIG "\x21\x00\x00\x0b" "\x20\x00\x05" "\x01\0\0\0\0" "\x04\x00\x00"),
	/* sub-TLV types mean nothing at the top level, nor the reverse */
	OK(SIG "\x21\x00\x00\x14" "\x22\x00\x00" "\x20\x00\x0b" "\x01\0\0\0\0"
	   "\x01\x00\x00" "\x01\x00\x00" "\x22\x00\x00"),

	/* not a PROXY header: refused at the first byte that says so */
	BAD("G", "not a PROXY header"),
	BAD("\x16", "not a PROXY header"),		/* TLS */
	BAD("p", "not a PROXY header"),
	BAD("PROXX", "not a PROXY header"),
	BAD("PROXY\r", "not a PROXY header"),
	BAD("PROXY\t", "not a PROXY header"),
	BAD("\r\n\r\n\x01", "not a PROXY header"),
	BAD("\r\n\r\n\0\r\nQUIX", "not a PROXY header"),
	BAD("\r\r", "not a PROXY header"),
	/* v1: the protocol token */
	BAD("PROXY TCP5", "v1: unknown protocol"),
	BAD("PROXY t", "v1: unknown protocol"),
	BAD("PROXY TCP ", "v1: unknown protocol"),
	BAD("PROXY UNKNOWNX", "v1: unknown protocol"),
	BAD("PROXY UD", "v1: unknown protocol"),
	BAD("PROXY  ", "v1: fields must be separated by one space"),
	BAD("PROXY \r", "v1: line ends after a space"),
	BAD("PROXY TCP4\r", "v1: missing addresses"),
	/* v1: the line */
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1: LF without CR"),
	BAD("PROXY UNKNOWN\n", "v1: LF without CR"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r", "v1: CR not followed by LF"),
	BAD("PROXY UNKNOWN\rX", "v1: CR not followed by LF"),
	BAD("PROXY UNKNOWN caf\xc3", "v1: byte outside printable ASCII"),
	BAD("PROXY UNKNOWN a\t", "v1: byte outside printable ASCII"),
	BAD("PROXY UNKNOWN \x7f", "v1: byte outside printable ASCII"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0", "v1: byte outside printable ASCII"),
	BAD("PROXY TCP4  ", "v1: fields must be separated by one space"),
	BAD("PROXY TCP4 1.2.3.4  ", "v1: fields must be separated by one space"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1  ", "v1: fields must be separated by one space"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", "v1: too many fields"),
	BAD("PROXY TCP4 1.2.3.4\r", "v1: missing fields"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1\r", "v1: missing fields"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r", "v1: line ends after a space"),
	/* v1: IPv4 as inet_pton reads it: no octal, no short forms */
	BAD("PROXY TCP4 01", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 1.2.3.00", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 256", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 1.2.3.4.", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 1..", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 .", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 0x", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 1.2.3 ", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 1.2.3. ", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 :", "v1: bad IPv4 address"),
	BAD("PROXY TCP4 1.2.3.4 :", "v1: bad IPv4 address"),
	/* v1: IPv6 as inet_pton reads it: no zone, no brackets */
	BAD("PROXY TCP6 [", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 fe80::1%", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 12345", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1:::", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1::2::", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 :1", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1:2:3:4:5:6:7:8:", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1:2:3:4:5:6:7::1", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1.", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1:2:3:4:5:6:7:1.", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1:2:3:4:5:6::1.", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 ::1.2.3.4.", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 ::ffff:1.2.3.4:", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 ::ffff:01.", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1:2 ", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 1: ", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 " A45 "0", "v1: bad IPv6 address"),
	BAD("PROXY TCP6 ::1 1.", "v1: bad IPv6 address"),
	/* v1: ports */
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 01", "v1: bad port"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 00", "v1: bad port"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 65536", "v1: bad port"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 100000", "v1: bad port"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 +", "v1: bad port"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 -", "v1: bad port"),
	BAD("PROXY TCP4 1.2.3.4 5.6.7.8 1 2x", "v1: bad port"),
	BAD("PROXY TCP6 ::1 ::1 80 04", "v1: bad port"),
	/* v1: 107 bytes: refused once the line can no longer fit */
	BAD(V1MAX "\r\r", "v1: CR not followed by LF"),
	BAD(V1MAX "x", "v1: no CRLF within 107 bytes"),
	BAD("PROXY TCP6 " A45 " " A45, "v1: no CRLF within 107 bytes"),
	BAD("PROXY TCP6 " A45 " ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff 65535 65535",
	    "v1: no CRLF within 107 bytes"),
	/* v2: bytes 12-15 */
	BAD(SIG "\x11", "v2: version is not 2"),
	BAD(SIG "\x01", "v2: version is not 2"),
	BAD(SIG "\x22", "v2: unknown command"),
	BAD(SIG "\x2f", "v2: unknown command"),
	BAD(SIG "\x21\x41", "v2: unknown address family"),
	BAD(SIG "\x20\xf0", "v2: unknown address family"),
	BAD(SIG "\x21\x13", "v2: unknown transport"),
	BAD(SIG "\x20\x03", "v2: unknown transport"),
	BAD(SIG "\x21\x12", "v2: UDP addresses on a stream connection"),
	BAD(SIG "\x21\x22", "v2: UDP addresses on a stream connection"),
	BAD(SIG "\x21\x11\x09", "v2: header longer than 2048 bytes"),
	BAD(SIG "\x21\x11\xff", "v2: header longer than 2048 bytes"),
	BAD(SIG "\x21\x11\x08\x01", "v2: header longer than 2048 bytes"),
	BAD(SIG "\x20\x00\x08\x01", "v2: header longer than 2048 bytes"),
	BAD(SIG "\x21\x11\x00\x0b", "v2: too short for its addresses"),
	BAD(SIG "\x21\x21\x00\x23", "v2: too short for its addresses"),
	BAD(SIG "\x21\x31\x00\xd7", "v2: too short for its addresses"),
	BAD(SIG "\x20\x11\x00\x00", "v2: too short for its addresses"),
	/* v2: TLVs must fill the body exactly */
	BAD(SIG "\x21\x11\x00\x0d", "v2: stray bytes after the TLVs"),
	BAD(SIG "\x21\x11\x00\x0e", "v2: stray bytes after the TLVs"),
	BAD(SIG "\x20\x00\x00\x02", "v2: stray bytes after the TLVs"),
	BAD(SIG "\x21\x11\x00\x10" A4 "\x04\x00\x00", "v2: stray bytes after the TLVs"),
	BAD(SIG "\x21\x11\x00\x11" A4 "\x04\x00\x00", "v2: stray bytes after the TLVs"),
	BAD(SIG "\x21\x11\x00\x10" A4 "\x01\x00\x02", "v2: TLVs overrun the header"),
	BAD(SIG "\x21\x11\x00\x10" A4 "\x01\x01", "v2: TLVs overrun the header"),
	BAD(SIG "\x20\x00\x00\x03" "\x04\x00\x01", "v2: TLVs overrun the header"),
	BAD(SIG "\x21\x11\x00\x1c" A4 "\x04\x00\x03" "abc" "\x01\x00\x08",
	    "v2: TLVs overrun the header"),
	/* v2: CRC32c */
	BAD(SIG "\x21\x11\x02\x00" A4 "\x03\x01", "v2: CRC32c TLV is not 4 bytes"),
	BAD(SIG "\x21\x11\x00\x20" A4 "\x03\x00\x05", "v2: CRC32c TLV is not 4 bytes"),
	BAD(SIG "\x21\x11\x00\x20" A4 "\x03\x00\x00", "v2: CRC32c TLV is not 4 bytes"),
	BAD(SIG "\x21\x11\x00\x1a" A4 "\x03\x00\x04\0\0\0\0" "\x03\x00\x04",
	    "v2: two CRC32c TLVs"),
	BAD(SIG "\x21\x11\x00\x13" A4 "\x03\x00\x04\xd4\x5a\x11\xb8", "v2: bad CRC32c"),
	BAD(SIG "\x21\x11\x00\x13" "\xc0\x00\x02\x02\xc6\x33\x64\x07\xdc\x04\x01\xbb"
	    "\x03\x00\x04\xd4\x5a\x11\xb9", "v2: bad CRC32c"),
	BAD(SIG "\x20\x00\x00\x07" "\x03\x00\x04\0\0\0\0", "v2: bad CRC32c"),
	/* v2: the SSL TLV and its sub-TLVs, refused where the bytes say so */
	BAD(SIG "\x21\x11\x00\x0f" A4 "\x20\x00\x00", "v2: SSL TLV shorter than 5 bytes"),
	BAD(SIG "\x21\x11\x00\x13" A4 "\x20\x00\x04", "v2: SSL TLV shorter than 5 bytes"),
	BAD(SIG "\x20\x00\x00\x03" "\x20\x00\x00", "v2: SSL TLV shorter than 5 bytes"),
	BAD(SIG "\x21\x11\x00\x16" A4 "\x20\x00\x07", "v2: stray bytes after the SSL sub-TLVs"),
	BAD(SIG "\x21\x11\x00\x1a" A4 "\x20\x00\x0b" "\x01\0\0\0\0" "\x21\x00\x01",
	    "v2: stray bytes after the SSL sub-TLVs"),
	BAD(SIG "\x21\x11\x00\x17" A4 "\x20\x00\x08" "\x01\0\0\0\0" "\x21\x00\x01",
	    "v2: SSL sub-TLVs overrun the SSL TLV"),
	BAD(SIG "\x21\x11\x00\x17" A4 "\x20\x00\x08" "\x01\0\0\0\0" "\x22\x01",
	    "v2: SSL sub-TLVs overrun the SSL TLV"),
	/* a sub-TLV that would still fit the header, not the SSL TLV */
	BAD(SIG "\x21\x11\x00\x30" A4 "\x20\x00\x08" "\x01\0\0\0\0" "\x23\x00\x04",
	    "v2: SSL sub-TLVs overrun the SSL TLV"),
	/* an SSL TLV that overruns the header: the outer walk says so */
	BAD(SIG "\x21\x11\x00\x14" A4 "\x20\x00\x06", "v2: TLVs overrun the header"),
	/* one of a kind */
	BAD(SIG "\x21\x11\x00\x12" A4 "\x01\x00\x00" "\x01", "v2: two ALPN TLVs"),
	BAD(SIG "\x21\x11\x00\x16" A4 "\x02\x00\x01" "a" "\x04\x00\x00" "\x02",
	    "v2: two AUTHORITY TLVs"),
	BAD(SIG "\x20\x00\x00\x06" "\x05\x00\x00" "\x05", "v2: two UNIQUE_ID TLVs"),
	BAD(SIG "\x21\x11\x00\x17" A4 "\x20\x00\x05" "\x01\0\0\0\0" "\x20",
	    "v2: two SSL TLVs"),
	BAD(SIG "\x21\x11\x00\x1a" A4 "\x20\x00\x0b" "\x01\0\0\0\0" "\x22\x00\x00" "\x22",
	    "v2: two SSL_CN sub-TLVs"),
	BAD(SIG "\x21\x00\x00\x14" "\x20\x00\x11" "\x01\0\0\0\0" "\x21\x00\x00"
	    "\x23\x00\x00" "\x21", "v2: two SSL_VERSION sub-TLVs"),
};

#define N_FIXED (sizeof fixed / sizeof fixed[0])

/* --- samples built at run time: AF_UNIX blocks, 2048-byte bodies, CRCs --- */

static uint32_t crc_table[256];

/* A table CRC32c, unlike proxy.c's bitwise one, so they check each other. */
static uint32_t test_crc32c(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	if (crc_table[1] == 0)
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int b = 0; b < 8; b++)
				c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
			crc_table[i] = c;
		}
	for (size_t i = 0; i < n; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return crc ^ 0xFFFFFFFFu;
}

struct hdr {
	uint8_t b[PROXY_MAX + 64];
	size_t n;
};

static void put(struct hdr *h, const void *p, size_t n)
{
	REQUIRE(h->n + n <= sizeof h->b, "header too long: %zu", h->n + n);
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void put_tlv(struct hdr *h, uint8_t type, const void *v, size_t n)
{
	uint8_t head[3] = { type, (uint8_t)(n >> 8), (uint8_t)n };

	put(h, head, 3);
	put(h, v, n);
}

static void start_v2(struct hdr *h, uint8_t ver_cmd, uint8_t fam, const void *addr,
		     size_t alen)
{
	h->n = 0;
	put(h, SIG, 12);
	put(h, &ver_cmd, 1);
	put(h, &fam, 1);
	put(h, "\0\0", 2);
	put(h, addr, alen);
}

/* Sets the length field from what was put; then, if crc_at, the CRC32c. */
static void finish_v2(struct hdr *h, size_t crc_at)
{
	uint32_t c;

	h->b[14] = (uint8_t)((h->n - 16) >> 8);
	h->b[15] = (uint8_t)(h->n - 16);
	if (crc_at) {
		memset(h->b + crc_at, 0, 4);
		c = test_crc32c(h->b, h->n);
		h->b[crc_at] = (uint8_t)(c >> 24);
		h->b[crc_at + 1] = (uint8_t)(c >> 16);
		h->b[crc_at + 2] = (uint8_t)(c >> 8);
		h->b[crc_at + 3] = (uint8_t)c;
	}
}

/* A NOOP TLV that brings the body to exactly `body` bytes. */
static void pad_to(struct hdr *h, size_t body)
{
	static const uint8_t zeros[PROXY_V2_MAX_BODY];

	REQUIRE(16 + body >= h->n + 3, "no room to pad");
	put_tlv(h, 0x04, zeros, 16 + body - h->n - 3);
}

#define N_BUILT 9
static struct hdr built_hdr[N_BUILT];
static struct sample built[N_BUILT];

static void build_samples(void)
{
	uint8_t unx[216] = "/run/front.sock";
	struct hdr *h = built_hdr;
	size_t at;

	memcpy(unx + 108, "/run/back.sock", 15);
	/* AF_UNIX, stream and datagram: the real addresses stand */
	start_v2(&h[0], 0x21, 0x31, unx, sizeof unx);
	finish_v2(&h[0], 0);
	start_v2(&h[1], 0x21, 0x32, unx, sizeof unx);
	put_tlv(&h[1], 0x05, "uid", 3);
	finish_v2(&h[1], 0);
	/* the largest body, exactly PROXY_MAX bytes */
	start_v2(&h[2], 0x21, 0x11, A4, 12);
	pad_to(&h[2], PROXY_V2_MAX_BODY);
	finish_v2(&h[2], 0);
	/* and with a CRC32c, first or last */
	start_v2(&h[3], 0x21, 0x21, A6, 36);
	at = h[3].n + 3;
	put_tlv(&h[3], 0x03, "\0\0\0\0", 4);
	pad_to(&h[3], PROXY_V2_MAX_BODY);
	finish_v2(&h[3], at);
	start_v2(&h[4], 0x20, 0x00, "", 0);
	put_tlv(&h[4], 0x01, "http/1.1", 8);
	at = h[4].n + 3;
	put_tlv(&h[4], 0x03, "\0\0\0\0", 4);
	finish_v2(&h[4], at);
	/* a CRC over the largest body, wrong in its last bit */
	memcpy(&h[5], &h[3], sizeof h[5]);
	h[5].b[h[5].n - 1] ^= 1;
	/* a last TLV one byte too long for the largest body: refused at its
	 * length's second byte, long before the body's end */
	start_v2(&h[6], 0x21, 0x11, A4, 12);
	put_tlv(&h[6], 0x04, "", 0);
	h[6].b[h[6].n - 2] = (PROXY_V2_MAX_BODY - 12 - 3 + 1) >> 8;
	h[6].b[h[6].n - 1] = (uint8_t)(PROXY_V2_MAX_BODY - 12 - 3 + 1);
	h[6].b[14] = PROXY_V2_MAX_BODY >> 8;
	h[6].b[15] = 0;
	/* UNIX with an address block one byte short */
	start_v2(&h[7], 0x21, 0x31, unx, 215);
	finish_v2(&h[7], 0);
	h[7].n = 16;
	/* LOCAL over INET6 with a CRC: checked like any other */
	start_v2(&h[8], 0x20, 0x21, A6, 36);
	at = h[8].n + 3;
	put_tlv(&h[8], 0x03, "\0\0\0\0", 4);
	finish_v2(&h[8], at);

	for (int i = 0; i < N_BUILT; i++)
		built[i] = (struct sample){ h[i].b, h[i].n, PROXY_DONE, NULL, NULL, NULL, 0, 0 };
	built[5].status = PROXY_INVALID;
	built[5].why = "v2: bad CRC32c";
	built[6].status = PROXY_INVALID;
	built[6].why = "v2: TLVs overrun the header";
	built[7].status = PROXY_INVALID;
	built[7].why = "v2: too short for its addresses";
	built[2] = (struct sample){ h[2].b, h[2].n, PROXY_DONE, NULL, "192.0.2.1",
		"198.51.100.7", 56324, 443 };
	built[3] = (struct sample){ h[3].b, h[3].n, PROXY_DONE, NULL, "2001:db8::1",
		"2001:db8::ff", 1, 65535 };
}

#define N_SAMPLES (N_FIXED + N_BUILT)

static const struct sample *sample(size_t i)
{
	static bool ready;

	if (i < N_FIXED)
		return &fixed[i];
	if (!ready)
		build_samples();
	ready = true;
	return &built[i - N_FIXED];
}

static void describe(const struct sample *s, size_t i, char *ctx, size_t len)
{
	size_t o = (size_t)snprintf(ctx, len, "sample %zu \"", i);

	for (size_t k = 0; k < s->len && k < 48 && o + 5 < len; k++)
		o += (size_t)snprintf(ctx + o, len - o, s->buf[k] >= 0x20 && s->buf[k] < 0x7f
				      ? "%c" : "\\x%02x", s->buf[k]);
	snprintf(ctx + o, len - o, "%s\"", s->len > 48 ? "..." : "");
}

static void check_addr(const struct sockaddr_storage *ss, const char *text,
		       unsigned port, const char *ctx)
{
	uint8_t want[16];

	if (strchr(text, ':')) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		ck_assert_int_eq(inet_pton(AF_INET6, text, want), 1);
		REQUIRE(ss->ss_family == AF_INET6, "%s: family %d", ctx, ss->ss_family);
		REQUIRE(memcmp(&sin6->sin6_addr, want, 16) == 0, "%s: not %s", ctx, text);
		REQUIRE(ntohs(sin6->sin6_port) == port, "%s: port %u", ctx,
			ntohs(sin6->sin6_port));
	} else {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		ck_assert_int_eq(inet_pton(AF_INET, text, want), 1);
		REQUIRE(ss->ss_family == AF_INET, "%s: family %d", ctx, ss->ss_family);
		REQUIRE(memcmp(&sin->sin_addr, want, 4) == 0, "%s: not %s", ctx, text);
		REQUIRE(ntohs(sin->sin_port) == port, "%s: port %u", ctx,
			ntohs(sin->sin_port));
	}
}

/* The whole sample's answer, field by field. */
static void check_sample(size_t i)
{
	const struct sample *s = sample(i);
	struct proxy_header h;
	char ctx[300];
	int r;

	describe(s, i, ctx, sizeof ctx);
	memset(&h, 0x5a, sizeof h);	/* everything must be set, or cleared */
	r = parse(s->buf, s->len, &h);
	REQUIRE(r == s->status, "%s: status %d (%s)", ctx, r, r == PROXY_INVALID
		? h.why : "");
	REQUIRE(h.version == version_of(s->buf, s->len), "%s: version %d", ctx,
		h.version);
	if (r == PROXY_INVALID) {
		REQUIRE(h.why && strcmp(h.why, s->why) == 0, "%s: why \"%s\"", ctx, h.why);
		return;
	}
	REQUIRE(h.len == s->len, "%s: len %zu", ctx, h.len);
	REQUIRE(h.why == NULL, "%s: why set", ctx);
	REQUIRE(h.has_addr == (s->src != NULL), "%s: has_addr %d", ctx, h.has_addr);
	if (s->src) {
		check_addr(&h.src, s->src, s->sport, ctx);
		check_addr(&h.dst, s->dst, s->dport, ctx);
	}
}

/* Fed a byte at a time: NEED_MORE up to the sample's last byte, where the
 * decision comes: a valid header cannot be decided earlier, an invalid
 * one (cut right after its first bad byte) must not be decided later. */
static void check_prefixes(size_t i)
{
	const struct sample *s = sample(i);
	struct proxy_header h, whole;
	char ctx[300];
	size_t at;
	int r, rw;

	describe(s, i, ctx, sizeof ctx);
	at = first_answer(s->buf, s->len, &r, &h, ctx);
	REQUIRE(at == s->len, "%s: decided at %zu of %zu (%s)", ctx, at, s->len,
		r == PROXY_INVALID ? h.why : "");
	rw = parse(s->buf, s->len, &whole);
	check_same(r, &h, rw, &whole, ctx);
}

START_TEST(test_proxy_samples)
{
	for (size_t i = 0; i < N_SAMPLES; i++) {
		check_sample(i);
		check_prefixes(i);
	}
}
END_TEST

/* Whatever follows the header never changes the answer or its length. */
START_TEST(test_proxy_trailers)
{
	static uint8_t big[PROXY_MAX + 1];
	static const struct {
		const uint8_t *b;
		size_t n;
	} trailers[] = {
		{ S("GET / HTTP/1.1\r\nHost: x\r\n\r\n") },
		{ S("\r\n") },
		{ S("\n") },
		{ S("\0\0\0\0") },
		{ S("\xff") },
		{ S(" ") },
		{ S("PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r\n") },
		{ S(SIG "\x21\x11\x00\x0c" A4) },
		{ big, sizeof big },
	};
	static uint8_t buf[PROXY_MAX + sizeof big];
	struct proxy_header h, h2;
	char ctx[300];
	int r, r2;

	memset(big, 'A', sizeof big);
	for (size_t i = 0; i < N_SAMPLES; i++) {
		const struct sample *s = sample(i);

		describe(s, i, ctx, sizeof ctx);
		r = parse(s->buf, s->len, &h);
		memcpy(buf, s->buf, s->len);
		for (size_t t = 0; t < sizeof trailers / sizeof trailers[0]; t++) {
			memcpy(buf + s->len, trailers[t].b, trailers[t].n);
			check_same(r, &h, parse(buf, s->len + trailers[t].n, &h2), &h2, ctx);
			REQUIRE(first_answer(buf, s->len + trailers[t].n, &r2, &h2, ctx) == s->len,
				"%s, trailer %zu", ctx, t);
		}
	}
}
END_TEST

/* The prefix property on near misses of every sample: each byte replaced
 * by a few others, each result fed one byte at a time. */
START_TEST(test_proxy_mutations)
{
	static const uint8_t subst[] = { 0, ' ', '\r', '\n', ':', '.', '0', '9', 'f', 0x03 };
	struct proxy_header h;
	uint8_t buf[320];
	char ctx[300];
	int r;

	for (size_t n = 0; n < N_SAMPLES; n++) {
		const struct sample *s = sample(n);

		if (s->len > sizeof buf)
			continue;	/* the 2048-byte bodies: left to the fuzzer */
		describe(s, n, ctx, sizeof ctx);
		for (size_t i = 0; i < s->len; i++)
			for (size_t k = 0; k <= sizeof subst; k++) {
				memcpy(buf, s->buf, s->len);
				buf[i] = k < sizeof subst ? subst[k] : buf[i] ^ 1;
				first_answer(buf, s->len, &r, &h, ctx);
			}
	}
}
END_TEST

/* --- around the table ------------------------------------------------------ */

START_TEST(test_proxy_empty)
{
	struct proxy_header h;

	memset(&h, 0x5a, sizeof h);
	ck_assert_int_eq(proxy_parse("", 0, &h), PROXY_NEED_MORE);
	ck_assert_int_eq(h.version, 0);
	ck_assert(!h.has_addr);
	ck_assert_int_eq(parse(S("P"), &h), PROXY_NEED_MORE);
	ck_assert_int_eq(parse(S("\r"), &h), PROXY_NEED_MORE);
	ck_assert_int_eq(parse(S("PROXY "), &h), PROXY_NEED_MORE);
	ck_assert_int_eq(h.version, 1);
	ck_assert_int_eq(parse(S(SIG), &h), PROXY_NEED_MORE);
	ck_assert_int_eq(h.version, 2);
}
END_TEST

/* "GET / HTTP/1.0" and any other first byte but 'P' and CR: refused at 1. */
START_TEST(test_proxy_first_byte)
{
	struct proxy_header h;

	ck_assert_int_eq(proxy_parse("GET / HTTP/1.0\r\n\r\n", 1, &h), PROXY_INVALID);
	ck_assert_str_eq(h.why, "not a PROXY header");
	for (int c = 0; c < 256; c++) {
		uint8_t b = (uint8_t)c;

		REQUIRE(parse(&b, 1, &h) == (c == 'P' || c == '\r' ? PROXY_NEED_MORE
					     : PROXY_INVALID), "byte 0x%02x", c);
	}
}
END_TEST

/* Each signature byte is checked as it arrives. */
START_TEST(test_proxy_signature_bytes)
{
	static const struct {
		const char *sig;
		size_t n;
	} sigs[] = { { "PROXY ", 6 }, { SIG, 12 } };
	struct proxy_header h;
	uint8_t buf[16];

	for (size_t s = 0; s < 2; s++)
		for (size_t i = 0; i < sigs[s].n; i++)
			for (int c = 0; c < 256; c++) {
				memcpy(buf, sigs[s].sig, i);
				buf[i] = (uint8_t)c;
				if (c == (uint8_t)sigs[s].sig[i] || (i == 0 && (c == 'P' || c == '\r')))
					REQUIRE(parse(buf, i + 1, &h) == PROXY_NEED_MORE, "%zu %d", i, c);
				else {
					REQUIRE(parse(buf, i + 1, &h) == PROXY_INVALID &&
						strcmp(h.why, "not a PROXY header") == 0, "%zu %d", i, c);
				}
			}
}
END_TEST

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
	return (uint32_t)(rng_state >> 33);
}

/* Never NEED_MORE at PROXY_MAX bytes (v1: at 107), whatever they are. */
START_TEST(test_proxy_decided_by_max)
{
	static uint8_t buf[PROXY_MAX];
	static const char *alphabet[] = { "0123456789. ", "0123456789abcdef:. ",
		"0123456789 ", " !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~" };
	struct proxy_header h;
	char ctx[64];

	rng_state = 1;
	for (int n = 0; n < 400; n++) {
		const char *a = alphabet[n % 4];
		size_t o = (size_t)snprintf((char *)buf, sizeof buf, "PROXY %s",
					    n % 4 == 3 ? "UNKNOWN " : n % 2 ? "TCP6 " : "TCP4 ");

		while (o < PROXY_V1_MAX)
			buf[o++] = (uint8_t)a[rnd() % strlen(a)];
		snprintf(ctx, sizeof ctx, "v1 line %d", n);
		REQUIRE(parse(buf, PROXY_V1_MAX, &h) == PROXY_INVALID, "%s", ctx);
		first_answer(buf, PROXY_V1_MAX, &(int){ 0 }, &h, ctx);
	}
	for (int n = 0; n < 200; n++) {
		memcpy(buf, SIG, 12);
		for (size_t i = 12; i < sizeof buf; i++)
			buf[i] = (uint8_t)rnd();
		buf[12] = 0x20 | (n & 1);
		buf[13] = (uint8_t)(n % 3 ? 0x11 : 0x00);
		buf[14] = (uint8_t)(rnd() % 9);
		REQUIRE(parse(buf, sizeof buf, &h) != PROXY_NEED_MORE, "v2 header %d", n);
		if (n % 10 == 0)
			first_answer(buf, sizeof buf, &(int){ 0 }, &h, "v2 header");
	}
}
END_TEST

/* Random chains of TLVs that fill the body exactly are accepted; with one
 * length off by one or two, refused. */
START_TEST(test_proxy_random_tlvs)
{
	static struct hdr h;
	struct proxy_header ph;
	char ctx[64];
	int r;

	rng_state = 7;
	for (int n = 0; n < 300; n++) {
		size_t last = 0, crc_at = 0;
		uint8_t v[280];

		start_v2(&h, 0x21, 0x11, A4, 12);
		for (size_t i = 0; i < sizeof v; i++)
			v[i] = (uint8_t)rnd();
		for (int t = (int)(rnd() % 8); t > 0; t--) {
			uint8_t type = (uint8_t)rnd();

			if (type == 0x03 && crc_at == 0) {
				crc_at = h.n + 3;
				put_tlv(&h, type, "\0\0\0\0", 4);
				continue;
			}
			/* CRC32c, SSL and the one-of-a-kind TLVs have rules
			 * of their own, tested on their own */
			if (type == 0x03 || type == 0x01 || type == 0x02 || type == 0x05 ||
			    type == 0x20)
				type = 0x04;
			last = h.n;	/* the last TLV, if no CRC follows it */
			put_tlv(&h, type, v, rnd() % (n % 3 ? 20 : sizeof v));
		}
		finish_v2(&h, crc_at);
		snprintf(ctx, sizeof ctx, "chain %d", n);
		REQUIRE(first_answer(h.b, h.n, &r, &ph, ctx) == h.n, "%s", ctx);
		REQUIRE(r == PROXY_DONE && ph.len == h.n && ph.has_addr, "%s", ctx);
		if (last == 0 || crc_at > last)
			continue;
		for (int d = -2; d <= 2; d++) {
			struct hdr m = h;
			unsigned tl = (unsigned)(m.b[last + 1] << 8 | m.b[last + 2]) + (unsigned)d;

			if (d == 0 || tl > 0xffff)
				continue;
			m.b[last + 1] = (uint8_t)(tl >> 8);
			m.b[last + 2] = (uint8_t)tl;
			r = parse(m.b, m.n, &ph);
			REQUIRE(r == PROXY_INVALID, "%s, length %+d: %d", ctx, d, r);
			REQUIRE(strcmp(ph.why, d > 0 ? "v2: TLVs overrun the header"
				       : "v2: stray bytes after the TLVs") == 0,
				"%s, length %+d: %s", ctx, d, ph.why);
		}
	}
}
END_TEST

START_TEST(test_proxy_crc32c)
{
	static struct hdr h;
	struct proxy_header ph;
	size_t at;

	ck_assert_uint_eq(test_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	start_v2(&h, 0x21, 0x11, A4, 12);
	put_tlv(&h, 0x02, "example.org", 11);
	at = h.n + 3;
	put_tlv(&h, 0x03, "\0\0\0\0", 4);
	put_tlv(&h, 0x04, "pad", 3);
	finish_v2(&h, at);
	ck_assert_int_eq(parse(h.b, h.n, &ph), PROXY_DONE);
	/* any bit of an address, a TLV value or the CRC itself */
	for (size_t i = 16; i < h.n; i++) {
		bool head = (i >= 28 && i < 31) || (i >= at - 3 && i < at) ||
			(i >= at + 4 && i < at + 7);

		if (head)
			continue;
		for (int b = 0; b < 8; b++) {
			h.b[i] ^= (uint8_t)(1 << b);
			REQUIRE(parse(h.b, h.n, &ph) == PROXY_INVALID &&
				strcmp(ph.why, "v2: bad CRC32c") == 0, "byte %zu bit %d: %s",
				i, b, ph.why);
			h.b[i] ^= (uint8_t)(1 << b);
		}
	}
	/* the fixed header is covered too: LOCAL for PROXY */
	h.b[12] = 0x20;
	ck_assert_int_eq(parse(h.b, h.n, &ph), PROXY_INVALID);
	ck_assert_str_eq(ph.why, "v2: bad CRC32c");
}
END_TEST

/* Field text against inet_pton: a line is accepted exactly when its
 * address is, on strings made of the pieces addresses are made of. */
static void fields_against_inet_pton(int af, const char *const *pieces, size_t np)
{
	char addr[64], line[160], ctx[200];
	struct proxy_header h;
	uint8_t want[16];
	int r, ok;

	for (int n = 0; n < 20000; n++) {
		size_t o = 0;

		for (int k = 1 + (int)(rnd() % 8); k > 0 && o < 40; k--)
			o += (size_t)snprintf(addr + o, sizeof addr - o, "%s", pieces[rnd() % np]);
		ok = inet_pton(af, addr, want) == 1;
		snprintf(line, sizeof line, "PROXY %s %s %s 1 2\r\n", af == AF_INET ? "TCP4" : "TCP6",
			 addr, af == AF_INET ? "1.2.3.4" : "::1");
		snprintf(ctx, sizeof ctx, "\"%s\"", addr);
		first_answer((const uint8_t *)line, strlen(line), &r, &h, ctx);
		REQUIRE(r == (ok ? PROXY_DONE : PROXY_INVALID), "%s: %d (%s)", ctx, r,
			r == PROXY_INVALID ? h.why : "");
		if (ok && af == AF_INET)
			REQUIRE(memcmp(&((struct sockaddr_in *)&h.src)->sin_addr, want, 4) == 0,
				"%s", ctx);
		else if (ok)
			REQUIRE(memcmp(&((struct sockaddr_in6 *)&h.src)->sin6_addr, want, 16) == 0,
				"%s", ctx);
		else
			REQUIRE(strcmp(h.why, af == AF_INET ? "v1: bad IPv4 address"
				       : "v1: bad IPv6 address") == 0, "%s: %s", ctx, h.why);
	}
}

START_TEST(test_proxy_ipv4_fields)
{
	static const char *const pieces[] = { "0", "1", "9", "25", "255", "256", "01", "00",
		".", ".", ".", "1.2.3.4", "192.168", "x", ":" };

	rng_state = 3;
	fields_against_inet_pton(AF_INET, pieces, sizeof pieces / sizeof pieces[0]);
}
END_TEST

START_TEST(test_proxy_ipv6_fields)
{
	static const char *const pieces[] = { "0", "1", "ff", "FFFF", "12345", "a", ":",
		":", "::", ":::", ".", "1.2.3.4", "255", "256.1", "01", "1:2:3:4", "5:6",
		"ffff:", "%", "g" };

	rng_state = 5;
	fields_against_inet_pton(AF_INET6, pieces, sizeof pieces / sizeof pieces[0]);
}
END_TEST

/* Every port 0-70000 in decimal, and the spellings of a few that are not. */
START_TEST(test_proxy_ports)
{
	static const char *const bad[] = { "00", "01", "007", "+1", "-1", "1a", "0x10",
		"65536", "99999", "123456", "1 ", "1e3" };
	char line[80];
	struct proxy_header h;
	int r;

	for (unsigned p = 0; p <= 70000; p++) {
		int n = snprintf(line, sizeof line, "PROXY TCP4 1.2.3.4 5.6.7.8 %u %u\r\n",
				 p, 70000 - p);

		r = parse((const uint8_t *)line, (size_t)n, &h);
		REQUIRE(r == (p <= 65535 && 70000 - p <= 65535 ? PROXY_DONE : PROXY_INVALID),
			"%s", line);
		if (r == PROXY_DONE) {
			REQUIRE(ntohs(((struct sockaddr_in *)&h.src)->sin_port) == p &&
				ntohs(((struct sockaddr_in *)&h.dst)->sin_port) == 70000 - p, "%s", line);
		} else
			REQUIRE(strcmp(h.why, "v1: bad port") == 0, "%s: %s", line, h.why);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int n = snprintf(line, sizeof line, "PROXY TCP4 1.2.3.4 5.6.7.8 80 %s\r\n", bad[i]);

		REQUIRE(parse((const uint8_t *)line, (size_t)n, &h) == PROXY_INVALID, "%s",
			line);
	}
}
END_TEST

/* --- proxy_env: the TLVs as PROXY_* variables ------------------------------ */

/* A v2 header over INET (or LOCAL) with these TLVs, parsed: PROXY_DONE. */
static void parse_tlvs(struct hdr *h, struct proxy_header *ph, uint8_t cmd,
		       const uint8_t *tlvs, size_t n, const char *ctx)
{
	int r;

	start_v2(h, cmd, 0x11, A4, 12);
	put(h, tlvs, n);
	finish_v2(h, 0);
	r = parse(h->b, h->n, ph);
	REQUIRE(r == PROXY_DONE, "%s: status %d (%s)", ctx, r, r == PROXY_INVALID ? ph->why : "");
}

/* out[0..len) as "A=1 B=2" for messages and comparisons, checking the
 * framing on the way: NUL-terminated strings, each NAME=value. */
static void env_text(const char *out, size_t len, char *text, size_t cap, const char *ctx)
{
	size_t o = 0;

	text[0] = '\0';
	REQUIRE(len == 0 || out[len - 1] == '\0', "%s: last string not terminated", ctx);
	for (size_t i = 0; i < len; i += strlen(out + i) + 1) {
		REQUIRE(strncmp(out + i, "PROXY_", 6) == 0 && strchr(out + i, '='),
			"%s: \"%s\" is not PROXY_NAME=value", ctx, out + i);
		o += (size_t)snprintf(text + o, cap - o, "%s%s", o ? " " : "", out + i);
		REQUIRE(o < cap, "%s: too long", ctx);
	}
}

#define SSLT(client, verify) "\x20\x00\x05" client verify	/* no sub-TLVs */

static const struct env_case {
	const uint8_t *tlvs;
	size_t n;
	uint8_t cmd;
	const char *want;	/* the variables, space-separated */
	const char *drop_name, *drop_why;	/* the first left out */
	unsigned drops;
} env_cases[] = {
	{ S(""), 0x21, "", NULL, NULL, 0 },
	{ S("\x04\x00\x03" "pad"), 0x21, "", NULL, NULL, 0 },
	{ S("\x01\x00\x02" "h2"), 0x21, "PROXY_ALPN=h2", NULL, NULL, 0 },
	{ S("\x02\x00\x0b" "example.com"), 0x21, "PROXY_AUTHORITY=example.com", NULL, NULL, 0 },
	{ S("\x05\x00\x05" "id-42"), 0x21, "PROXY_UNIQUE_ID=id-42", NULL, NULL, 0 },
	/* in a fixed order, whatever the header's; unknown types ignored */
	{ S("\x05\x00\x01" "u" "\x30\x00\x02" "ns" "\x02\x00\x01" "a" "\xe0\x00\x01" "x"
	    "\x01\x00\x08" "http/1.1"), 0x21,
	  "PROXY_ALPN=http/1.1 PROXY_AUTHORITY=a PROXY_UNIQUE_ID=u", NULL, NULL, 0 },
	/* printable ASCII is everything from space to tilde */
	{ S("\x02\x00\x0a" " !=$`'\"\\~x"), 0x21, "PROXY_AUTHORITY= !=$`'\"\\~x", NULL, NULL, 0 },
	/* an empty value says nothing */
	{ S("\x01\x00\x00" "\x02\x00\x00"), 0x21, "", NULL, NULL, 0 },
	/* LOCAL: the proxy's own connection; nothing */
	{ S("\x01\x00\x02" "h2" SSLT("\x01", "\0\0\0\0")), 0x20, "", NULL, NULL, 0 },
	/* SSL: TLS without a client certificate: no verify (0 would lie) */
	{ S("\x20\x00\x35" "\x01\0\0\0\0" "\x21\x00\x07" "TLSv1.3"
	    "\x23\x00\x16" "TLS_AES_256_GCM_SHA384" "\x24\x00\x0a" "RSA-SHA256"),
	  0x21, "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=0 PROXY_SSL_VERSION=TLSv1.3 "
	  "PROXY_SSL_CIPHER=TLS_AES_256_GCM_SHA384 PROXY_SSL_SIG_ALG=RSA-SHA256", NULL, NULL, 0 },
	/* with one, over this connection, verified */
	{ S("\x20\x00\x1a" "\x07\0\0\0\0" "\x22\x00\x08" "client 1" "\x25\x00\x07" "RSA2048"),
	  0x21, "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=1 PROXY_SSL_VERIFY=0 "
	  "PROXY_SSL_CN=client 1 PROXY_SSL_KEY_ALG=RSA2048", NULL, NULL, 0 },
	/* over the session only; not verified: the number, big-endian */
	{ S(SSLT("\x05", "\x00\x00\x00\x14")), 0x21,
	  "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=1 PROXY_SSL_VERIFY=20", NULL, NULL, 0 },
	{ S(SSLT("\x03", "\x01\x02\x03\x04")), 0x21,
	  "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=1 PROXY_SSL_VERIFY=16909060", NULL, NULL, 0 },
	{ S(SSLT("\x03", "\xff\xff\xff\xff")), 0x21,
	  "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=1 PROXY_SSL_VERIFY=4294967295", NULL, NULL, 0 },
	/* a verify number without a certificate is not shown */
	{ S(SSLT("\x01", "\x00\x00\x00\x01")), 0x21, "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=0",
	  NULL, NULL, 0 },
	/* not over TLS: that alone, whatever else the TLV says */
	{ S("\x20\x00\x0f" "\x06\0\0\0\0" "\x21\x00\x07" "TLSv1.3"), 0x21, "PROXY_SSL=0",
	  NULL, NULL, 0 },
	/* unknown bits and sub-TLVs ignored */
	{ S("\x20\x00\x0c" "\xf9\0\0\0\0" "\x2a\x00\x01" "z" "\x04\x00\x00"), 0x21,
	  "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=0", NULL, NULL, 0 },
	/* not printable: left out, the others stay */
	{ S("\x02\x00\x08" "ex\x01" "ample" "\x01\x00\x02" "h2"), 0x21, "PROXY_ALPN=h2",
	  "PROXY_AUTHORITY", "not printable ASCII", 1 },
	{ S("\x01\x00\x03" "h2\n"), 0x21, "", "PROXY_ALPN", "not printable ASCII", 1 },
	{ S("\x05\x00\x03" "\0id"), 0x21, "", "PROXY_UNIQUE_ID", "not printable ASCII", 1 },
	{ S("\x02\x00\x02" "a\x7f"), 0x21, "", "PROXY_AUTHORITY", "not printable ASCII", 1 },
	{ S("\x02\x00\x02" "a\t"), 0x21, "", "PROXY_AUTHORITY", "not printable ASCII", 1 },
	{ S("\x20\x00\x0d" "\x07\0\0\0\0" "\x22\x00\x05" "Jos\xc3\xa9"), 0x21,
	  "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=1 PROXY_SSL_VERIFY=0", "PROXY_SSL_CN",
	  "not printable ASCII", 1 },
	{ S("\x20\x00\x12" "\x01\0\0\0\0" "\x21\x00\x03" "\xffv1" "\x23\x00\x04" "c\x80\r\n"),
	  0x21, "PROXY_SSL=1 PROXY_SSL_CLIENT_CERT=0", "PROXY_SSL_VERSION",
	  "not printable ASCII", 2 },
};

START_TEST(test_proxy_env_table)
{
	static struct hdr h;
	struct proxy_header ph;
	struct proxy_env_drop drop;
	char out[CONN_XENV_MAX], text[2 * CONN_XENV_MAX], ctx[64];
	size_t len;

	for (size_t i = 0; i < sizeof env_cases / sizeof env_cases[0]; i++) {
		const struct env_case *c = &env_cases[i];

		snprintf(ctx, sizeof ctx, "env case %zu", i);
		parse_tlvs(&h, &ph, c->cmd, c->tlvs, c->n, ctx);
		memset(out, 0x5a, sizeof out);
		len = proxy_env(&ph, h.b, out, sizeof out, &drop);
		env_text(out, len, text, sizeof text, ctx);
		REQUIRE(strcmp(text, c->want) == 0, "%s: \"%s\", want \"%s\"", ctx, text, c->want);
		REQUIRE(drop.n == c->drops, "%s: %u left out, want %u", ctx, drop.n, c->drops);
		if (!c->drops) {
			REQUIRE(drop.name == NULL, "%s: %s left out", ctx, drop.name);
			continue;
		}
		REQUIRE(drop.name && strcmp(drop.name, c->drop_name) == 0 &&
			strcmp(drop.why, c->drop_why) == 0, "%s: %s: %s", ctx, drop.name,
			drop.why);
		REQUIRE(strcmp(drop.tlv, drop.name + 6) == 0, "%s: TLV %s", ctx, drop.tlv);
		/* off/len name the value in the header, for the log */
		REQUIRE(drop.off >= 16 && drop.off + drop.len <= h.n &&
			h.b[drop.off - 2] == drop.len >> 8 && h.b[drop.off - 1] == (uint8_t)drop.len,
			"%s: value at %zu, %zu bytes", ctx, drop.off, drop.len);
	}
}
END_TEST

/* v1 headers carry no TLVs. */
START_TEST(test_proxy_env_v1)
{
	struct proxy_header ph;
	struct proxy_env_drop drop;
	char out[64];

	ck_assert_int_eq(parse(S("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), &ph), PROXY_DONE);
	ck_assert_uint_eq(proxy_env(&ph, "", out, sizeof out, &drop), 0);
	ck_assert_uint_eq(drop.n, 0);
}
END_TEST

/* Each bound: at it, the value is passed; one byte over, left out. */
START_TEST(test_proxy_env_bounds)
{
	static const struct {
		uint8_t type;	/* 0x2X: an SSL sub-TLV */
		size_t max;
		const char *name;
	} bounds[] = {
		{ 0x01, 64, "PROXY_ALPN" }, { 0x02, 253, "PROXY_AUTHORITY" },
		{ 0x05, 128, "PROXY_UNIQUE_ID" }, { 0x21, 64, "PROXY_SSL_VERSION" },
		{ 0x22, 64, "PROXY_SSL_CN" }, { 0x23, 64, "PROXY_SSL_CIPHER" },
		{ 0x24, 64, "PROXY_SSL_SIG_ALG" }, { 0x25, 64, "PROXY_SSL_KEY_ALG" },
	};
	static struct hdr h;
	struct proxy_header ph;
	struct proxy_env_drop drop;
	char out[CONN_XENV_MAX], want[300], why[48], ctx[64];
	uint8_t tlvs[300], v[260];
	size_t len;

	memset(v, 'v', sizeof v);
	for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
		for (size_t n = bounds[b].max - 1; n <= bounds[b].max + 1; n++) {
			bool sub = bounds[b].type >= 0x21;
			size_t o = 0;

			snprintf(ctx, sizeof ctx, "%s, %zu bytes", bounds[b].name, n);
			if (sub) {
				memcpy(tlvs, "\x20\x00\x00" "\x01\0\0\0\0", 8);
				tlvs[1] = (uint8_t)((n + 8) >> 8);
				tlvs[2] = (uint8_t)(n + 8);
				o = 8;
			}
			tlvs[o] = bounds[b].type;
			tlvs[o + 1] = (uint8_t)(n >> 8);
			tlvs[o + 2] = (uint8_t)n;
			memcpy(tlvs + o + 3, v, n);
			parse_tlvs(&h, &ph, 0x21, tlvs, o + 3 + n, ctx);
			len = proxy_env(&ph, h.b, out, sizeof out, &drop);
			len -= sub ? sizeof "PROXY_SSL=1" + sizeof "PROXY_SSL_CLIENT_CERT=0" : 0;
			snprintf(want, sizeof want, "%s=%.*s", bounds[b].name, (int)n, (char *)v);
			if (n <= bounds[b].max) {
				REQUIRE(drop.n == 0 && len == strlen(want) + 1 &&
					strcmp(out + (sub ? sizeof "PROXY_SSL=1" +
						      sizeof "PROXY_SSL_CLIENT_CERT=0" : 0), want) == 0,
					"%s: not passed", ctx);
				continue;
			}
			snprintf(why, sizeof why, "longer than %zu bytes", bounds[b].max);
			REQUIRE(len == 0 && drop.n == 1 && strcmp(drop.name, bounds[b].name) == 0 &&
				strcmp(drop.why, why) == 0, "%s: %s %s", ctx, drop.name, drop.why);
		}
}
END_TEST

/* Every variable at its longest fits CONN_XENV_MAX; a smaller buffer
 * takes what fits, in order, never a byte more, and counts what did not. */
START_TEST(test_proxy_env_room)
{
	static const struct {
		uint8_t type;
		size_t n;
	} longest[] = { { 0x01, 64 }, { 0x02, 253 }, { 0x05, 128 }, { 0x20, 0 } };
	static const struct {
		uint8_t type;
		size_t n;
	} sub[] = { { 0x21, 64 }, { 0x22, 64 }, { 0x23, 64 }, { 0x24, 64 }, { 0x25, 64 } };
	static struct hdr h;
	struct proxy_header ph;
	struct proxy_env_drop drop;
	char out[CONN_XENV_MAX + 16], full[CONN_XENV_MAX];
	uint8_t tlvs[1200], v[260];
	size_t o = 0, ssl_len = 5, len, full_len;

	memset(v, 'x', sizeof v);
	for (size_t k = 0; k < sizeof sub / sizeof sub[0]; k++)
		ssl_len += 3 + sub[k].n;
	for (size_t t = 0; t < sizeof longest / sizeof longest[0]; t++) {
		size_t n = longest[t].type == 0x20 ? ssl_len : longest[t].n;

		tlvs[o] = longest[t].type;
		tlvs[o + 1] = (uint8_t)(n >> 8);
		tlvs[o + 2] = (uint8_t)n;
		o += 3;
		if (longest[t].type != 0x20) {
			memcpy(tlvs + o, v, n);
			o += n;
			continue;
		}
		memcpy(tlvs + o, "\x07\xff\xff\xff\xff", 5);
		o += 5;
		for (size_t k = 0; k < sizeof sub / sizeof sub[0]; k++) {
			tlvs[o] = sub[k].type;
			tlvs[o + 1] = 0;
			tlvs[o + 2] = (uint8_t)sub[k].n;
			memcpy(tlvs + o + 3, v, sub[k].n);
			o += 3 + sub[k].n;
		}
	}
	parse_tlvs(&h, &ph, 0x21, tlvs, o, "longest");
	full_len = proxy_env(&ph, h.b, full, sizeof full, &drop);
	REQUIRE(drop.n == 0, "longest: %s left out: %s", drop.name, drop.why);
	env_text(full, full_len, (char[4096]){ 0 }, 4096, "longest");
	/* Cut short anywhere: some of the whole's strings, in its order; the
	 * others counted as left out for want of room. */
	for (size_t cap = 0; cap <= full_len; cap++) {
		size_t f = 0, kept = 0, all = 0;

		memset(out, 0x5a, sizeof out);
		len = proxy_env(&ph, h.b, out, cap, &drop);
		REQUIRE(len <= cap, "cap %zu: %zu bytes", cap, len);
		for (size_t i = cap; i < sizeof out; i++)
			REQUIRE(out[i] == 0x5a, "cap %zu: wrote byte %zu", cap, i);
		for (size_t i = 0; i < len; i += strlen(out + i) + 1, kept++) {
			while (f < full_len && strcmp(full + f, out + i) != 0)
				f += strlen(full + f) + 1;
			REQUIRE(f < full_len, "cap %zu: \"%s\" out of order", cap, out + i);
		}
		for (size_t i = 0; i < full_len; i += strlen(full + i) + 1)
			all++;
		REQUIRE(drop.n == all - kept, "cap %zu: %u left out of %zu, %zu kept", cap,
			drop.n, all, kept);
		if (drop.n)
			REQUIRE(strcmp(drop.why, "no room left") == 0, "cap %zu: %s", cap, drop.why);
	}
}
END_TEST

Suite *proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);	/* the ASan build walks many prefixes */
	tcase_add_test(tc, test_proxy_samples);
	tcase_add_test(tc, test_proxy_trailers);
	tcase_add_test(tc, test_proxy_mutations);
	tcase_add_test(tc, test_proxy_empty);
	tcase_add_test(tc, test_proxy_first_byte);
	tcase_add_test(tc, test_proxy_signature_bytes);
	tcase_add_test(tc, test_proxy_decided_by_max);
	tcase_add_test(tc, test_proxy_random_tlvs);
	tcase_add_test(tc, test_proxy_crc32c);
	tcase_add_test(tc, test_proxy_ipv4_fields);
	tcase_add_test(tc, test_proxy_ipv6_fields);
	tcase_add_test(tc, test_proxy_ports);
	tcase_add_test(tc, test_proxy_env_table);
	tcase_add_test(tc, test_proxy_env_v1);
	tcase_add_test(tc, test_proxy_env_bounds);
	tcase_add_test(tc, test_proxy_env_room);
	suite_add_tcase(s, tc);
	return s;
}
