/* test_rules.c - unit tests of src/rules.c: the lines it takes (tcprules'
 * own, with ucspi-tcp-ipv6's IPv6 forms, and acceptd's CIDRs, unix peers
 * and instructions), the lines it refuses with a reason and the line
 * number, which rule a client gets (tcprules(1)'s own examples, the most
 * specific first, the first of two for one network, unix uid then gid),
 * quoting and escapes, and 100,000 rules. */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core.h"
#include "suites.h"

static struct rules *parse_ok(const char *text)
{
	char err[256] = "";
	struct rules *r = rules_parse(text, strlen(text), err, sizeof err);

	ck_assert_msg(r != NULL, "'%s' refused: %s", text, err);
	return r;
}

static struct peer peer_of(const char *ip)
{
	struct peer p;

	memset(&p, 0, sizeof p);
	if (inet_pton(AF_INET, ip, p.raw) == 1)
		p.family = AF_INET;
	else if (inet_pton(AF_INET6, ip, p.raw) == 1)
		p.family = AF_INET6;
	else
		ck_abort_msg("bad test address %s", ip);
	return p;
}

/* The line of the rule ip gets, 0 for none. */
static unsigned line_for(const struct rules *r, const char *ip)
{
	struct peer p = peer_of(ip);
	const struct rule *m = rules_match(r, &p, 0);

	return m ? m->line : 0;
}

static unsigned line_for_unix(const struct rules *r, uint32_t uid, uint32_t gid)
{
	struct peer p;
	const struct rule *m;

	memset(&p, 0, sizeof p);
	p.family = AF_UNIX;
	memcpy(p.raw, &uid, sizeof uid);
	m = rules_match(r, &p, gid);
	return m ? m->line : 0;
}

/* One rule line, and what a client at ip gets from it alone: line 1, or
 * 0 (no match). */
static const struct {
	const char *line;
	const char *ip;
	unsigned want;
} one[] = {
	{ "18.23.0.32:deny", "18.23.0.32", 1 },
	{ "18.23.0.32:deny", "18.23.0.33", 0 },
	{ "127.:allow", "127.0.0.1", 1 },
	{ "127.:allow", "127.255.1.2", 1 },
	{ "127.:allow", "128.0.0.1", 0 },
	{ "127.:allow", "::1", 0 },
	{ "192.168.1.:allow", "192.168.1.77", 1 },
	{ "192.168.1.:allow", "192.168.2.77", 0 },
	{ "10.0.:allow", "10.0.200.1", 1 },
	{ "10.0.:allow", "10.1.0.1", 0 },
	{ "1.2.3.37-53:allow", "1.2.3.36", 0 },
	{ "1.2.3.37-53:allow", "1.2.3.37", 1 },
	{ "1.2.3.37-53:allow", "1.2.3.45", 1 },
	{ "1.2.3.37-53:allow", "1.2.3.53", 1 },
	{ "1.2.3.37-53:allow", "1.2.3.54", 0 },
	{ "1.2.3.0-255:allow", "1.2.3.255", 1 },
	{ "10.2-3.:allow", "10.1.0.1", 0 },
	{ "10.2-3.:allow", "10.2.0.1", 1 },
	{ "10.2-3.:allow", "10.3.9.9", 1 },
	{ "10.2-3.:allow", "10.4.0.1", 0 },
	{ "1-3.:allow", "3.1.1.1", 1 },
	{ "0.0.0.0:allow", "0.0.0.0", 1 },
	{ ":allow", "8.8.8.8", 1 },
	{ ":allow", "2001:db8::1", 1 },
	/* ucspi-tcp-ipv6: addresses, and prefixes of whole groups */
	{ "::1:allow", "::1", 1 },
	{ "::1:allow", "::2", 0 },
	{ "2001:db8::1:allow", "2001:db8::1", 1 },
	{ "2001:0DB8:0:0:0:0:0:1:allow", "2001:db8::1", 1 },
	{ "2001:db8::allow", "2001:db8:ffff::1", 1 },	/* 2001:db8: is /32 */
	{ "2001:db8::allow", "2001:db9::1", 0 },
	{ "2001:db8:1::allow", "2001:db8:1:2::1", 1 },
	{ "2001:db8:1::allow", "2001:db8:2::1", 0 },
	{ "2001:db8:::allow", "2001:db8::5", 1 },	/* 2001:db8:: is /64 */
	{ "2001:db8:::allow", "2001:db8:0:0:1:2:3:4", 1 },
	{ "2001:db8:::allow", "2001:db8:0:1::1", 0 },
	{ "fe80:::allow", "fe80::1", 1 },
	{ "fe80:::allow", "fe80:0:1::1", 0 },
	{ "1:2:3:4:5:6:7::allow", "1:2:3:4:5:6:7:ff", 1 },
	{ "1:2:3:4:5:6:::allow", "1:2:3:4:5:6::", 1 },
	{ "1:2:3:4:5:6:::allow", "1:2:3:4:5:6::1", 0 },
	{ ":::allow", "::5:6", 1 },
	{ ":::allow", "0:1::", 0 },
	{ "::ffff:10.1.2.3:allow", "10.1.2.3", 1 },	/* peers come unmapped */
	/* acceptd: CIDRs */
	{ "10.0.0.0/8:allow", "10.9.9.9", 1 },
	{ "10.0.0.0/8:allow", "11.0.0.0", 0 },
	{ "10.0.0.128/25:allow", "10.0.0.200", 1 },
	{ "10.0.0.128/25:allow", "10.0.0.127", 0 },
	{ "0.0.0.0/0:allow", "1.1.1.1", 1 },
	{ "0.0.0.0/0:allow", "::1", 0 },
	{ "2001:db8::/33:allow", "2001:db8:7fff::1", 1 },
	{ "2001:db8::/33:allow", "2001:db8:8000::1", 0 },
	{ "::/0:allow", "::", 1 },
	{ "2001:db8::1/128:deny", "2001:db8::1", 1 },
	{ "unix:uid=0:allow", "127.0.0.1", 0 },
};

START_TEST(test_rules_match_one)
{
	for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
		struct rules *r = parse_ok(one[i].line);

		ck_assert_msg(line_for(r, one[i].ip) == one[i].want, "'%s' for %s: got %u",
			      one[i].line, one[i].ip, line_for(r, one[i].ip));
		rules_free(r);
	}
}
END_TEST

/* A line refused, with part of the reason. */
static const struct {
	const char *line;
	const char *why;
} bad[] = {
	{ "allow", "ADDRESS:allow" },
	{ "1.2.3.4", "ADDRESS:allow" },
	{ "1.2.3.4:", "ADDRESS:allow" },
	{ "1.2.3.4:bogus", "ADDRESS:allow" },
	{ "1.2.3.4:allowed", "expected ','" },
	{ "1.2.3.4:allow,", "nothing after ','" },
	{ "1.2.3.4:allow,A", "NAME=" },
	{ "1.2.3.4:allow,A=", "no value" },
	{ "1.2.3.4:allow,A=\"x", "unterminated" },
	{ "1.2.3.4:allow,A=x", "unterminated" },
	{ "1.2.3.4:allow,A=\"x\"junk", "closing quote" },
	{ "1.2.3.4:allow,A=\"x\",", "nothing after" },
	{ "1.2.3.4:allow,=\"x\"", "empty variable name" },
	{ "1.2.3.4:allow,A,B=\"x\"", "NAME=" },
	{ "1.2.3.4:allow,-", "NAME to unset" },
	{ "1.2.3.4:allow,-A=\"x\"", "start with '-'" },
	{ "1.2.3.4:allow # comment", "a blank after allow" },
	{ "=host.example:allow", "DNS" },
	{ "mail.example.com:allow", "DNS" },
	{ "localhost:deny", "DNS" },
	{ "all:deny", "empty address" },
	{ "joe@127.0.0.1:allow", "ident" },
	{ "1.2.3:allow", "four numbers" },
	{ "1.2.3.4.:allow", "at most three" },
	{ "1.2.3.4.5:allow", "four numbers" },
	{ "1.2.3.300:allow", "0-255" },
	{ "1.2.3.04:allow", "leading zeros" },
	{ "1..3.4:allow", "0-255" },
	{ ".:allow", "0-255" },
	{ "1.2.3.9-4:allow", "A <= B" },
	{ "1.2.3.1-300:allow", "0-255" },
	{ "1.2-3.4.5:allow", "last number" },
	{ "1.2.3.4-:allow", "0-255" },
	{ "::1-3:allow", "range" },
	{ "2001:db8:1:2:3:4:5:6::allow", "at most eight" },
	{ "2001:db8:1:2:3:4:5:::allow", "at most eight" },
	{ "2001:dbx8::allow", "whole groups" },
	{ "2001::1:allow,A=\"x\"", NULL },	/* fine: an address */
	{ "2001::1:::allow", "whole groups" },
	{ "12345::allow", "whole groups" },
	{ "2001:db8:allow", "a prefix ends with ':'" },
	{ "::allow", "starts with a group" },
	{ ":1::allow", "whole groups" },
	{ "fe80::1%eth0:allow", "zone" },
	{ "[::1]:allow", "brackets" },
	{ "10.0.0.1/8:allow", "did you mean 10.0.0.0/8" },
	{ "10.0.0.0/33:allow", "0 to 32" },
	{ "unix:uid=x:allow", "decimal" },
	{ "unix:pid=1:allow", "uid=N or gid=N" },
	{ "1.2.3.4:allow,msg=\"x\"", "only in a deny rule" },
	{ "1.2.3.4:deny,exec=\"/bin/true\"", "only in an allow rule" },
	{ "1.2.3.4:deny,rate=\"1/1\"", "only in an allow rule" },
	{ "1.2.3.4:deny,max-per-source=\"1\"", "only in an allow rule" },
	{ "1.2.3.4:deny,msg=\"\"", "empty" },
	{ "1.2.3.4:deny,msg=\"\\q\"", "may follow a backslash" },
	{ "1.2.3.4:deny,msg=\"a\",msg=\"b\"", "twice" },
	{ "1.2.3.4:allow,exec=\"\"", "no program" },
	{ "1.2.3.4:allow,exec=\"/bin/x 'a\"", "unterminated" },
	{ "1.2.3.4:allow,exec=\"/a\",exec=\"/b\"", "twice" },
	{ "1.2.3.4:allow,exec=\"true\"", "absolute path" },
	{ "1.2.3.4:allow,exec=\"./x\"", "absolute path" },
	{ "1.2.3.4:allow,rate=\"5\"", "N/SECS" },
	{ "1.2.3.4:allow,rate=\"0/1\"", "N/SECS" },
	{ "1.2.3.4:allow,rate=\"1/0\"", "N/SECS" },
	{ "1.2.3.4:allow,rate=\"1/86401\"", "N/SECS" },
	{ "1.2.3.4:allow,rate=\"1/1\",rate=\"2/1\"", "twice" },
	{ "1.2.3.4:allow,max-per-source=\"0\"", "1-1000000" },
	{ "1.2.3.4:allow,max-per-source=\"1000001\"", "1-1000000" },
	{ "1.2.3.4:allow,max-per-source=\"1\",max-per-source=\"1\"", "twice" },
	{ "1.2.3.4:allow,max-per-source=1,max-per-source=2", "twice" },
	{ "1.2.3.4:allow,max-per-source=5x", "1-1000000" },
	{ "1.2.3.4:allow,max-per-source=0", "1-1000000" },
	{ "1.2.3.4:allow,rate=20", "N/SECS" },
	{ "1.2.3.4:allow,rate=123456789012345678901234567890123/1", "too long" },
	{ " 1.2.3.4:allow", "a blank in the address" },
	{ "1.2.3.4 :allow", "a blank in the address" },
	{ "1.2.3.4:allow ,X=\"y\"", "a blank after allow" },
	{ "1.2.3.4:deny\t", "a blank after allow" },
};

START_TEST(test_rules_bad)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[256], err[256] = "";
		struct rules *r;

		/* on line 3, after a comment and a good rule */
		snprintf(text, sizeof text, "# c\n1.1.1.1:allow\n%s\n:deny\n", bad[i].line);
		r = rules_parse(text, strlen(text), err, sizeof err);
		if (!bad[i].why) {
			ck_assert_msg(r != NULL, "'%s' refused: %s", bad[i].line, err);
			rules_free(r);
			continue;
		}
		ck_assert_msg(r == NULL, "'%s' taken", bad[i].line);
		ck_assert_msg(strncmp(err, "3: ", 3) == 0 && strstr(err, bad[i].why),
			      "'%s': reason '%s', want '3: ...%s...'", bad[i].line, err,
			      bad[i].why);
	}
}
END_TEST

START_TEST(test_rules_skipped_lines)
{
	static const char text[] = "\n# a comment: with colons\r\n   \n\t# indented\n"
				   "1.2.3.4:deny\r\n#:allow\n";
	struct rules *r = parse_ok(text);
	char err[64] = "";

	ck_assert_uint_eq(rules_count(r), 1);
	ck_assert_uint_eq(rules_at(r, 0)->line, 5);
	ck_assert_ptr_null(rules_at(r, 1));
	ck_assert_uint_eq(line_for(r, "1.2.3.4"), 5);
	ck_assert_uint_eq(line_for(r, "1.2.3.5"), 0);
	rules_free(r);
	/* nothing at all: no rules, everyone allowed */
	r = rules_parse("", 0, err, sizeof err);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(rules_count(r), 0);
	ck_assert_uint_eq(line_for(r, "1.2.3.4"), 0);
	rules_free(r);
	/* a NUL inside, and a file without its last newline */
	ck_assert_ptr_null(rules_parse(":allow\n:d\0eny\n", 14, err, sizeof err));
	ck_assert_str_eq(err, "2: a NUL byte");
	r = rules_parse("1.2.3.4:deny", 12, err, sizeof err);
	ck_assert_uint_eq(line_for(r, "1.2.3.4"), 1);
	rules_free(r);
}
END_TEST

/* tcprules(1)'s ADDRESSES example (its joe@ rule left out: ident). */
START_TEST(test_rules_man_addresses)
{
	struct rules *r = parse_ok("18.23.0.32:allow,N=\"second\"\n"
				   "127.:allow,N=\"third\"\n"
				   ":allow,N=\"fourth\"\n"
				   "::1:allow,N=\"fifth\"\n");
	struct peer p = peer_of("10.119.75.38");

	ck_assert_uint_eq(line_for(r, "10.119.75.38"), 3);
	ck_assert_str_eq(rules_match(r, &p, 0)->vars[0].value, "fourth");
	ck_assert_uint_eq(line_for(r, "::1"), 4);
	ck_assert_uint_eq(line_for(r, "18.23.0.32"), 1);
	ck_assert_uint_eq(line_for(r, "127.0.0.1"), 2);
	rules_free(r);
}
END_TEST

/* tcprules(1)'s INSTRUCTIONS examples: quoting with any repeated
 * character, several variables, an empty value. */
START_TEST(test_rules_man_instructions)
{
	static const struct {
		const char *line;
		unsigned n;
		const char *vars[4];	/* name, value, ... */
	} cases[] = {
		{ "10.0.:allow,RELAYCLIENT=\"@fix.me\"", 1, { "RELAYCLIENT", "@fix.me" } },
		{ "10.0.:allow,RELAYCLIENT=/@fix.me/", 1, { "RELAYCLIENT", "@fix.me" } },
		{ "127.0.0.1:allow,RELAYCLIENT=\"\",TCPLOCALHOST=\"movie.edu\"", 2,
		  { "RELAYCLIENT", "", "TCPLOCALHOST", "movie.edu" } },
		{ "1.2.3.4:allow,A=xyx", 1, { "A", "y" } },
		{ "1.2.3.4:allow,A=xx", 1, { "A", "" } },
		{ "1.2.3.4:allow,A=\"x:deny,B=y\"", 1, { "A", "x:deny,B=y" } },
		{ "1.2.3.4:allow,A=\"a b\\\"", 1, { "A", "a b\\" } },
		{ "1.2.3.4:deny,A=\"1\"", 1, { "A", "1" } },
		{ "127.:allow,RELAYCLIENT=\"\"", 1, { "RELAYCLIENT", "" } },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct rules *r = parse_ok(cases[i].line);
		const struct rule *m;
		struct peer p = peer_of(strncmp(cases[i].line, "10.", 3) == 0 ? "10.0.0.1" :
			    strncmp(cases[i].line, "127", 3) == 0 ? "127.0.0.1" : "1.2.3.4");

		m = rules_match(r, &p, 0);
		ck_assert_ptr_nonnull(m);
		ck_assert_uint_eq(m->n_vars, cases[i].n);
		for (unsigned v = 0; v < cases[i].n; v++) {
			ck_assert_str_eq(m->vars[v].name, cases[i].vars[2 * v]);
			ck_assert_str_eq(m->vars[v].value, cases[i].vars[2 * v + 1]);
		}
		rules_free(r);
	}
}
END_TEST

/* The most specific rule wins, whatever the order of the lines; of two
 * for one network, the first. */
START_TEST(test_rules_precedence)
{
	static const char *orders[] = {
		":deny\n10.:allow\n10.1.0.0/16:allow\n10.1.2.:allow\n10.1.2.128/25:allow\n"
		"10.1.2.3:allow\n10.1.2.200-210:allow\n",
		"10.1.2.200-210:allow\n10.1.2.3:allow\n10.1.2.128/25:allow\n10.1.2.:allow\n"
		"10.1.0.0/16:allow\n10.:allow\n:deny\n",
	};

	for (size_t i = 0; i < 2; i++) {
		struct rules *r = parse_ok(orders[i]);
		/* each line's own address: the line number in that order */
		unsigned at[7];

		for (unsigned k = 0; k < 7; k++)
			at[k] = i == 0 ? k + 1 : 7 - k;
		ck_assert_uint_eq(line_for(r, "11.0.0.1"), at[0]);
		ck_assert_uint_eq(line_for(r, "10.9.9.9"), at[1]);
		ck_assert_uint_eq(line_for(r, "10.1.9.9"), at[2]);
		ck_assert_uint_eq(line_for(r, "10.1.2.4"), at[3]);
		ck_assert_uint_eq(line_for(r, "10.1.2.130"), at[4]);
		ck_assert_uint_eq(line_for(r, "10.1.2.3"), at[5]);
		ck_assert_uint_eq(line_for(r, "10.1.2.205"), at[6]);	/* in /25 too */
		ck_assert_uint_eq(line_for(r, "::1"), at[0]);
		rules_free(r);
	}
	{
		/* one network twice (10. is 10.0.0.0/8; a range overlaps an
		 * address), and two defaults: the first of each */
		struct rules *r = parse_ok("10.:deny\n10.0.0.0/8:allow\n"
					   "1.2.3.4:allow\n1.2.3.1-9:deny\n:allow\n:deny\n"
					   "2001:db8::allow\n2001:db8::/32:deny\n");

		ck_assert_uint_eq(line_for(r, "10.1.1.1"), 1);
		ck_assert_uint_eq(line_for(r, "1.2.3.4"), 3);
		ck_assert_uint_eq(line_for(r, "1.2.3.5"), 4);
		ck_assert_uint_eq(line_for(r, "9.9.9.9"), 5);
		ck_assert_uint_eq(line_for(r, "2001:db8::7"), 7);
		ck_assert_uint_eq(rules_count(r), 8);
		rules_free(r);
	}
}
END_TEST

START_TEST(test_rules_unix)
{
	struct rules *r = parse_ok("unix:gid=100:allow,WHO=\"group\"\n"
				   "unix:uid=1000:allow,WHO=\"user\"\n"
				   "unix:uid=0:allow\n"
				   ":deny\n"
				   "127.:allow\n");

	ck_assert_uint_eq(line_for_unix(r, 1000, 100), 2);	/* uid before gid */
	ck_assert_uint_eq(line_for_unix(r, 1001, 100), 1);
	ck_assert_uint_eq(line_for_unix(r, 1001, 101), 4);
	ck_assert_uint_eq(line_for_unix(r, 0, 0), 3);
	ck_assert_uint_eq(line_for_unix(r, 100, 1000), 4);	/* ids are not mixed */
	ck_assert_uint_eq(line_for(r, "127.0.0.1"), 5);
	ck_assert_uint_eq(line_for(r, "0.0.0.100"), 4);
	rules_free(r);
	/* without a default, an unknown local user is allowed (no rule) */
	r = parse_ok("unix:uid=5:deny\n");
	ck_assert_uint_eq(line_for_unix(r, 6, 5), 0);
	ck_assert_uint_eq(line_for_unix(r, 5, 6), 1);
	rules_free(r);
}
END_TEST

/* The numbers of acceptd's own instructions need no quotes; read as
 * tcprules reads a value (its first character the quote),
 * max-per-source=525 would mean 2. */
START_TEST(test_rules_unquoted_numbers)
{
	struct rules *r = parse_ok("10.0.0.1:allow,max-per-source=525,rate=20/1,X=\"y\"\n"
				   "10.0.0.2:allow,rate=7/60\n");
	struct peer p = peer_of("10.0.0.1");
	const struct rule *m = rules_match(r, &p, 0);

	ck_assert_uint_eq(m->max_per_source, 525);
	ck_assert_uint_eq(m->rate_n, 20);
	ck_assert_uint_eq(m->rate_secs, 1);
	ck_assert_uint_eq(m->n_vars, 1);
	ck_assert_str_eq(m->vars[0].name, "X");
	ck_assert_str_eq(m->vars[0].value, "y");
	p = peer_of("10.0.0.2");
	m = rules_match(r, &p, 0);
	ck_assert_uint_eq(m->rate_n, 7);
	ck_assert_uint_eq(m->rate_secs, 60);
	rules_free(r);
}
END_TEST

/* acceptd's own instructions, and what a rule says about itself. */
START_TEST(test_rules_own)
{
	struct rules *r = parse_ok(
		"10.0.0.0/8:deny,msg=\"421 busy\\r\\n\"\n"
		"10.1.:deny,msg=/say \"no\"\\t\\\\\\//,X=\"1\"\n"
		"10.2.:allow,exec=\"/usr/bin/prog -a 'b c' d\\\\e\",max-per-source=\"3\","
		"rate=\"20/60\",-PATH,A=\"1\",-B\n"
		"2001:db8::/48:deny\n");
	struct peer p = peer_of("10.9.0.1");
	const struct rule *m = rules_match(r, &p, 0);

	ck_assert(m->deny);
	ck_assert_uint_eq(m->msg_len, 10);
	ck_assert_mem_eq(m->msg, "421 busy\r\n", 10);
	ck_assert_int_eq(m->net.family, AF_INET);
	ck_assert_uint_eq(m->net.prefix, 8);
	ck_assert_ptr_null(m->argv);
	p = peer_of("10.1.0.1");
	m = rules_match(r, &p, 0);
	ck_assert_uint_eq(m->msg_len, 11);
	ck_assert_mem_eq(m->msg, "say \"no\"\t\\/", 11);
	ck_assert_uint_eq(m->n_vars, 1);
	ck_assert_uint_eq(m->net.prefix, 16);
	p = peer_of("10.2.0.1");
	m = rules_match(r, &p, 0);
	ck_assert(!m->deny);
	ck_assert_ptr_null(m->msg);
	ck_assert_str_eq(m->argv[0], "/usr/bin/prog");
	ck_assert_str_eq(m->argv[1], "-a");
	ck_assert_str_eq(m->argv[2], "b c");
	ck_assert_str_eq(m->argv[3], "d\\e");
	ck_assert_ptr_null(m->argv[4]);
	ck_assert_uint_eq(m->max_per_source, 3);
	ck_assert_uint_eq(m->rate_n, 20);
	ck_assert_uint_eq(m->rate_secs, 60);
	ck_assert_uint_eq(m->n_vars, 3);
	ck_assert_str_eq(m->vars[0].name, "PATH");
	ck_assert_ptr_null(m->vars[0].value);
	ck_assert_str_eq(m->vars[1].name, "A");
	ck_assert_str_eq(m->vars[1].value, "1");
	ck_assert_str_eq(m->vars[2].name, "B");
	ck_assert_ptr_null(m->vars[2].value);
	ck_assert_int_eq(m->range_last, -1);
	p = peer_of("2001:db8:0:ffff::1");
	m = rules_match(r, &p, 0);
	ck_assert_int_eq(m->net.family, AF_INET6);
	ck_assert_uint_eq(m->net.prefix, 48);
	ck_assert_uint_eq(m->line, 4);
	ck_assert_ptr_null(m->msg);
	rules_free(r);
	r = parse_ok("1.2.3.4-9:allow\n");
	p = peer_of("1.2.3.5");
	m = rules_match(r, &p, 0);
	ck_assert_int_eq(m->range_last, 9);
	ck_assert_uint_eq(m->net.addr[3], 4);
	rules_free(r);
}
END_TEST

/* A message that does not fit is cut, never overrun. */
START_TEST(test_rules_err_truncated)
{
	char err[8];

	ck_assert_ptr_null(rules_parse("=x:allow\n", 9, err, sizeof err));
	ck_assert_uint_eq(strlen(err), sizeof err - 1);
	ck_assert_int_eq(strncmp(err, "1: host", 7), 0);
}
END_TEST

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100,000 rules: 90,000 addresses, 9,000 IPv6 /64s, 1,000 dotted
 * prefixes.  Time is not asserted; ACCEPTD_TEST_TIMING=1 prints it. */
START_TEST(test_rules_100k)
{
	size_t cap = 100000 * 48, len = 0;
	char *text = malloc(cap), err[256] = "";
	struct rules *r;
	double t0, t1, t2;

	ck_assert_ptr_nonnull(text);
	for (unsigned i = 0; i < 90000; i++)
		len += (size_t)snprintf(text + len, cap - len, "10.%u.%u.%u:allow,N=\"%u\"\n",
					i >> 16, (i >> 8) & 255, i & 255, i);
	for (unsigned i = 0; i < 9000; i++)
		len += (size_t)snprintf(text + len, cap - len, "2001:db8:%x:%x::/64:deny\n",
					i >> 8, i & 255);
	for (unsigned i = 0; i < 1000; i++)
		len += (size_t)snprintf(text + len, cap - len, "%u.%u.:deny\n",
					20 + i / 250, i % 250);
	t0 = now_s();
	r = rules_parse(text, len, err, sizeof err);
	t1 = now_s();
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_uint_eq(rules_count(r), 100000);
	for (unsigned i = 0; i < 90000; i += 7) {
		char ip[32];
		struct peer p;
		const struct rule *m;

		snprintf(ip, sizeof ip, "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		p = peer_of(ip);
		m = rules_match(r, &p, 0);
		ck_assert_uint_eq(m->line, i + 1);
		ck_assert_uint_eq(strtoul(m->vars[0].value, NULL, 10), i);
	}
	ck_assert_uint_eq(line_for(r, "10.1.95.144"), 0);	/* i = 90000 */
	ck_assert_uint_eq(line_for(r, "2001:db8:22:7f::5"), 90000 + 0x227f + 1);
	ck_assert_uint_eq(line_for(r, "2001:db8:2328::1"), 0);
	ck_assert_uint_eq(line_for(r, "23.249.1.1"), 99000 + 999 + 1);
	t2 = now_s();
	for (unsigned i = 0; i < 100000; i++)
		line_for(r, "2001:db9::1");	/* a miss at each IPv6 length used */
	if (getenv("ACCEPTD_TEST_TIMING"))	/* stderr would cut into TAP lines */
		fprintf(stderr, "# rules: 100,000 rules parsed in %.0f ms; 100,000 IPv6 misses "
		"in %.0f ms\n", (t1 - t0) * 1e3, (now_s() - t2) * 1e3);
	rules_free(r);
	free(text);
}
END_TEST

Suite *rules_suite(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_rules_match_one);
	tcase_add_test(tc, test_rules_bad);
	tcase_add_test(tc, test_rules_skipped_lines);
	tcase_add_test(tc, test_rules_man_addresses);
	tcase_add_test(tc, test_rules_man_instructions);
	tcase_add_test(tc, test_rules_precedence);
	tcase_add_test(tc, test_rules_unix);
	tcase_add_test(tc, test_rules_unquoted_numbers);
	tcase_add_test(tc, test_rules_own);
	tcase_add_test(tc, test_rules_err_truncated);
	tcase_add_test(tc, test_rules_100k);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}
