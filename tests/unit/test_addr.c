/* test_addr.c - unit tests of src/addr.c: every ADDR form addr_parse takes
 * (and the near misses it must refuse, each with a message), turning kernel
 * socket addresses into struct peer (v4-mapped IPv6 unmapped, unix named,
 * abstract and unnamed), addr_peer_format and addr_is_wildcard. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <net/if.h>
#include <string.h>
#include <sys/un.h>

#include "core.h"
#include "suites.h"

#define UN_OFF offsetof(struct sockaddr_un, sun_path)

/* text: the address inet_ntop shows for IPV4/IPV6, the name for HOST, the
 * path (with '@' for abstract) for UNIX; scope: an interface name or NULL. */
static const struct {
	const char *in;
	enum addr_kind kind;
	uint16_t port;
	const char *text;
	const char *scope;
} good[] = {
	{ "8080", ADDR_ANY, 8080, NULL, NULL },
	{ "0", ADDR_ANY, 0, NULL, NULL },
	{ "65535", ADDR_ANY, 65535, NULL, NULL },
	{ "*:80", ADDR_ANY, 80, NULL, NULL },
	{ "127.0.0.1:80", ADDR_IPV4, 80, "127.0.0.1", NULL },
	{ "0.0.0.0:0", ADDR_IPV4, 0, "0.0.0.0", NULL },
	{ "10.200.3.255:65535", ADDR_IPV4, 65535, "10.200.3.255", NULL },
	{ "[::1]:80", ADDR_IPV6, 80, "::1", NULL },
	{ "[::]:80", ADDR_IPV6, 80, "::", NULL },
	{ "[2001:db8::5]:4430", ADDR_IPV6, 4430, "2001:db8::5", NULL },
	{ "[fe80::1%lo]:80", ADDR_IPV6, 80, "fe80::1", "lo" },
	{ "localhost:80", ADDR_HOST, 80, "localhost", NULL },
	{ "example.com:443", ADDR_HOST, 443, "example.com", NULL },
	{ "my_host-1.example:22", ADDR_HOST, 22, "my_host-1.example", NULL },
	{ "unix:/tmp/x.sock", ADDR_UNIX, 0, "/tmp/x.sock", NULL },
	{ "unix:rel.sock", ADDR_UNIX, 0, "rel.sock", NULL },
	{ "unix:@abstract", ADDR_UNIX, 0, "@abstract", NULL },
};

static const char *const bad[] = {
	"", "65536", "-1", "+80", " 80", "80 ", "0x50", "99999999999999999999",
	"1.2.3:80", "01.2.3.4:80", "1.2.3.4.5:80", "256.1.1.1:80", "1.2.3.4:",
	"1.2.3.4:65536", "::1:80", "[::1]80", "[::1]:", "[::1", "[]:80",
	"[zz]:80", "[1.2.3.4]:80", ":80", "host:", "host:-1", "unix:",
	"bad_host!:80", "-host:80", ".host:80", "a b:80",
};

static void check_good(size_t i, const struct addr_spec *a)
{
	const char *in = good[i].in;
	char ip[INET6_ADDRSTRLEN] = "";

	ck_assert_msg(a->kind == good[i].kind, "%s: kind %d", in, (int)a->kind);
	ck_assert_msg(a->port == good[i].port, "%s: port %u", in, a->port);
	switch (good[i].kind) {
	case ADDR_ANY:
	case ADDR_HOST:
		/* nothing resolved, nothing to bind yet */
		ck_assert_msg(a->sslen == 0 && a->ss.ss_family == AF_UNSPEC, "%s", in);
		ck_assert_str_eq(a->host, good[i].kind == ADDR_HOST ? good[i].text : "");
		break;
	case ADDR_IPV4: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

		ck_assert_int_eq(sin->sin_family, AF_INET);
		ck_assert_uint_eq(a->sslen, sizeof *sin);
		ck_assert_uint_eq(sin->sin_port, htons(good[i].port));
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip);
		ck_assert_str_eq(ip, good[i].text);
		break;
	}
	case ADDR_IPV6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

		ck_assert_int_eq(sin6->sin6_family, AF_INET6);
		ck_assert_uint_eq(a->sslen, sizeof *sin6);
		ck_assert_uint_eq(sin6->sin6_port, htons(good[i].port));
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof ip);
		ck_assert_str_eq(ip, good[i].text);
		ck_assert_uint_eq(sin6->sin6_scope_id,
				  good[i].scope ? if_nametoindex(good[i].scope) : 0);
		break;
	}
	case ADDR_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
		const char *path = good[i].text;
		size_t n = strlen(path);

		ck_assert_int_eq(sun->sun_family, AF_UNIX);
		if (path[0] == '@') {	/* abstract: leading NUL, none at the end */
			ck_assert_int_eq(sun->sun_path[0], '\0');
			ck_assert_mem_eq(sun->sun_path + 1, path + 1, n - 1);
			ck_assert_uint_eq(a->sslen, UN_OFF + n);
		} else {
			ck_assert_str_eq(sun->sun_path, path);
			ck_assert_uint_eq(a->sslen, UN_OFF + n + 1);
		}
		break;
	}
	}
}

START_TEST(test_addr_parse_good)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct addr_spec a;
		char err[160] = "";

		ck_assert_msg(addr_parse(good[i].in, &a, err, sizeof err) == 0,
			      "%s refused: %s", good[i].in, err);
		check_good(i, &a);
	}
}
END_TEST

/* Every form again behind udp: (unix-dgram: for unix:) is the same
 * address for datagrams, and behind tcp: for a stream; the plain forms
 * are streams. */
START_TEST(test_addr_parse_socktype)
{
	static const char *const bad_typed[] = { "udp:", "tcp:", "unix-dgram:", "udp:unix:/x",
		"tcp:unix:/x", "udp: 80", "udp:80 ", "unix-dgram" };

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		bool un = strncmp(good[i].in, "unix:", 5) == 0;
		char in[300], err[160] = "";
		struct addr_spec a;

		ck_assert_int_eq(addr_parse(good[i].in, &a, err, sizeof err), 0);
		ck_assert_int_eq(a.socktype, SOCK_STREAM);
		snprintf(in, sizeof in, "%s%s", un ? "unix-dgram:" : "udp:",
			 un ? good[i].in + 5 : good[i].in);
		ck_assert_msg(addr_parse(in, &a, err, sizeof err) == 0, "%s refused: %s", in, err);
		ck_assert_msg(a.socktype == SOCK_DGRAM, "%s: not a datagram socket", in);
		check_good(i, &a);
		if (un)
			continue;
		snprintf(in, sizeof in, "tcp:%s", good[i].in);
		ck_assert_msg(addr_parse(in, &a, err, sizeof err) == 0, "%s refused: %s", in, err);
		ck_assert_int_eq(a.socktype, SOCK_STREAM);
		check_good(i, &a);
	}
	for (size_t i = 0; i < sizeof bad_typed / sizeof bad_typed[0]; i++) {
		struct addr_spec a;
		char err[160] = "";

		ck_assert_msg(addr_parse(bad_typed[i], &a, err, sizeof err) == -1,
			      "%s accepted", bad_typed[i]);
		ck_assert_msg(err[0], "%s: no reason given", bad_typed[i]);
	}
}
END_TEST

START_TEST(test_addr_parse_ipv4_bytes)
{
	static const unsigned char want[] = { 0, 80, 127, 0, 0, 1 };
	const struct sockaddr_in *sin;
	struct addr_spec a;
	char err[160];

	ck_assert_int_eq(addr_parse("127.0.0.1:80", &a, err, sizeof err), 0);
	sin = (const struct sockaddr_in *)&a.ss;
	ck_assert_mem_eq(&sin->sin_port, want, 2);	/* network order */
	ck_assert_mem_eq(&sin->sin_addr, want + 2, 4);
}
END_TEST

START_TEST(test_addr_parse_bad)
{
	char longpath[5 + 201];
	struct addr_spec a;
	char err[160];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		ck_assert_msg(addr_parse(bad[i], &a, err, sizeof err) == -1,
			      "'%s' accepted", bad[i]);
		ck_assert_msg(err[0] != '\0', "'%s': no message", bad[i]);
	}
	memcpy(longpath, "unix:/", 6);
	memset(longpath + 6, 'p', 199);
	longpath[205] = '\0';
	err[0] = '\0';
	ck_assert_int_eq(addr_parse(longpath, &a, err, sizeof err), -1);
	ck_assert(err[0] != '\0');
}
END_TEST

enum un_len { UN_NUL, UN_NONUL, UN_FULL, UN_FAMILY };

/* addr: for AF_UNIX the path, '@' standing for the abstract NUL. */
static const struct {
	int family;
	const char *addr;
	uint16_t port;
	enum un_len ulen;
	int want_family;
	const char *want_ip, *want_path, *want_fmt;
	unsigned char raw[16];
} peers[] = {
	{ AF_INET, "1.2.3.4", 5, 0, AF_INET, "1.2.3.4", "", "1.2.3.4:5", { 1, 2, 3, 4 } },
	{ AF_INET6, "::1", 80, 0, AF_INET6, "::1", "", "[::1]:80",
	  { [15] = 1 } },
	{ AF_INET6, "2001:db8::a:b", 65535, 0, AF_INET6, "2001:db8::a:b", "",
	  "[2001:db8::a:b]:65535", { 0x20, 1, 0xd, 0xb8, [13] = 0xa, [15] = 0xb } },
	{ AF_INET6, "::ffff:10.1.2.3", 443, 0, AF_INET, "10.1.2.3", "", "10.1.2.3:443",
	  { 10, 1, 2, 3 } },
	{ AF_UNIX, "/p", 0, UN_NUL, AF_UNIX, "", "/p", "unix:/p", { 0 } },
	{ AF_UNIX, "/run/x.sock", 0, UN_NONUL, AF_UNIX, "", "/run/x.sock",
	  "unix:/run/x.sock", { 0 } },
	{ AF_UNIX, "/p", 0, UN_FULL, AF_UNIX, "", "/p", "unix:/p", { 0 } },
	{ AF_UNIX, "@name", 0, UN_NONUL, AF_UNIX, "", "@name", "unix:@name", { 0 } },
	{ AF_UNIX, "", 0, UN_FAMILY, AF_UNIX, "", "", "unix:uid=0", { 0 } },
};

static socklen_t make_sa(size_t i, struct sockaddr_storage *ss)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n = strlen(peers[i].addr);

	memset(ss, 0, sizeof *ss);
	ss->ss_family = (sa_family_t)peers[i].family;
	if (peers[i].family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		inet_pton(AF_INET, peers[i].addr, &sin->sin_addr);
		sin->sin_port = htons(peers[i].port);
		return sizeof *sin;
	}
	if (peers[i].family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		inet_pton(AF_INET6, peers[i].addr, &sin6->sin6_addr);
		sin6->sin6_port = htons(peers[i].port);
		return sizeof *sin6;
	}
	memcpy(sun->sun_path, peers[i].addr, n);
	if (peers[i].addr[0] == '@')
		sun->sun_path[0] = '\0';
	switch (peers[i].ulen) {
	case UN_NUL: return (socklen_t)(UN_OFF + n + 1);
	case UN_NONUL: return (socklen_t)(UN_OFF + n);
	case UN_FULL: return sizeof *sun;
	case UN_FAMILY: break;
	}
	return sizeof(sa_family_t);	/* unnamed: the family alone */
}

START_TEST(test_addr_peer)
{
	for (size_t i = 0; i < sizeof peers / sizeof peers[0]; i++) {
		struct sockaddr_storage ss;
		socklen_t len = make_sa(i, &ss);
		struct peer p;
		char buf[ADDR_STRLEN];
		size_t rawlen = peers[i].want_family == AF_INET6 ? 16 : 4;

		memset(&p, 0xa5, sizeof p);	/* everything must be written */
		addr_peer_from(&p, (const struct sockaddr *)&ss, len);
		ck_assert_msg(p.family == peers[i].want_family, "%s: family", peers[i].addr);
		ck_assert_str_eq(p.ip, peers[i].want_ip);
		ck_assert_str_eq(p.path, peers[i].want_path);
		ck_assert_uint_eq(p.port, peers[i].port);
		if (peers[i].want_family != AF_UNIX)
			ck_assert_mem_eq(p.raw, peers[i].raw, rawlen);
		ck_assert_int_eq(addr_peer_format(&p, buf, sizeof buf),
				 (int)strlen(peers[i].want_fmt));
		ck_assert_str_eq(buf, peers[i].want_fmt);
	}
}
END_TEST

static const struct {
	int family;
	const char *addr;
	bool want;
} wild[] = {
	{ AF_INET, "0.0.0.0", true }, { AF_INET6, "::", true },
	{ AF_INET, "127.0.0.1", false }, { AF_INET6, "::1", false },
	{ AF_INET6, "::ffff:0.0.0.0", false }, { AF_UNIX, NULL, false },
};

START_TEST(test_addr_wildcard)
{
	for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
		struct sockaddr_storage ss;
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		memset(&ss, 0, sizeof ss);
		ss.ss_family = (sa_family_t)wild[i].family;
		if (wild[i].family == AF_INET)
			inet_pton(AF_INET, wild[i].addr, &sin->sin_addr);
		else if (wild[i].family == AF_INET6)
			inet_pton(AF_INET6, wild[i].addr, &sin6->sin6_addr);
		ck_assert_msg(addr_is_wildcard((const struct sockaddr *)&ss) == wild[i].want,
			      "%s", wild[i].addr ? wild[i].addr : "unix");
	}
}
END_TEST

Suite *addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_addr_parse_good);
	tcase_add_test(tc, test_addr_parse_socktype);
	tcase_add_test(tc, test_addr_parse_ipv4_bytes);
	tcase_add_test(tc, test_addr_parse_bad);
	tcase_add_test(tc, test_addr_peer);
	tcase_add_test(tc, test_addr_wildcard);
	suite_add_tcase(s, tc);
	return s;
}
