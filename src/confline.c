/*
 * confline.c - one line of a --config file, and the words of an exec value.
 *
 * Pure: the caller reads the file and reports FILE:LINE; here a line is
 * only classified and cut in place.  Comments are whole lines only, so a
 * '#' inside a value (exec = sh -c 'echo #1') stays part of it.  Blanks are
 * space and tab; a CR before the end (a CRLF file) is not part of the value.
 * confline_parse writes nothing (not even into the line) unless it returns
 * CONF_PAIR, so a refused line can still be quoted in the error message.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "core.h"

static int set_err(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* The length of line without its end: "\n", "\r\n" or a lone "\r". */
static size_t content_len(const char *line)
{
	size_t n = strlen(line);

	if (n > 0 && line[n - 1] == '\n')
		n--;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	return n;
}

/* key is [k, k + n): letters first, so "-x" or "9x" cannot look like an
 * option or a number to whoever reads the file later. */
static int check_key(const char *k, size_t n, char *err, size_t errlen)
{
	if (n == 0)
		return set_err(err, errlen, "empty key");
	for (size_t i = 0; i < n; i++)
		if (!is_key_char(k[i]))
			return set_err(err, errlen, is_blank(k[i]) ?
				       "blank inside key" :
				       "bad character in key (keys are a-z, 0-9 and '-')");
	if (k[0] < 'a' || k[0] > 'z')
		return set_err(err, errlen, "key must start with a letter");
	return 0;
}

int confline_parse(char *line, struct conf_pair *out, char *err, size_t errlen)
{
	size_t end = content_len(line);
	size_t k = 0, kend, v, vend;
	const char *eq;

	while (k < end && is_blank(line[k]))
		k++;
	if (k == end || line[k] == '#')
		return CONF_SKIP;
	eq = memchr(line + k, '=', end - k);
	if (!eq) {
		set_err(err, errlen, "missing '=' (expected KEY = VALUE)");
		return CONF_ERROR;
	}
	kend = (size_t)(eq - line);
	while (kend > k && is_blank(line[kend - 1]))
		kend--;
	if (check_key(line + k, kend - k, err, errlen) < 0)
		return CONF_ERROR;
	v = (size_t)(eq - line) + 1;
	vend = end;
	while (v < vend && is_blank(line[v]))
		v++;
	while (vend > v && is_blank(line[vend - 1]))
		vend--;
	if (v == vend) {
		snprintf(err, errlen, "empty value for '%.*s'", (int)(kend - k), line + k);
		return CONF_ERROR;
	}
	line[kend] = '\0';
	line[vend] = '\0';
	out->key = line + k;
	out->value = line + v;
	return CONF_PAIR;
}

/* The words only ever shrink (quotes and backslashes drop out), so the
 * write position never passes the read position and the split can be
 * done over the value itself. */
int confline_split_words(char *value, char **argv, int max, char *err, size_t errlen)
{
	char *r = value, *w = value;
	int n = 0;

	if (max < 1)
		return set_err(err, errlen, "no room for words");
	for (;;) {
		char quote = 0;

		while (is_blank(*r))
			r++;
		if (*r == '\0')
			break;
		if (n == max - 1) {
			snprintf(err, errlen, "too many words (at most %d)", max - 1);
			return -1;
		}
		argv[n++] = w;
		/* One word: until a blank outside quotes, or the end. */
		for (; *r && (quote || !is_blank(*r)); r++) {
			if (quote != '\'' && *r == '\\') {
				if (r[1] == '\0')
					return set_err(err, errlen, "trailing backslash");
				*w++ = *++r;
			} else if (quote && *r == quote) {
				quote = 0;
			} else if (!quote && (*r == '\'' || *r == '"')) {
				quote = *r;
			} else {
				*w++ = *r;
			}
		}
		if (quote)
			return set_err(err, errlen, quote == '\'' ?
				       "unterminated ' quote" : "unterminated \" quote");
		/* Read and write may meet here: step past before the NUL lands. */
		if (*r)
			r++;
		*w++ = '\0';
	}
	argv[n] = NULL;
	return n;
}
