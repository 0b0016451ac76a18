/* test_confline.c - unit tests of src/confline.c: which lines are skipped
 * (blank, whole-line comments), KEY = VALUE with blanks trimmed, CRLF and
 * '#' inside values, the lines refused with a reason (and left untouched),
 * and confline_split_words' shell-like quoting, its errors and its word limit. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core.h"
#include "suites.h"

/* key and value: what CONF_PAIR gives; NULL for CONF_SKIP. */
static const struct {
	const char *in;
	int kind;
	const char *key, *value;
} good[] = {
	{ "", CONF_SKIP, NULL, NULL },
	{ "   \t ", CONF_SKIP, NULL, NULL },
	{ "\r", CONF_SKIP, NULL, NULL },
	{ "\n", CONF_SKIP, NULL, NULL },
	{ "# a comment", CONF_SKIP, NULL, NULL },
	{ "\t  # indented = comment", CONF_SKIP, NULL, NULL },
	{ "#listen = 80", CONF_SKIP, NULL, NULL },
	{ "listen = [::]:7", CONF_PAIR, "listen", "[::]:7" },
	{ "listen=80", CONF_PAIR, "listen", "80" },
	{ "  listen\t=\t80  \t", CONF_PAIR, "listen", "80" },
	{ "max-conns = 50", CONF_PAIR, "max-conns", "50" },
	{ "nodelay = yes", CONF_PAIR, "nodelay", "yes" },
	{ "user = nobody\r", CONF_PAIR, "user", "nobody" },
	{ "user = nobody\r\n", CONF_PAIR, "user", "nobody" },
	{ "user = nobody \r\n", CONF_PAIR, "user", "nobody" },
	{ "user = nobody\n", CONF_PAIR, "user", "nobody" },
	{ "exec = sh -c 'echo #1'", CONF_PAIR, "exec", "sh -c 'echo #1'" },
	{ "exec = /bin/cat # not a comment", CONF_PAIR, "exec", "/bin/cat # not a comment" },
	{ "allow = 10.0.0.0/8", CONF_PAIR, "allow", "10.0.0.0/8" },
	{ "env = A=B", CONF_PAIR, "env", "A=B" },
	{ "k==", CONF_PAIR, "k", "=" },
	{ "a1-b2 = x  y", CONF_PAIR, "a1-b2", "x  y" },
	{ "a- = \"quoted \\\"\"", CONF_PAIR, "a-", "\"quoted \\\"\"" },
	{ "x = \r\r", CONF_PAIR, "x", "\r" },	/* only the last CR is the line end */
	{ "x = \xc3\xa9t\xc3\xa9", CONF_PAIR, "x", "\xc3\xa9t\xc3\xa9" },
};

static const struct {
	const char *in;
	const char *why;
} bad[] = {
	{ "listen", "missing '='" },
	{ "listen 80", "missing '='" },
	{ "listen: 80", "missing '='" },
	{ "= 80", "empty key" },
	{ "  \t= 80", "empty key" },
	{ "listen =", "empty value for 'listen'" },
	{ "listen =   \t", "empty value for 'listen'" },
	{ "listen = \r\n", "empty value for 'listen'" },
	{ "Listen = 80", "bad character in key" },
	{ "max_conns = 5", "bad character in key" },
	{ "max.conns = 5", "bad character in key" },
	{ "\"listen\" = 80", "bad character in key" },
	{ "list\xc3\xa9n = 80", "bad character in key" },
	{ "a#b = c", "bad character in key" },
	{ "max conns = 5", "blank inside key" },
	{ "1listen = 80", "start with a letter" },
	{ "-listen = 80", "start with a letter" },
	{ "listen\r= 80", "bad character in key" },
	{ "\v = 1", "bad character in key" },
};

START_TEST(test_confline_good)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		char line[256], err[128] = "";
		struct conf_pair p = { NULL, NULL };
		int kind;

		snprintf(line, sizeof line, "%s", good[i].in);
		kind = confline_parse(line, &p, err, sizeof err);
		ck_assert_msg(kind == good[i].kind, "'%s': kind %d (%s)", good[i].in, kind, err);
		if (kind != CONF_PAIR) {
			ck_assert_ptr_null(p.key);	/* out only written for a pair */
			ck_assert_str_eq(line, good[i].in);
			continue;
		}
		ck_assert_str_eq(p.key, good[i].key);
		ck_assert_str_eq(p.value, good[i].value);
		/* both point into the line */
		ck_assert(p.key >= line && p.key < line + sizeof line);
		ck_assert(p.value > p.key && p.value < line + sizeof line);
	}
}
END_TEST

START_TEST(test_confline_bad)
{
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char line[256], err[128] = "";
		struct conf_pair p = { NULL, NULL };

		snprintf(line, sizeof line, "%s", bad[i].in);
		ck_assert_msg(confline_parse(line, &p, err, sizeof err) == CONF_ERROR,
			      "'%s' accepted", bad[i].in);
		ck_assert_msg(strstr(err, bad[i].why) != NULL, "'%s': '%s' lacks '%s'",
			      bad[i].in, err, bad[i].why);
		/* a refused line is left whole, for the caller's message */
		ck_assert_str_eq(line, bad[i].in);
		ck_assert_ptr_null(p.key);
	}
}
END_TEST

START_TEST(test_confline_long)
{
	static char line[70000];
	struct conf_pair p;
	char err[64] = "";

	memset(line, 'k', sizeof line - 1);
	line[sizeof line - 1] = '\0';
	ck_assert_int_eq(confline_parse(line, &p, err, sizeof err), CONF_ERROR);
	ck_assert_str_eq(err, "missing '=' (expected KEY = VALUE)");
	line[sizeof line - 2] = '=';	/* a key of 69998 letters, no value */
	ck_assert_int_eq(confline_parse(line, &p, err, sizeof err), CONF_ERROR);
	ck_assert_msg(strncmp(err, "empty value for 'kkk", 20) == 0, "%s", err);
	ck_assert_uint_eq(strlen(err), sizeof err - 1);	/* cut, not overrun */
	line[1] = '=';
	ck_assert_int_eq(confline_parse(line, &p, err, sizeof err), CONF_PAIR);
	ck_assert_str_eq(p.key, "k");
	ck_assert_uint_eq(strlen(p.value), sizeof line - 3);
}
END_TEST

#define MAXW 8

/* words: the expected argv, joined by '|' ("" for none). */
static const struct {
	const char *in;
	int n;
	const char *words;
} splits[] = {
	{ "", 0, "" },
	{ " \t ", 0, "" },
	{ "/bin/cat", 1, "/bin/cat" },
	{ "  a   b\tc  ", 3, "a|b|c" },
	{ "sh -c 'echo #1'", 3, "sh|-c|echo #1" },
	{ "'a b' \"c d\"", 2, "a b|c d" },
	{ "''", 1, "" },
	{ "a '' b", 3, "a||b" },
	{ "\"\"", 1, "" },
	{ "x'y'z\"w\"", 1, "xyzw" },
	{ "'a\\b'", 1, "a\\b" },	/* single quotes: backslash literal */
	{ "'a\"b'", 1, "a\"b" },
	{ "\"a'b\"", 1, "a'b" },
	{ "\"a\\\"b\"", 1, "a\"b" },
	{ "\"a\\\\b\"", 1, "a\\b" },
	{ "\"a\\nb\"", 1, "anb" },	/* no C escapes: \n is a literal n */
	{ "a\\ b", 1, "a b" },
	{ "a\\'b", 1, "a'b" },
	{ "\\\\", 1, "\\" },
	{ "a\\\tb", 1, "a\tb" },
	{ "$HOME *", 2, "$HOME|*" },	/* no expansions */
	{ "a=b c", 2, "a=b|c" },
	{ "1 2 3 4 5 6 7", 7, "1|2|3|4|5|6|7" },
};

static const struct {
	const char *in;
	const char *why;
} split_bad[] = {
	{ "'abc", "unterminated ' quote" },
	{ "a 'b", "unterminated ' quote" },
	{ "\"abc", "unterminated \" quote" },
	{ "\"a\\\"", "unterminated \" quote" },
	{ "'a' 'b", "unterminated ' quote" },
	{ "abc\\", "trailing backslash" },
	{ "\"abc\\", "trailing backslash" },
	{ "1 2 3 4 5 6 7 8", "too many words (at most 7)" },
	{ "1 2 3 4 5 6 7 '' ", "too many words" },
};

static void join(char *const *argv, int n, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%s", i ? "|" : "", argv[i]);
}

START_TEST(test_confline_split)
{
	for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
		char v[128], err[128] = "", got[256];
		char *argv[MAXW];
		int n;

		snprintf(v, sizeof v, "%s", splits[i].in);
		n = confline_split_words(v, argv, MAXW, err, sizeof err);
		ck_assert_msg(n == splits[i].n, "'%s': %d words (%s)", splits[i].in, n, err);
		ck_assert_ptr_null(argv[n]);
		join(argv, n, got, sizeof got);
		ck_assert_str_eq(got, splits[i].words);
		for (int w = 0; w < n; w++)	/* in place, over the value */
			ck_assert(argv[w] >= v && argv[w] < v + sizeof v);
	}
}
END_TEST

START_TEST(test_confline_split_bad)
{
	for (size_t i = 0; i < sizeof split_bad / sizeof split_bad[0]; i++) {
		char v[128], err[128] = "";
		char *argv[MAXW];

		snprintf(v, sizeof v, "%s", split_bad[i].in);
		ck_assert_msg(confline_split_words(v, argv, MAXW, err, sizeof err) == -1,
			      "'%s' accepted", split_bad[i].in);
		ck_assert_msg(strstr(err, split_bad[i].why) != NULL, "'%s': '%s' lacks '%s'",
			      split_bad[i].in, err, split_bad[i].why);
	}
}
END_TEST

START_TEST(test_confline_split_limits)
{
	char v[16], err[128] = "";
	char *argv[2];

	snprintf(v, sizeof v, "a");
	ck_assert_int_eq(confline_split_words(v, argv, 1, err, sizeof err), -1);
	ck_assert_str_eq(err, "too many words (at most 0)");
	snprintf(v, sizeof v, "  ");
	ck_assert_int_eq(confline_split_words(v, argv, 1, err, sizeof err), 0);
	ck_assert_ptr_null(argv[0]);
	snprintf(v, sizeof v, "a");
	ck_assert_int_eq(confline_split_words(v, argv, 0, err, sizeof err), -1);
	snprintf(v, sizeof v, "a");
	ck_assert_int_eq(confline_split_words(v, argv, 2, err, sizeof err), 1);
	ck_assert_str_eq(argv[0], "a");
	ck_assert_ptr_null(argv[1]);
}
END_TEST

/* The two together, as the config reader uses them. */
START_TEST(test_confline_exec)
{
	char line[] = "  exec =  sh -c 'echo \"#1\"; exit 3' \r\n";
	struct conf_pair p;
	char err[128] = "";
	char *argv[MAXW];

	ck_assert_int_eq(confline_parse(line, &p, err, sizeof err), CONF_PAIR);
	ck_assert_str_eq(p.key, "exec");
	ck_assert_int_eq(confline_split_words(p.value, argv, MAXW, err, sizeof err), 3);
	ck_assert_str_eq(argv[0], "sh");
	ck_assert_str_eq(argv[1], "-c");
	ck_assert_str_eq(argv[2], "echo \"#1\"; exit 3");
}
END_TEST

Suite *confline_suite(void)
{
	Suite *s = suite_create("confline");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_confline_good);
	tcase_add_test(tc, test_confline_bad);
	tcase_add_test(tc, test_confline_long);
	tcase_add_test(tc, test_confline_split);
	tcase_add_test(tc, test_confline_split_bad);
	tcase_add_test(tc, test_confline_split_limits);
	tcase_add_test(tc, test_confline_exec);
	suite_add_tcase(s, tc);
	return s;
}
