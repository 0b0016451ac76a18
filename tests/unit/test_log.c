/* test_log.c - unit tests of src/log.c's log_escape: printable ASCII
 * passes, everything else and the backslash become \xHH, and a short
 * buffer is never overrun, always NUL-terminated and never ends in half an
 * escape; the return value is the length written. */
#include "config.h"

#include <check.h>
#include <string.h>

#include "core.h"
#include "suites.h"

/* src with an explicit length, so NUL bytes can be part of the input. */
#define S(lit) lit, (sizeof lit - 1)

static const struct {
	const char *src;
	size_t srclen;
	size_t dstlen;
	const char *want;
} escapes[] = {
	{ S("hello, world"), 64, "hello, world" },
	{ S(" ~!\"#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}"), 64,
	  " ~!\"#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}" },
	{ S(""), 64, "" },
	{ S("\n"), 64, "\\x0a" },
	{ S("\r\n"), 64, "\\x0d\\x0a" },
	{ S("\t"), 64, "\\x09" },
	{ S("\\"), 64, "\\x5c" },
	{ S("a\\x41"), 64, "a\\x5cx41" },
	{ S("\x7f"), 64, "\\x7f" },
	{ S("\xff"), 64, "\\xff" },
	{ S("\x80\x1f"), 64, "\\x80\\x1f" },
	{ S("a\0b"), 64, "a\\x00b" },
	{ S("\x1b[31mred"), 64, "\\x1b[31mred" },
	{ S("GET / HTTP/1.0\r\n"), 64, "GET / HTTP/1.0\\x0d\\x0a" },
	/* truncation: whole characters and whole escapes only */
	{ S("abc"), 1, "" },
	{ S("abc"), 3, "ab" },
	{ S("abc"), 4, "abc" },
	{ S("\n"), 4, "" },
	{ S("\n"), 5, "\\x0a" },
	{ S("ab\ncd"), 4, "ab" },
	{ S("ab\ncd"), 6, "ab" },
	{ S("ab\ncd"), 7, "ab\\x0a" },
	{ S("ab\ncd"), 8, "ab\\x0ac" },
	{ S("\n\n\n"), 12, "\\x0a\\x0a" },
	{ S("\n\n\n"), 13, "\\x0a\\x0a\\x0a" },
};

START_TEST(test_log_escape_table)
{
	for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
		char dst[80];
		size_t n;

		memset(dst, '#', sizeof dst);
		n = log_escape(dst, escapes[i].dstlen, escapes[i].src, escapes[i].srclen);
		ck_assert_msg(strcmp(dst, escapes[i].want) == 0, "row %zu: got \"%s\"", i, dst);
		ck_assert_uint_eq(n, strlen(escapes[i].want));
		ck_assert_msg(dst[escapes[i].dstlen] == '#', "row %zu: wrote past dstlen", i);
	}
}
END_TEST

START_TEST(test_log_escape_zero)
{
	char dst[4] = "###";

	ck_assert_uint_eq(log_escape(dst, 0, "abc", 3), 0);
	ck_assert_str_eq(dst, "###");	/* not even a NUL */
}
END_TEST

/* Every byte value, alone: printable ones stay, the rest are \xHH. */
START_TEST(test_log_escape_each_byte)
{
	for (unsigned c = 0; c < 256; c++) {
		unsigned char b = (unsigned char)c;
		char dst[8], want[8];
		size_t n = log_escape(dst, sizeof dst, &b, 1);

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			want[0] = (char)c;
			want[1] = '\0';
		} else {
			static const char hex[] = "0123456789abcdef";

			memcpy(want, "\\x", 2);
			want[2] = hex[c >> 4];
			want[3] = hex[c & 15];
			want[4] = '\0';
		}
		ck_assert_msg(strcmp(dst, want) == 0, "byte 0x%02x: got \"%s\"", c, dst);
		ck_assert_uint_eq(n, strlen(want));
	}
}
END_TEST

/* In escaped text every backslash starts a 4-byte \xHH token. */
static bool at_token_boundary(const char *full, size_t n)
{
	size_t i = 0;

	while (i < n)
		i += full[i] == '\\' ? 4 : 1;
	return i == n;
}

/* Every dstlen from 1 up: the output is the longest prefix of the full
 * escape that ends on a token boundary and fits, and nothing past dstlen is
 * touched. */
START_TEST(test_log_escape_every_length)
{
	static const unsigned char src[] = "ok\n\\\x01z\xff\x7f!  \x1b[0m";
	char full[128], dst[128];
	size_t fulllen = log_escape(full, sizeof full, src, sizeof src - 1);

	ck_assert_uint_eq(fulllen, strlen(full));
	ck_assert_str_eq(full, "ok\\x0a\\x5c\\x01z\\xff\\x7f!  \\x1b[0m");
	for (size_t len = 1; len <= fulllen + 2; len++) {
		size_t n, next;

		memset(dst, '#', sizeof dst);
		n = log_escape(dst, len, src, sizeof src - 1);
		ck_assert_uint_eq(n, strlen(dst));
		ck_assert_uint_lt(n, len);
		ck_assert_int_eq(dst[len], '#');
		ck_assert_msg(strncmp(dst, full, n) == 0, "len %zu: not a prefix", len);
		ck_assert_msg(at_token_boundary(full, n), "len %zu: half an escape", len);
		/* the next token would not have fitted */
		next = n == fulllen ? 0 : full[n] == '\\' ? 4 : 1;
		ck_assert_msg(n == fulllen || n + next >= len,
			      "len %zu: stopped early at %zu", len, n);
	}
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_log_escape_table);
	tcase_add_test(tc, test_log_escape_zero);
	tcase_add_test(tc, test_log_escape_each_byte);
	tcase_add_test(tc, test_log_escape_every_length);
	suite_add_tcase(s, tc);
	return s;
}
