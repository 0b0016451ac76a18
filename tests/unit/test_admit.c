/* test_admit.c - unit tests of src/admit.c and src/source.c:
 * admit_acl_match (first matching rule in order, no match -1, unix peers
 * only matched by "all"), source_gcra (GCRA: a burst of N, then one token per
 * interval to the microsecond, a refusal that changes nothing, no credit
 * beyond the burst after a long idle, large intervals without overflow),
 * source_key (the address cut to --source-prefix for 0, 7, 8, 24 and
 * 32 / 0, 64, 127 and 128 bits, the family in the key, unix peers keyed by
 * their uid), and admit_conn itself on a fake server with real socket
 * pairs: --deny, -C, --rate and --source-prefix decide, a refusal closes
 * the connection and counts it, an admitted one counts against its source
 * until released. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "suites.h"

static struct peer peer_ip(const char *ip)
{
	struct peer p;

	memset(&p, 0, sizeof p);
	p.family = strchr(ip, ':') ? AF_INET6 : AF_INET;
	ck_assert_msg(inet_pton(p.family, ip, p.raw) == 1, "bad test address %s", ip);
	snprintf(p.ip, sizeof p.ip, "%s", ip);
	p.port = 4242;
	return p;
}

static struct peer peer_unix(uint32_t uid)
{
	struct peer p;

	memset(&p, 0, sizeof p);
	p.family = AF_UNIX;
	memcpy(p.raw, &uid, sizeof uid);
	return p;
}

/* --- admit_acl_match ----------------------------------------------------- */

#define ACL_ROWS 8

static unsigned make_rules(struct acl_rule *r, const char *const *spec)
{
	unsigned n = 0;
	char err[160];

	for (; *spec; spec++, n++) {
		ck_assert_uint_lt(n, ACL_ROWS);
		r[n].allow = (*spec)[0] == '+';
		ck_assert_msg(cidr_parse(*spec + 1, &r[n].net, err, sizeof err) == 0,
			      "%s: %s", *spec, err);
	}
	return n;
}

/* rules: '+' allow, '-' deny, then the CIDR.  want: the index of the rule
 * that decides, -1 for none. */
static const struct {
	const char *rules[ACL_ROWS];
	const char *peer;
	int want;
} acls[] = {
	{ { "+127.0.0.2", "-127.0.0.0/8" }, "127.0.0.2", 0 },
	{ { "+127.0.0.2", "-127.0.0.0/8" }, "127.0.0.3", 1 },
	{ { "-127.0.0.0/8", "+127.0.0.2" }, "127.0.0.2", 0 },
	{ { "-10.0.0.0/8", "-::/0" }, "127.0.0.1", -1 },
	{ { "-10.0.0.0/8", "-0.0.0.0/0" }, "::1", -1 },
	{ { "-10.0.0.0/8", "+all" }, "::1", 1 },
	{ { "-all", "+127.0.0.1" }, "127.0.0.1", 0 },
	{ { "+10.0.0.0/8", "-all" }, "10.255.255.255", 0 },
	{ { "+10.0.0.0/8", "-all" }, "11.0.0.0", 1 },
	{ { "-192.168.0.0/23" }, "192.168.1.200", 0 },
	{ { "-192.168.0.0/23" }, "192.168.2.0", -1 },
	{ { "+2001:db8::/32", "-2001:db8::1" }, "2001:db8::1", 0 },
	{ { "-2001:db8::1", "+2001:db8::/32" }, "2001:db8::1", 0 },
	{ { "-2001:db8::1", "+2001:db8::/32" }, "2001:db8::2", 1 },
	{ { "-2001:db8::/33", "-2001:db8:8000::/33" }, "2001:db8:8000::5", 1 },
	/* a v4-mapped rule is its IPv4 network */
	{ { "-::ffff:127.0.0.0/104" }, "127.9.9.9", 0 },
	{ { "-::ffff:127.0.0.0/104" }, "128.0.0.1", -1 },
	{ { "+1.2.3.4", "-5.6.7.8", "-9.9.9.9", "+127.0.0.1" }, "127.0.0.1", 3 },
	{ { NULL }, "127.0.0.1", -1 },
};

START_TEST(test_admit_acl_match)
{
	struct acl_rule r[ACL_ROWS];
	unsigned n = make_rules(r, acls[_i].rules);
	struct peer p = peer_ip(acls[_i].peer);

	ck_assert_msg(admit_acl_match(r, n, &p) == acls[_i].want,
		      "row %d, peer %s: rule %d, want %d", _i, acls[_i].peer,
		      admit_acl_match(r, n, &p), acls[_i].want);
}
END_TEST

START_TEST(test_acl_unix_only_all)
{
	static const char *const addrs[] = { "-0.0.0.0/0", "-::/0", "-::", "-0.0.0.0",
					     "+all", "-all", NULL };
	struct acl_rule r[ACL_ROWS];
	unsigned n = make_rules(r, addrs);
	struct peer u = peer_unix(0);	/* raw all zero, like 0.0.0.0 / :: */

	ck_assert_int_eq(admit_acl_match(r, n, &u), 4);
	ck_assert_int_eq(admit_acl_match(r, 4, &u), -1);
	ck_assert_int_eq(admit_acl_match(r, 0, &u), -1);
}
END_TEST

/* --- source_gcra ------------------------------------------------------------ */

START_TEST(test_rate_burst_then_refill)
{
	const int64_t t = 5000000, i = 1000;	/* 3 per 3 ms */
	int64_t tat = 0, before;

	for (int k = 0; k < 3; k++)
		ck_assert_msg(source_gcra(&tat, t, i, 3), "token %d of the burst", k);
	before = tat;
	ck_assert(!source_gcra(&tat, t, i, 3));
	ck_assert(!source_gcra(&tat, t + 1, i, 3));
	ck_assert_msg(tat == before, "a refusal moved the bucket");
	/* The first token comes back exactly one interval after the burst. */
	ck_assert(!source_gcra(&tat, t + i - 1, i, 3));
	ck_assert(source_gcra(&tat, t + i, i, 3));
	ck_assert(!source_gcra(&tat, t + i, i, 3));
	ck_assert(!source_gcra(&tat, t + 2 * i - 1, i, 3));
	ck_assert(source_gcra(&tat, t + 2 * i, i, 3));
	/* Two intervals of quiet: two tokens, not three. */
	ck_assert(source_gcra(&tat, t + 4 * i, i, 3));
	ck_assert(source_gcra(&tat, t + 4 * i, i, 3));
	ck_assert(!source_gcra(&tat, t + 4 * i, i, 3));
}
END_TEST

START_TEST(test_rate_sustained_at_rate)
{
	const int64_t i = 500000;	/* 2/1 */
	int64_t tat = 0, now = 1000000000;

	ck_assert(source_gcra(&tat, now, i, 2));
	ck_assert(source_gcra(&tat, now, i, 2));
	/* One a second after the burst, for an hour: never refused. */
	for (int k = 1; k <= 3600; k++)
		ck_assert_msg(source_gcra(&tat, now + k * 1000000LL, i, 2), "second %d", k);
	/* At exactly the rate, with the burst used up front: never refused. */
	tat = 0;
	ck_assert(source_gcra(&tat, now, i, 2));
	ck_assert(source_gcra(&tat, now, i, 2));
	for (int k = 1; k <= 1000; k++)
		ck_assert_msg(source_gcra(&tat, now + k * i, i, 2), "interval %d", k);
	ck_assert(!source_gcra(&tat, now + 1000 * i, i, 2));
}
END_TEST

START_TEST(test_rate_no_credit_beyond_burst)
{
	const int64_t i = 1000;
	int64_t tat = 0;

	ck_assert(source_gcra(&tat, 1, i, 4));
	/* A year later: a full bucket of 4, not more. */
	for (int k = 0; k < 4; k++)
		ck_assert(source_gcra(&tat, 365LL * 86400 * 1000000, i, 4));
	ck_assert(!source_gcra(&tat, 365LL * 86400 * 1000000, i, 4));
	/* A stale timestamp far in the past counts as full too. */
	tat = -1000000000LL;
	ck_assert(source_gcra(&tat, 0, i, 1));
	ck_assert(!source_gcra(&tat, 0, i, 1));
}
END_TEST

START_TEST(test_rate_burst_of_one)
{
	const int64_t i = 250;
	int64_t tat = 0;

	ck_assert(source_gcra(&tat, 10000, i, 1));
	ck_assert(!source_gcra(&tat, 10000, i, 1));
	ck_assert(!source_gcra(&tat, 10000 + i - 1, i, 1));
	ck_assert(source_gcra(&tat, 10000 + i, i, 1));
}
END_TEST

START_TEST(test_rate_large_intervals)
{
	/* The widest --rate: 1/86400 (one a day), and 1000000/86400. */
	const int64_t day = 86400LL * 1000000;
	const int64_t now = 4000000000000000LL;	/* a monotonic clock 126 years up */
	int64_t tat = 0;

	ck_assert(source_gcra(&tat, now, day, 1));
	ck_assert(!source_gcra(&tat, now + day - 1, day, 1));
	ck_assert(source_gcra(&tat, now + day, day, 1));

	/* interval * (burst - 1) is just under a day: no overflow, the whole
	 * burst passes and the next one is refused. */
	tat = 0;
	for (unsigned k = 0; k < 1000000; k++)
		if (!source_gcra(&tat, now, day / 1000000, 1000000))
			ck_abort_msg("token %u of a burst of 1000000 refused", k);
	ck_assert(!source_gcra(&tat, now, day / 1000000, 1000000));
	ck_assert(source_gcra(&tat, now + day / 1000000, day / 1000000, 1000000));

	/* A burst of 1000000 with a day between tokens (more than options.c
	 * allows) still compares without wrapping. */
	tat = 0;
	ck_assert(source_gcra(&tat, now, day, 1000000));
	ck_assert(source_gcra(&tat, now, day, 1000000));
	ck_assert_msg(tat == now + 2 * day, "tat %lld", (long long)tat);
}
END_TEST

/* --- source_key ------------------------------------------------------------- */

static void key_of(unsigned p4, unsigned p6, const struct peer *p, unsigned char *key)
{
	struct options o;

	memset(&o, 0, sizeof o);
	o.prefix4 = p4;
	o.prefix6 = p6;
	memset(key, 0xa5, TABLE_KEY_MAX);	/* the key must be fully written */
	source_key(&o, p, key);
}

static const struct {
	const char *ip;
	unsigned bits;
	const char *masked;	/* the network the key must hold */
} keys[] = {
	{ "203.0.113.77", 32, "203.0.113.77" },
	{ "203.0.113.77", 24, "203.0.113.0" },
	{ "203.0.113.77", 8, "203.0.0.0" },
	{ "203.0.113.77", 7, "202.0.0.0" },
	{ "255.255.255.255", 7, "254.0.0.0" },
	{ "255.255.255.255", 1, "128.0.0.0" },
	{ "255.255.255.255", 31, "255.255.255.254" },
	{ "203.0.113.77", 0, "0.0.0.0" },
	{ "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 128, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff" },
	{ "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 127, "2001:db8:aaaa:bbbb:cccc:dddd:eeee:fffe" },
	{ "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 64, "2001:db8:aaaa:bbbb::" },
	{ "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 60, "2001:db8:aaaa:bbb0::" },
	{ "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 0, "::" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 121, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff80" },
};

START_TEST(test_source_key_masks)
{
	struct peer p = peer_ip(keys[_i].ip), net = peer_ip(keys[_i].masked);
	unsigned n = p.family == AF_INET ? 4 : 16;
	unsigned char key[TABLE_KEY_MAX];
	unsigned p4 = p.family == AF_INET ? keys[_i].bits : 128;
	unsigned p6 = p.family == AF_INET6 ? keys[_i].bits : 32;

	key_of(p4, p6, &p, key);
	ck_assert_int_eq(key[0], p.family);
	ck_assert_msg(memcmp(key + 1, net.raw, n) == 0, "%s/%u: key is not %s",
		      keys[_i].ip, keys[_i].bits, keys[_i].masked);
	for (unsigned k = 1 + n; k < TABLE_KEY_MAX; k++)
		ck_assert_msg(key[k] == 0, "%s/%u: key byte %u is %#x", keys[_i].ip,
			      keys[_i].bits, k, key[k]);
	/* The other family's length does not matter. */
	{
		unsigned char again[TABLE_KEY_MAX];

		key_of(p.family == AF_INET ? p4 : 13, p.family == AF_INET6 ? p6 : 5, &p, again);
		ck_assert(memcmp(key, again, TABLE_KEY_MAX) == 0);
	}
}
END_TEST

/* Two addresses are one source exactly when they share the prefix. */
START_TEST(test_source_key_groups)
{
	unsigned char a[TABLE_KEY_MAX], b[TABLE_KEY_MAX];
	struct peer x, y;

	x = peer_ip("127.0.0.2");
	y = peer_ip("127.0.0.3");
	y.port = 1;	/* the port never matters */
	key_of(24, 64, &x, a);
	key_of(24, 64, &y, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) == 0);
	key_of(32, 128, &x, a);
	key_of(32, 128, &y, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) != 0);
	key_of(31, 128, &x, a);
	key_of(31, 128, &y, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) == 0);

	x = peer_ip("2001:db8::1");
	y = peer_ip("2001:db8::ffff:2");
	key_of(24, 64, &x, a);
	key_of(24, 64, &y, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) == 0);
	y = peer_ip("2001:db8:0:1::1");
	key_of(24, 64, &y, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) != 0);

	/* Same bytes, other family: other source.  ::/0 and 0.0.0.0/0 too. */
	x = peer_ip("1.2.3.4");
	y = peer_ip("102:304::");
	key_of(32, 128, &x, a);
	key_of(32, 128, &y, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) != 0);
	key_of(0, 0, &x, a);
	key_of(0, 0, &y, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) != 0);
}
END_TEST

START_TEST(test_source_key_unix_uid)
{
	unsigned char a[TABLE_KEY_MAX], b[TABLE_KEY_MAX];
	/* uids that differ only in their high bytes, then only in the low one */
	struct peer u1 = peer_unix(0x12345678), u1b = peer_unix(0x12345678);
	struct peer u2 = peer_unix(0x02345678), u3 = peer_unix(0x12345679);
	uint32_t uid = 0x12345678;

	snprintf(u1b.path, sizeof u1b.path, "/run/client.sock");	/* not part of it */
	u1b.raw[4] = 0x77;	/* only raw[0..3] is the uid */
	key_of(24, 64, &u1, a);
	ck_assert_int_eq(a[0], AF_UNIX);
	ck_assert(memcmp(a + 1, &uid, 4) == 0);
	for (unsigned k = 5; k < TABLE_KEY_MAX; k++)
		ck_assert_msg(a[k] == 0, "unix key byte %u is %#x", k, a[k]);
	key_of(0, 0, &u1b, b);	/* --source-prefix does not apply */
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) == 0);
	key_of(24, 64, &u2, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) != 0);
	key_of(24, 64, &u3, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) != 0);
	/* uid 0 is not the IPv4 address 0.0.0.0 */
	u1 = peer_unix(0);
	u2 = peer_ip("0.0.0.0");
	key_of(32, 128, &u1, a);
	key_of(32, 128, &u2, b);
	ck_assert(memcmp(a, b, TABLE_KEY_MAX) != 0);
}
END_TEST

/* --- admit_conn on a fake server ------------------------------------------ */

static struct options fo;
static struct server fake;

static void fake_server(void)
{
	options_defaults(&fo);
	fo.max_conns = 16;
	memset(&fake, 0, sizeof fake);
	fake.opt = &fo;
	log_init(-1);		/* refusal lines: not what is tested */
}

static void fake_start(void)
{
	ck_assert_int_eq(source_init(&fake), 0);
}

/* A connection from ip: c->fd is one end of a socket pair, *peer_end the
 * other, to see whether admit_conn closed it. */
static struct conn_info conn_from(const char *ip, int *peer_end)
{
	struct conn_info c;
	int sv[2];

	memset(&c, 0, sizeof c);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c.fd = sv[0];
	*peer_end = sv[1];
	c.remote = peer_ip(ip);
	return c;
}

/* Admitted: true, the fd open, connnum as given; refused: false, the fd
 * closed (the peer reads end of file). */
static void expect(const char *ip, bool admitted, unsigned connnum)
{
	int other;
	char b;
	struct conn_info c = conn_from(ip, &other);
	unsigned long long refused = fake.refused;

	ck_assert_msg(admit_conn(&fake, &c) == admitted, "%s: admitted %d", ip, !admitted);
	if (admitted) {
		ck_assert_int_ge(c.fd, 0);
		ck_assert_uint_eq(c.connnum, connnum);
		ck_assert_uint_eq(fake.refused, refused);
		close(c.fd);
	} else {
		ck_assert_int_eq(c.fd, -1);
		ck_assert_int_eq(read(other, &b, 1), 0);
		ck_assert_uint_eq(fake.refused, refused + 1);
	}
	close(other);
}

START_TEST(test_admit_deny_then_allow)
{
	char err[128];

	fake_server();
	fo.acl = calloc(2, sizeof *fo.acl);
	ck_assert_ptr_nonnull(fo.acl);
	fo.n_acl = 2;
	fo.acl[0].allow = true;
	ck_assert_int_eq(cidr_parse("10.1.0.0/16", &fo.acl[0].net, err, sizeof err), 0);
	ck_assert_int_eq(cidr_parse("10.0.0.0/8", &fo.acl[1].net, err, sizeof err), 0);
	fake_start();
	expect("10.2.3.4", false, 0);	/* --deny 10.0.0.0/8 */
	expect("10.1.3.4", true, 1);	/* --allow 10.1.0.0/16 first */
	expect("192.0.2.1", true, 1);	/* no rule: allowed */
	expect("10.2.3.4", false, 0);	/* a denial never counts as open */
}
END_TEST

START_TEST(test_admit_max_per_source)
{
	struct peer p = peer_ip("192.0.2.7");

	fake_server();
	fo.max_per_source = 2;
	fake_start();
	expect("192.0.2.7", true, 1);
	expect("192.0.2.7", true, 2);
	expect("192.0.2.7", false, 0);
	expect("192.0.2.8", true, 1);	/* another source */
	source_release(&fake, &p);	/* one of the two ends */
	expect("192.0.2.7", true, 2);
	expect("192.0.2.7", false, 0);
}
END_TEST

START_TEST(test_admit_source_prefix)
{
	fake_server();
	fo.max_per_source = 1;
	fo.prefix4 = 24;
	fake_start();
	expect("198.51.100.1", true, 1);
	expect("198.51.100.200", false, 0);	/* the same /24 */
	expect("198.51.101.1", true, 1);
}
END_TEST

START_TEST(test_admit_rate)
{
	fake_server();
	fo.rate_n = 2;
	fo.rate_secs = 3600;
	fake_start();
	expect("203.0.113.5", true, 1);
	expect("203.0.113.5", true, 2);
	expect("203.0.113.5", false, 0);	/* over --rate 2/3600 */
	expect("203.0.113.6", true, 1);
}
END_TEST

Suite *admit_suite(void)
{
	Suite *s = suite_create("admit");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_admit_acl_match, 0, sizeof acls / sizeof acls[0]);
	tcase_add_test(tc, test_acl_unix_only_all);
	tcase_add_test(tc, test_rate_burst_then_refill);
	tcase_add_test(tc, test_rate_sustained_at_rate);
	tcase_add_test(tc, test_rate_no_credit_beyond_burst);
	tcase_add_test(tc, test_rate_burst_of_one);
	tcase_add_test(tc, test_rate_large_intervals);
	tcase_add_loop_test(tc, test_source_key_masks, 0, sizeof keys / sizeof keys[0]);
	tcase_add_test(tc, test_source_key_groups);
	tcase_add_test(tc, test_source_key_unix_uid);
	tcase_add_test(tc, test_admit_deny_then_allow);
	tcase_add_test(tc, test_admit_max_per_source);
	tcase_add_test(tc, test_admit_source_prefix);
	tcase_add_test(tc, test_admit_rate);
	suite_add_tcase(s, tc);
	return s;
}
