/*
 * fuzz_confline.c - libFuzzer target for src/confline.c.
 *
 * Any bytes, cut at the first NUL or newline (the reader hands over one
 * line), go to confline_parse from a heap copy of exactly that length.
 * Checked against the untouched original: a skipped or refused line is
 * left as it was (refusals with a reason); a pair's key is
 * [a-z][a-z0-9-]*, first on the line after blanks and followed by blanks
 * and the first '='; the value is the rest without its outer blanks (and a
 * final CR), non-empty.  The value then goes to confline_split_words with a
 * word limit taken from the input and an argv of exactly that size on the
 * heap: the count stays below the limit, argv ends with NULL, the words
 * lie in order inside the value, and they equal what a separate
 * copy-out splitter, written here from the core.h contract, makes of it.
 * Build and run: tests/fuzz/run.sh.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_confline: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static size_t skip_blanks(const char *s, size_t i, size_t end)
{
	while (i < end && blank(s[i]))
		i++;
	return i;
}

/* The reference: a straightforward copy into a separate buffer, one
 * word after another, '\0' between them.  Returns the count, or -1. */
static int ref_split(const char *v, char *out, int max)
{
	int n = 0;

	for (;;) {
		char q = 0;

		while (blank(*v))
			v++;
		if (!*v)
			return n;
		if (++n > max - 1)
			return -1;
		while (*v && (q || !blank(*v))) {
			char c = *v++;

			if (q == '\'') {
				if (c == '\'')
					q = 0;
				else
					*out++ = c;
			} else if (c == '\\') {
				if (!*v)
					return -1;
				*out++ = *v++;
			} else if (q == '"' && c == '"') {
				q = 0;
			} else if (!q && (c == '\'' || c == '"')) {
				q = c;
			} else {
				*out++ = c;
			}
		}
		if (q)
			return -1;
		*out++ = '\0';
	}
}

static void check_split(const char *value, int max)
{
	size_t len = strlen(value);
	char *v = malloc(len + 1), *ref = malloc(len + 1);
	char **argv = malloc((size_t)max * sizeof *argv);
	char err[128] = "";
	int n, rn;

	if (!v || !ref || !argv)
		abort();
	memcpy(v, value, len + 1);
	n = confline_split_words(v, argv, max, err, sizeof err);
	rn = ref_split(value, ref, max);
	CHECK(n == rn);
	if (n < 0) {
		CHECK(err[0] != '\0');
	} else {
		const char *r = ref, *prev_end = v;

		CHECK(n < max && argv[n] == NULL);
		for (int i = 0; i < n; i++) {
			size_t wl = strlen(argv[i]);

			CHECK(argv[i] >= prev_end && argv[i] + wl < v + len + 1);
			CHECK(strcmp(argv[i], r) == 0);
			prev_end = argv[i] + wl + 1;
			r += wl + 1;
		}
	}
	free(argv);
	free(ref);
	free(v);
}

static void check_pair(const char *orig, const char *line, size_t len,
		       const struct conf_pair *p)
{
	size_t k = (size_t)(p->key - line), v = (size_t)(p->value - line);
	size_t kl = strlen(p->key), vl = strlen(p->value), i, end = len;

	CHECK(p->key >= line && k < len && p->value > p->key && v < len);
	CHECK(p->key[0] >= 'a' && p->key[0] <= 'z');
	CHECK(strspn(p->key, "abcdefghijklmnopqrstuvwxyz0123456789-") == kl);
	CHECK(vl > 0 && !blank(p->value[0]) && !blank(p->value[vl - 1]));
	CHECK(memcmp(orig + k, p->key, kl) == 0 && memcmp(orig + v, p->value, vl) == 0);
	/* blanks, KEY, blanks, '=', blanks, VALUE, blanks, [CR] */
	CHECK(skip_blanks(orig, 0, len) == k);
	i = skip_blanks(orig, k + kl, len);
	CHECK(i < len && orig[i] == '=');
	CHECK(skip_blanks(orig, i + 1, len) == v);
	if (end > 0 && orig[end - 1] == '\r')
		end--;
	CHECK(skip_blanks(orig, v + vl, len) == end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len = strnlen((const char *)data, size);
	char *line, *orig;
	char err[128] = "";
	struct conf_pair p = { NULL, NULL };
	int kind;

	for (size_t i = 0; i < len; i++)
		if (data[i] == '\n')
			len = i;
	line = malloc(len + 1);
	orig = malloc(len + 1);
	if (!line || !orig)
		abort();
	memcpy(line, data, len);
	line[len] = '\0';
	memcpy(orig, line, len + 1);
	kind = confline_parse(line, &p, err, sizeof err);
	CHECK(kind == CONF_ERROR || kind == CONF_SKIP || kind == CONF_PAIR);
	if (kind == CONF_PAIR) {
		check_pair(orig, line, len, &p);
		check_split(p.value, 1 + (int)(size % 17));
	} else {
		CHECK(memcmp(line, orig, len + 1) == 0 && p.key == NULL);
		CHECK(kind == CONF_SKIP || err[0] != '\0');
		if (kind == CONF_SKIP) {	/* blank, CR, or a comment */
			size_t i = skip_blanks(orig, 0, len);

			CHECK(i == len || orig[i] == '#' || (orig[i] == '\r' && i == len - 1));
		}
	}
	free(orig);
	free(line);
	return 0;
}
