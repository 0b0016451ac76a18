/* test_builtin.c - unit tests of src/builtin.c's pure parts: the service
 * names (lookup and back), the RFC 864 chargen line pattern and the RFC
 * 868 time value (seconds since 1900, modulo 2^32). */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "core.h"
#include "suites.h"

static const struct {
	const char *name;
	enum builtin_kind kind;
} services[] = {
	{ "echo", BUILTIN_ECHO }, { "discard", BUILTIN_DISCARD },
	{ "chargen", BUILTIN_CHARGEN }, { "daytime", BUILTIN_DAYTIME },
	{ "time", BUILTIN_TIME },
};

static const char *const unknown[] = {
	"", "none", "ECHO", "Echo", "echo ", " echo", "ech", "echoo", "daytime\n", "7",
};

/* The UDP forms: echo gives the request back whole (or nothing, never a
 * cut one); chargen at most 512 characters (RFC 864), whole lines that go
 * on where the last reply stopped; daytime a line; time 4 bytes; discard
 * nothing - and none is longer than its request but those the RFCs allow. */
START_TEST(test_builtin_dgram_reply)
{
	static char big[70000];
	char out[600], want[74];
	unsigned line = 93;
	time_t now = 1700000000;
	uint32_t v;
	size_t n;

	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_ECHO, "abc", 3, &line, now, out, sizeof out), 3);
	ck_assert_mem_eq(out, "abc", 3);
	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_ECHO, "", 0, &line, now, out, sizeof out), 0);
	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_ECHO, big, sizeof big, &line, now, out,
					      sizeof out), 0);
	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_DISCARD, "abc", 3, &line, now, out,
					      sizeof out), 0);
	n = builtin_dgram_reply(BUILTIN_CHARGEN, "", 0, &line, now, out, sizeof out);
	ck_assert_uint_eq(n, BUILTIN_CHARGEN_DGRAM);
	ck_assert_uint_le(n, 512);
	ck_assert_uint_eq(n % 74, 0);
	for (unsigned i = 0; i < n / 74; i++) {
		builtin_chargen_line((93 + i) % 95, want);
		ck_assert_mem_eq(out + 74 * i, want, 74);
	}
	ck_assert_uint_eq(line, (93 + n / 74) % 95);
	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_CHARGEN, "", 0, &line, now, out, 100), 74);
	n = builtin_dgram_reply(BUILTIN_DAYTIME, "", 0, &line, now, out, sizeof out);
	ck_assert_uint_gt(n, 20);
	ck_assert_uint_lt(n, 64);
	ck_assert_mem_eq(out + n - 2, "\r\n", 2);
	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_DAYTIME, "", 0, &line, now, out, 5), 0);
	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_TIME, "", 0, &line, now, out, sizeof out), 4);
	memcpy(&v, out, 4);
	ck_assert_uint_eq(ntohl(v), builtin_time_value(now));
	ck_assert_uint_eq(builtin_dgram_reply(BUILTIN_TIME, "", 0, &line, now, out, 3), 0);
}
END_TEST

START_TEST(test_builtin_names)
{
	for (size_t i = 0; i < sizeof services / sizeof services[0]; i++) {
		enum builtin_kind k = BUILTIN_NONE;

		ck_assert_int_eq(builtin_lookup(services[i].name, &k), 0);
		ck_assert_int_eq(k, services[i].kind);
		ck_assert_str_eq(builtin_name(k), services[i].name);
	}
	ck_assert_str_eq(builtin_name(BUILTIN_NONE), "none");
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		enum builtin_kind k = BUILTIN_TIME;

		ck_assert_msg(builtin_lookup(unknown[i], &k) == -1, "'%s' found", unknown[i]);
		ck_assert_int_eq(k, BUILTIN_TIME);	/* left alone */
	}
}
END_TEST

static const struct {
	unsigned line;
	const char *starts;
} chargen[] = {
	{ 0, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg" },
	{ 1, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefgh" },
	{ 23, "789:;<=>" },
	{ 94, "~ !\"#$%" },
	{ 95, " !\"#$%" },		/* the pattern repeats every 95 lines */
	{ 96, "!\"#$" },
	{ 190, " !\"" },
};

START_TEST(test_builtin_chargen_table)
{
	for (size_t i = 0; i < sizeof chargen / sizeof chargen[0]; i++) {
		char out[74];

		memset(out, 0, sizeof out);
		ck_assert_uint_eq(builtin_chargen_line(chargen[i].line, out), 74);
		ck_assert_msg(strncmp(out, chargen[i].starts, strlen(chargen[i].starts)) == 0,
			      "line %u: %.72s", chargen[i].line, out);
		ck_assert_int_eq(out[72], '\r');
		ck_assert_int_eq(out[73], '\n');
	}
}
END_TEST

/* Every line of a whole cycle: 72 printable characters, each one further
 * along the 95 than the last (wrapping '~' to ' '), each line one further
 * along than the line before. */
START_TEST(test_builtin_chargen_cycle)
{
	char prev[74], out[74];

	builtin_chargen_line(94, prev);
	for (unsigned l = 0; l < 95; l++) {
		builtin_chargen_line(l, out);
		for (int c = 0; c < 72; c++) {
			ck_assert_msg(out[c] >= ' ' && out[c] <= '~', "line %u col %d", l, c);
			if (c > 0)
				ck_assert_int_eq(out[c], out[c - 1] == '~' ? ' ' : out[c - 1] + 1);
		}
		ck_assert_int_eq(out[0], prev[0] == '~' ? ' ' : prev[0] + 1);
		ck_assert_mem_eq(out, prev + 1, 71);
		memcpy(prev, out, sizeof prev);
	}
}
END_TEST

static const struct {
	time_t now;
	uint32_t want;
} times[] = {
	{ 0, 2208988800u },
	{ 1, 2208988801u },
	{ 1700000000, (uint32_t)(1700000000 + 2208988800ULL) },
	{ 2085978495, 4294967295u },	/* 2036-02-07 06:28:15: the last second */
	{ 2085978496, 0 },		/* and then it wraps */
	{ -2208988800LL, 0 },		/* 1900-01-01 itself */
};

START_TEST(test_builtin_time_value)
{
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
		ck_assert_msg(builtin_time_value(times[i].now) == times[i].want,
			      "time %lld: got %u", (long long)times[i].now,
			      builtin_time_value(times[i].now));
}
END_TEST

Suite *builtin_suite(void)
{
	Suite *s = suite_create("builtin");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_builtin_dgram_reply);
	tcase_add_test(tc, test_builtin_names);
	tcase_add_test(tc, test_builtin_chargen_table);
	tcase_add_test(tc, test_builtin_chargen_cycle);
	tcase_add_test(tc, test_builtin_time_value);
	suite_add_tcase(s, tc);
	return s;
}
