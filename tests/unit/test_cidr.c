/* test_cidr.c - unit tests of src/cidr.c: the networks cidr_parse takes
 * (hosts, prefixes, "all", v4-mapped IPv6 turned into IPv4) shown by
 * cidr_format, the near misses it refuses with a reason (octal, short
 * IPv4, zone ids, brackets, bad prefixes, host bits with the suggested
 * network), and cidr_match against IPv4, IPv6 and unix peers. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "suites.h"

/* fmt: what cidr_format shows for the parsed network. */
static const struct {
	const char *in;
	int family;
	unsigned prefix;
	const char *fmt;
} good[] = {
	{ "all", AF_UNSPEC, 0, "all" },
	{ "10.0.0.0/8", AF_INET, 8, "10.0.0.0/8" },
	{ "10.0.0.1", AF_INET, 32, "10.0.0.1/32" },
	{ "10.0.0.1/32", AF_INET, 32, "10.0.0.1/32" },
	{ "0.0.0.0/0", AF_INET, 0, "0.0.0.0/0" },
	{ "192.168.128.0/17", AF_INET, 17, "192.168.128.0/17" },
	{ "255.255.255.255", AF_INET, 32, "255.255.255.255/32" },
	{ "172.16.0.0/12", AF_INET, 12, "172.16.0.0/12" },
	{ "2001:db8::/32", AF_INET6, 32, "2001:db8::/32" },
	{ "2001:DB8:0:0::/64", AF_INET6, 64, "2001:db8::/64" },
	{ "::/0", AF_INET6, 0, "::/0" },
	{ "::1", AF_INET6, 128, "::1/128" },
	{ "::", AF_INET6, 128, "::/128" },
	{ "fe80::/10", AF_INET6, 10, "fe80::/10" },
	{ "2001:db8::8000/113", AF_INET6, 113, "2001:db8::8000/113" },
	{ "2001:0db8:0000:0000:0000:0000:0000:0001", AF_INET6, 128, "2001:db8::1/128" },
	/* v4-mapped at /96 or longer: the IPv4 network it names */
	{ "::ffff:10.1.2.3", AF_INET, 32, "10.1.2.3/32" },
	{ "::ffff:10.0.0.0/104", AF_INET, 8, "10.0.0.0/8" },
	{ "::ffff:0.0.0.0/96", AF_INET, 0, "0.0.0.0/0" },
	{ "::ffff:a00:0/104", AF_INET, 8, "10.0.0.0/8" },
	{ "::FFFF:192.168.1.0/120", AF_INET, 24, "192.168.1.0/24" },
	/* shorter, it stays an IPv6 network */
	{ "::/80", AF_INET6, 80, "::/80" },
	{ "::/95", AF_INET6, 95, "::/95" },
	/* IPv4-compatible (not mapped) stays IPv6 */
	{ "::10.1.2.3", AF_INET6, 128, "::10.1.2.3/128" },
	/* local users and groups, for --proxy-from on unix sockets */
	{ "unix:uid=0", AF_UNIX, CIDR_UID, "unix:uid=0" },
	{ "unix:gid=65534", AF_UNIX, CIDR_GID, "unix:gid=65534" },
	{ "unix:uid=4294967294", AF_UNIX, CIDR_UID, "unix:uid=4294967294" },
};

/* why: a part of the reason that must be there. */
static const struct {
	const char *in;
	const char *why;
} bad[] = {
	{ "", "empty" },
	{ "ALL", "expected" },
	{ "all/0", "expected" },
	{ " all", "expected" },
	{ "localhost", "expected" },
	{ "10.0.0.0/", "missing prefix" },
	{ "/8", "missing address" },
	{ "/", "missing address" },
	{ "10.0.0.1/8", "did you mean 10.0.0.0/8?" },
	{ "192.168.1.1/24", "did you mean 192.168.1.0/24?" },
	{ "10.0.0.64/25", "did you mean 10.0.0.0/25?" },
	{ "10.0.0.129/25", "did you mean 10.0.0.128/25?" },
	{ "10.0.0.0/33", "0 to 32" },
	{ "10.0.0.0/99999999999999999999", "0 to 32" },
	{ "10.0.0.0/08", "0 to 32" },
	{ "10.0.0.0/00", "0 to 32" },
	{ "10.0.0.0/+8", "0 to 32" },
	{ "10.0.0.0/-8", "0 to 32" },
	{ "10.0.0.0/ 8", "0 to 32" },
	{ "10.0.0.0/8 ", "0 to 32" },
	{ "10.0.0.0 /8", "expected" },
	{ "10.0.0.0/8/8", "0 to 32" },
	{ "10.0.0.0/8x", "0 to 32" },
	{ "10.0.0.0/0x8", "0 to 32" },
	{ "010.0.0.0/8", "IPv4" },
	{ "10.0.0.010", "IPv4" },
	{ "10.1", "IPv4" },
	{ "10", "IPv4" },
	{ "10.0.0.0.0", "IPv4" },
	{ "256.0.0.0", "IPv4" },
	{ "1.2.3.4.", "IPv4" },
	{ "0x0a.0.0.0", "expected" },
	{ "10.0.0.0\t", "expected" },
	{ "2001:db8::/129", "0 to 128" },
	{ "2001:db8::/1280", "0 to 128" },
	{ "2001:db8::/032", "0 to 128" },
	{ "2001:db8::1/32", "did you mean 2001:db8::/32?" },
	{ "::1/0", "did you mean ::/0?" },
	{ "::ffff:10.0.0.1/104", "did you mean ::ffff:10.0.0.0/104?" },
	{ "::ffff:0.0.0.0/95", "did you mean ::fffe:0:0/95?" },
	{ "fe80::1%eth0", "zone id" },
	{ "fe80::%lo/64", "zone id" },
	{ "[::1]", "brackets" },
	{ "[2001:db8::]/32", "brackets" },
	{ "2001:db8:::1", "IPv6" },
	{ "2001:db8::g", "IPv6" },
	{ "1:2:3:4:5:6:7:8:9", "IPv6" },
	{ "::ffff:10.1", "IPv6" },
	{ "::ffff:010.0.0.1", "IPv6" },
	{ "0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0/0", "too long" },
	{ "unix:", "uid=N or gid=N" },
	{ "unix:user=0", "uid=N or gid=N" },
	{ "unix:uid=", "decimal" },
	{ "unix:uid=-1", "decimal" },
	{ "unix:uid=01", "decimal" },
	{ "unix:uid=1 ", "decimal" },
	{ "unix:gid=99999999999", "decimal" },
	{ "unix:uid=4294967295", "below" },
};

START_TEST(test_cidr_parse_good)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct cidr c;
		char err[128] = "", buf[64];

		ck_assert_msg(cidr_parse(good[i].in, &c, err, sizeof err) == 0,
			      "'%s' refused: %s", good[i].in, err);
		ck_assert_msg(c.family == good[i].family, "'%s': family %d",
			      good[i].in, c.family);
		ck_assert_msg(c.prefix == good[i].prefix, "'%s': prefix %u",
			      good[i].in, c.prefix);
		ck_assert_int_eq(cidr_format(&c, buf, sizeof buf), (int)strlen(good[i].fmt));
		ck_assert_str_eq(buf, good[i].fmt);
	}
}
END_TEST

START_TEST(test_cidr_parse_bytes)
{
	static const uint8_t v4[16] = { 10, 0, 0, 0 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	struct cidr c;
	char err[128];

	/* the unused tail is zero too: the struct compares with memcmp */
	ck_assert_int_eq(cidr_parse("::ffff:10.0.0.0/104", &c, err, sizeof err), 0);
	ck_assert_mem_eq(c.addr, v4, 16);
	ck_assert_int_eq(cidr_parse("10.0.0.0/8", &c, err, sizeof err), 0);
	ck_assert_mem_eq(c.addr, v4, 16);
	ck_assert_int_eq(cidr_parse("2001:db8::/32", &c, err, sizeof err), 0);
	ck_assert_mem_eq(c.addr, v6, 16);
	ck_assert_int_eq(cidr_parse("all", &c, err, sizeof err), 0);
	ck_assert_mem_eq(c.addr, (uint8_t[16]){ 0 }, 16);
}
END_TEST

START_TEST(test_cidr_parse_bad)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct cidr c, before;
		char err[128] = "";

		memset(&c, 0x5a, sizeof c);
		before = c;
		ck_assert_msg(cidr_parse(bad[i].in, &c, err, sizeof err) == -1,
			      "'%s' accepted", bad[i].in);
		ck_assert_msg(strstr(err, bad[i].why) != NULL, "'%s': '%s' lacks '%s'",
			      bad[i].in, err, bad[i].why);
		/* a short reason: the caller adds the option and the value */
		ck_assert_msg(bad[i].in[0] == '\0' || strstr(err, bad[i].in) == NULL,
			      "'%s': reason repeats the input: %s", bad[i].in, err);
		ck_assert_msg(memcmp(&c, &before, sizeof c) == 0, "'%s': out written",
			      bad[i].in);
	}
}
END_TEST

START_TEST(test_cidr_parse_long)
{
	char s[4096];
	struct cidr c;
	char err[128] = "";

	memset(s, '1', sizeof s - 1);
	s[sizeof s - 1] = '\0';
	ck_assert_int_eq(cidr_parse(s, &c, err, sizeof err), -1);
	ck_assert(err[0] != '\0');
	memcpy(s, "10.0.0.0/", 9);	/* a huge prefix never wraps into range */
	err[0] = '\0';
	ck_assert_int_eq(cidr_parse(s, &c, err, sizeof err), -1);
	ck_assert_str_eq(err, "prefix must be a number from 0 to 32");
}
END_TEST

START_TEST(test_cidr_err_truncated)
{
	struct cidr c;
	char err[8];

	ck_assert_int_eq(cidr_parse("10.0.0.1/8", &c, err, sizeof err), -1);
	ck_assert_str_eq(err, "host bi");
}
END_TEST

static struct peer mkpeer(int family, const char *ip)
{
	struct peer p;

	memset(&p, 0, sizeof p);
	p.family = family;
	if (family == AF_UNIX)
		snprintf(p.path, sizeof p.path, "%s", ip);
	else
		ck_assert_int_eq(inet_pton(family, ip, p.raw), 1);
	return p;
}

static const struct {
	const char *net;
	int family;
	const char *peer;
	bool want;
} matches[] = {
	{ "all", AF_INET, "1.2.3.4", true },
	{ "all", AF_INET6, "::1", true },
	{ "all", AF_UNIX, "/run/x.sock", true },
	{ "all", AF_UNIX, "", true },
	{ "10.0.0.0/8", AF_INET, "10.255.255.255", true },
	{ "10.0.0.0/8", AF_INET, "10.0.0.0", true },
	{ "10.0.0.0/8", AF_INET, "11.0.0.0", false },
	{ "10.0.0.0/8", AF_INET, "9.255.255.255", false },
	{ "10.0.0.0/8", AF_INET6, "::ffff:10.0.0.1", false },	/* peers are unmapped */
	{ "10.0.0.0/8", AF_UNIX, "/x", false },
	{ "192.168.1.128/25", AF_INET, "192.168.1.200", true },
	{ "192.168.1.128/25", AF_INET, "192.168.1.127", false },
	{ "192.168.0.0/23", AF_INET, "192.168.1.1", true },
	{ "192.168.0.0/23", AF_INET, "192.168.2.1", false },
	{ "1.2.3.4", AF_INET, "1.2.3.4", true },
	{ "1.2.3.4", AF_INET, "1.2.3.5", false },
	{ "0.0.0.0/0", AF_INET, "255.255.255.255", true },
	{ "0.0.0.0/0", AF_INET6, "::1", false },
	{ "0.0.0.0/0", AF_UNIX, "/x", false },
	{ "::/0", AF_INET6, "2001:db8::1", true },
	{ "::/0", AF_INET, "1.2.3.4", false },
	{ "2001:db8::/32", AF_INET6, "2001:db8:ffff::1", true },
	{ "2001:db8::/32", AF_INET6, "2001:db9::1", false },
	{ "2001:db8::/33", AF_INET6, "2001:db8:7fff::", true },
	{ "2001:db8::/33", AF_INET6, "2001:db8:8000::", false },
	{ "::1", AF_INET6, "::1", true },
	{ "::1", AF_INET6, "::2", false },
	{ "::1", AF_INET, "0.0.0.1", false },
	{ "::ffff:10.0.0.0/104", AF_INET, "10.9.9.9", true },
	{ "::ffff:10.0.0.0/104", AF_INET, "11.0.0.1", false },
	{ "::ffff:0.0.0.0/96", AF_INET, "203.0.113.7", true },
	{ "::ffff:0.0.0.0/96", AF_INET6, "::1", false },
	{ "::ffff:1.2.3.4", AF_INET, "1.2.3.4", true },
};

START_TEST(test_cidr_match)
{
	for (size_t i = 0; i < sizeof matches / sizeof matches[0]; i++) {
		struct cidr c;
		struct peer p = mkpeer(matches[i].family, matches[i].peer);
		char err[128] = "";

		ck_assert_msg(cidr_parse(matches[i].net, &c, err, sizeof err) == 0,
			      "%s: %s", matches[i].net, err);
		ck_assert_msg(cidr_match(&c, &p) == matches[i].want, "%s vs %s: %d",
			      matches[i].net, matches[i].peer, !matches[i].want);
	}
}
END_TEST

/* Every prefix length of both families against the addresses just inside
 * and just outside it: the partial-byte mask is where off-by-ones live. */
START_TEST(test_cidr_match_every_prefix)
{
	static const int fams[] = { AF_INET, AF_INET6 };

	for (size_t f = 0; f < 2; f++) {
		unsigned bits = fams[f] == AF_INET ? 32 : 128;

		for (unsigned len = 0; len <= bits; len++) {
			struct cidr c = { .family = fams[f], .prefix = len };
			struct peer p = { .family = fams[f] };

			memset(c.addr, 0, sizeof c.addr);
			memset(p.raw, 0, sizeof p.raw);
			ck_assert(cidr_match(&c, &p));
			if (len < bits) {	/* last host bit: still inside */
				p.raw[(bits - 1) / 8] = 1;
				ck_assert_msg(cidr_match(&c, &p), "/%u host bit", len);
			}
			if (len > 0) {	/* last network bit: outside */
				memset(p.raw, 0, sizeof p.raw);
				p.raw[(len - 1) / 8] = (uint8_t)(0x80 >> ((len - 1) % 8));
				ck_assert_msg(!cidr_match(&c, &p), "/%u net bit", len);
			}
		}
	}
}
END_TEST

START_TEST(test_cidr_match_cred)
{
	struct cidr u, g;
	struct peer p;
	char err[128];

	ck_assert_int_eq(cidr_parse("unix:uid=1000", &u, err, sizeof err), 0);
	ck_assert_int_eq(cidr_parse("unix:gid=50", &g, err, sizeof err), 0);
	ck_assert(cidr_match_cred(&u, 1000, 7));
	ck_assert(!cidr_match_cred(&u, 50, 1000));
	ck_assert(cidr_match_cred(&g, 7, 50));
	ck_assert(!cidr_match_cred(&g, 50, 7));
	/* never an IP peer, nor an IP network for credentials */
	memset(&p, 0, sizeof p);
	p.family = AF_INET;
	ck_assert(!cidr_match(&u, &p));
	p.family = AF_UNIX;
	ck_assert(!cidr_match(&u, &p));
	ck_assert_int_eq(cidr_parse("0.0.0.0/0", &g, err, sizeof err), 0);
	ck_assert(!cidr_match_cred(&g, 0, 0));
}
END_TEST

START_TEST(test_cidr_format)
{
	struct cidr c;
	char err[128], buf[64], small[6];

	ck_assert_int_eq(cidr_parse("2001:db8:0:0:1:0:0:1", &c, err, sizeof err), 0);
	ck_assert_int_eq(cidr_format(&c, buf, sizeof buf), (int)strlen("2001:db8::1:0:0:1/128"));
	ck_assert_str_eq(buf, "2001:db8::1:0:0:1/128");
	/* snprintf-style: the full length, the text cut */
	ck_assert_int_eq(cidr_parse("192.168.0.0/16", &c, err, sizeof err), 0);
	ck_assert_int_eq(cidr_format(&c, small, sizeof small), (int)strlen("192.168.0.0/16"));
	ck_assert_str_eq(small, "192.1");
	ck_assert_int_eq(cidr_format(&c, NULL, 0), (int)strlen("192.168.0.0/16"));
	c.family = AF_PACKET;	/* never made by cidr_parse */
	ck_assert_int_eq(cidr_format(&c, buf, sizeof buf), 1);
	ck_assert_str_eq(buf, "?");
}
END_TEST

Suite *cidr_suite(void)
{
	Suite *s = suite_create("cidr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_cidr_parse_good);
	tcase_add_test(tc, test_cidr_parse_bytes);
	tcase_add_test(tc, test_cidr_parse_bad);
	tcase_add_test(tc, test_cidr_parse_long);
	tcase_add_test(tc, test_cidr_err_truncated);
	tcase_add_test(tc, test_cidr_match);
	tcase_add_test(tc, test_cidr_match_every_prefix);
	tcase_add_test(tc, test_cidr_match_cred);
	tcase_add_test(tc, test_cidr_format);
	suite_add_tcase(s, tc);
	return s;
}
