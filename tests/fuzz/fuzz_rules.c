/*
 * fuzz_rules.c - libFuzzer target for src/rules.c.
 *
 * Any bytes are a rules file, handed over from a heap copy of exactly
 * that length (reading past the end trips ASan).  A refusal must say
 * "LINE: reason" with a line the file has.  Lines are independent, so a
 * refused file's named line is the first that is refused alone, and in a
 * parsed file every line parses alone.  For a parsed file (of at most 64
 * lines) the lines alone are the reference matcher: for peers taken from
 * the rules' own networks (both ends of each, a range's last address,
 * one bit outside) and a few fixed ones, the file's answer must be the
 * most specific of the lines that match alone (an address's longest
 * prefix; a unix uid, then gid; then the default), the first such line
 * on a tie, and NULL when none does.  A rule's fields must agree with
 * allow/deny.  No leak, no crash.  Build and run: tests/fuzz/run.sh.
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
			fprintf(stderr, "fuzz_rules: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

#define MAX_LINES 64
#define MAX_PEERS (3 * MAX_LINES + 3)

struct line {
	const char *s;
	size_t n;
	struct rules *alone;	/* the line as a file of its own */
};

struct upeer {
	struct peer p;
	uint32_t gid;
};

static struct rules *parse_copy(const void *data, size_t size, char *err, size_t errlen)
{
	char *copy = malloc(size ? size : 1);
	struct rules *r;

	CHECK(copy != NULL);
	memcpy(copy, data, size);
	err[0] = '\0';
	r = rules_parse(copy, size, err, errlen);
	free(copy);
	return r;
}

/* Higher wins; -1 the default. */
static int rank(const struct rule *r, const struct peer *p)
{
	if (r->net.family == AF_UNSPEC)
		return -1;
	if (p->family == AF_UNIX)
		return r->net.prefix == CIDR_UID ? 1 : 0;
	return (int)r->net.prefix;
}

static void check_fields(const struct rule *r)
{
	if (r->deny) {
		CHECK(!r->argv && !r->max_per_source && !r->rate_n);
	} else {
		CHECK(!r->msg);
		if (r->argv)
			CHECK(r->argv[0] != NULL);
	}
	if (r->msg)
		CHECK(r->msg_len >= 1 && r->msg_len <= 512);
	CHECK((r->rate_n == 0) == (r->rate_secs == 0));
	for (unsigned i = 0; i < r->n_vars; i++)
		CHECK(r->vars[i].name[0] != '\0' && !strchr(r->vars[i].name, '='));
	CHECK(r->line >= 1);
}

/* Peers inside (both ends) and just outside a rule's network. */
static unsigned peers_of(const struct rule *r, struct upeer *out)
{
	unsigned bits = r->net.family == AF_INET ? 32 : 128, n = 0;
	struct upeer u;

	memset(&u, 0, sizeof u);
	if (r->net.family == AF_UNIX) {
		u.p.family = AF_UNIX;
		memcpy(u.p.raw, r->net.addr, 4);
		memcpy(&u.gid, r->net.addr, 4);
		out[n++] = u;
		u.gid++;
		out[n++] = u;
		return n;
	}
	if (r->net.family != AF_INET && r->net.family != AF_INET6)
		return 0;
	u.p.family = r->net.family;
	memcpy(u.p.raw, r->net.addr, 16);
	out[n++] = u;
	for (unsigned i = r->net.prefix; i < bits; i++)
		u.p.raw[i / 8] |= (uint8_t)(0x80 >> (i % 8));
	if (r->range_last >= 0)
		u.p.raw[r->net.prefix / 8 - 1] = (uint8_t)r->range_last;
	out[n++] = u;
	if (r->net.prefix > 0) {
		unsigned i = r->net.prefix - 1;

		u.p.raw[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
		out[n++] = u;
	}
	return n;
}

static void check_against_lines(const struct rules *all, struct line *lines, unsigned nl,
				const struct upeer *peers, unsigned np)
{
	for (unsigned k = 0; k < np; k++) {
		const struct rule *got = rules_match(all, &peers[k].p, peers[k].gid);
		int best = -2;
		unsigned best_line = 0;

		for (unsigned i = 0; i < nl; i++) {
			const struct rule *m = rules_match(lines[i].alone, &peers[k].p,
							   peers[k].gid);

			if (m && rank(m, &peers[k].p) > best) {
				best = rank(m, &peers[k].p);
				best_line = i + 1;
			}
		}
		if (!best_line) {
			CHECK(got == NULL);
			continue;
		}
		CHECK(got != NULL && got->line == best_line);
	}
}

/* The first MAX_LINES lines kept; all are counted. */
static unsigned split_lines(const uint8_t *data, size_t size, struct line *lines)
{
	unsigned nl = 0;

	for (size_t at = 0; at < size;) {
		const uint8_t *nlp = memchr(data + at, '\n', size - at);
		size_t n = nlp ? (size_t)(nlp - (data + at)) : size - at;

		if (nl < MAX_LINES) {
			lines[nl].s = (const char *)data + at;
			lines[nl].n = n;
			lines[nl].alone = NULL;
		}
		nl++;
		at += n + 1;
	}
	return nl;
}

static void fixed_peers(struct upeer *peers, unsigned *np)
{
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct upeer u;

	memset(&u, 0, sizeof u);
	u.p.family = AF_INET;
	memcpy(u.p.raw, "\x7f\0\0\1", 4);
	peers[(*np)++] = u;
	u.p.family = AF_INET6;
	memcpy(u.p.raw, v6, 16);
	peers[(*np)++] = u;
	memset(&u, 0, sizeof u);
	u.p.family = AF_UNIX;
	peers[(*np)++] = u;
}

/* A refused file: the line it names is the first refused alone. */
static void check_refusal(const char *err, const struct line *lines, unsigned nl,
			  size_t size)
{
	unsigned long at = strtoul(err, NULL, 10);
	char err1[256];

	CHECK(err[0] >= '1' && err[0] <= '9' && strstr(err, ": ") != NULL);
	CHECK(at >= 1 && (at <= nl || (size == 0 && at == 1)));
	if (at > MAX_LINES)
		return;
	for (unsigned i = 0; i < at; i++) {
		struct rules *r = parse_copy(lines[i].s, lines[i].n, err1, sizeof err1);

		CHECK((r == NULL) == (i + 1 == at));
		rules_free(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct line lines[MAX_LINES];
	struct upeer peers[MAX_PEERS];
	unsigned nl = split_lines(data, size, lines), np = 0;
	char err[256];
	struct rules *all = parse_copy(data, size, err, sizeof err);

	if (!all) {
		check_refusal(err, lines, nl, size);
		return 0;
	}
	CHECK(rules_count(all) <= nl && rules_at(all, rules_count(all)) == NULL);
	fixed_peers(peers, &np);
	for (size_t j = 0; j < rules_count(all); j++) {
		const struct rule *r = rules_at(all, j);

		CHECK(r->line <= nl && (j == 0 || r->line > rules_at(all, j - 1)->line));
		check_fields(r);
		if (np + 3 <= MAX_PEERS)
			np += peers_of(r, peers + np);
	}
	if (nl <= MAX_LINES) {
		char err1[256];

		for (unsigned i = 0; i < nl; i++) {
			lines[i].alone = parse_copy(lines[i].s, lines[i].n, err1, sizeof err1);
			CHECK(lines[i].alone != NULL && rules_count(lines[i].alone) <= 1);
		}
		check_against_lines(all, lines, nl, peers, np);
		for (unsigned i = 0; i < nl; i++)
			rules_free(lines[i].alone);
	}
	rules_free(all);
	return 0;
}
