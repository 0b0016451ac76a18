/*
 * fuzz_proxy.c - libFuzzer target for src/proxy.c (needs only that file).
 *
 * The daemon feeds proxy_parse a growing prefix of a connection's bytes
 * and acts on its first answer other than NEED_MORE, so that first answer
 * must be the one the whole input gives: every prefix is parsed in
 * growing order (each from a heap copy of exactly its length, so reading
 * past it trips ASan) and the run aborts if a decision comes and then
 * changes, or differs from the whole input's.  Also checked: DONE lies
 * within the input and PROXY_MAX, NEED_MORE only below PROXY_MAX, v1 is
 * decided within PROXY_V1_MAX, and a refusal always says why.
 *
 * A header that is DONE also goes through proxy_env, the TLVs as PROXY_*
 * variables: into a full conn_info-sized buffer (nothing may be left out
 * for want of room there) and into one cut short by the data (never a
 * byte past it); each string is PROXY_NAME=value with a printable,
 * non-empty value, each name once, and the count of values left out
 * agrees with whether one is named.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src -I BUILD \
 *       tests/fuzz/fuzz_proxy.c src/proxy.c -o fuzz_proxy
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const uint8_t *data, size_t k, struct proxy_header *h)
{
	uint8_t *p = malloc(k ? k : 1);
	int r;

	if (!p)
		abort();
	if (k)
		memcpy(p, data, k);
	r = proxy_parse(p, k, h);
	free(p);
	return r;
}

static size_t addr_size(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return sizeof(struct sockaddr_in);
	if (ss->ss_family == AF_INET6)
		return sizeof(struct sockaddr_in6);
	abort();		/* has_addr promises one of the two */
}

static void check_same(int ra, const struct proxy_header *a, int rb,
		       const struct proxy_header *b)
{
	if (ra != rb || a->version != b->version)
		abort();
	if (ra == PROXY_INVALID && strcmp(a->why, b->why) != 0)
		abort();
	if (ra != PROXY_DONE)
		return;
	if (a->len != b->len || a->has_addr != b->has_addr)
		abort();
	if (a->local != b->local || a->has_ssl != b->has_ssl ||
	    a->ssl_client != b->ssl_client || a->ssl_verify != b->ssl_verify ||
	    memcmp(a->tlv, b->tlv, sizeof a->tlv) != 0)
		abort();
	if (a->has_addr && (memcmp(&a->src, &b->src, addr_size(&a->src)) != 0 ||
			    memcmp(&a->dst, &b->dst, addr_size(&a->dst)) != 0))
		abort();
}

static void check_invariants(int r, const struct proxy_header *h, size_t size)
{
	switch (r) {
	case PROXY_DONE:
		if (h->len == 0 || h->len > size || h->len > PROXY_MAX)
			abort();
		if (h->version != 1 && h->version != 2)
			abort();
		if (h->version == 1 && h->len > PROXY_V1_MAX)
			abort();
		if (h->has_addr && (h->src.ss_family != h->dst.ss_family ||
				    addr_size(&h->src) == 0))
			abort();
		break;
	case PROXY_NEED_MORE:
		if (size >= PROXY_MAX || (h->version == 1 && size >= PROXY_V1_MAX))
			abort();
		break;
	case PROXY_INVALID:
		if (!h->why || !*h->why)
			abort();
		break;
	default:
		abort();
	}
}

/* out[0..len): NUL-terminated PROXY_NAME=value strings, values printable
 * and non-empty, no name twice. */
static void check_env_strings(const char *out, size_t len)
{
	char seen[16][32];
	size_t nseen = 0;

	if (len && out[len - 1] != '\0')
		abort();
	for (size_t i = 0; i < len; i += strlen(out + i) + 1) {
		const char *s = out + i, *eq = strchr(s, '=');

		if (strncmp(s, "PROXY_", 6) != 0 || !eq || eq[1] == '\0' ||
		    (size_t)(eq - s) >= sizeof seen[0] || nseen == 16)
			abort();
		for (const char *c = s; c < eq; c++)
			if (!((*c >= 'A' && *c <= 'Z') || *c == '_'))
				abort();
		for (const char *c = eq + 1; *c; c++)
			if (*c < 0x20 || *c > 0x7e)
				abort();
		for (size_t k = 0; k < nseen; k++)
			if (strncmp(seen[k], s, (size_t)(eq - s)) == 0 &&
			    seen[k][eq - s] == '\0')
				abort();
		memcpy(seen[nseen], s, (size_t)(eq - s));
		seen[nseen++][eq - s] = '\0';
	}
}

static void check_env(const struct proxy_header *h, const uint8_t *data, size_t size)
{
	static char full[CONN_XENV_MAX], cut[CONN_XENV_MAX + 1];
	struct proxy_env_drop drop;
	size_t len, cap;

	len = proxy_env(h, data, full, sizeof full, &drop);
	if (len > sizeof full || (drop.n == 0) != (drop.name == NULL))
		abort();
	if (drop.name && (strcmp(drop.why, "no room left") == 0 ||
			  drop.off + drop.len > h->len))
		abort();
	check_env_strings(full, len);
	cap = size ? data[size - 1] * 4u % (len + 1) : 0;
	memset(cut, 0x5a, sizeof cut);
	if (proxy_env(h, data, cut, cap, &drop) > cap)
		abort();
	for (size_t i = cap; i < sizeof cut; i++)
		if (cut[i] != 0x5a)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header whole, h;
	int rw, r = PROXY_NEED_MORE;
	size_t k;

	rw = parse_copy(data, size, &whole);
	check_invariants(rw, &whole, size);
	if (rw == PROXY_DONE)
		check_env(&whole, data, size);
	/* Up to the first decision: NEED_MORE, then the whole input's answer. */
	for (k = 0; k <= size && r == PROXY_NEED_MORE; k++) {
		r = parse_copy(data, k, &h);
		check_invariants(r, &h, k);
	}
	if (r == PROXY_NEED_MORE)
		return 0;	/* only the whole input was left: nothing to compare */
	check_same(r, &h, rw, &whole);
	/* DONE is decided by its last byte, not before it. */
	if (r == PROXY_DONE && h.len != k - 1)
		abort();
	/* And it holds for longer prefixes: a few, spaced by the data. */
	for (size_t step = 1; k <= size; step = step * 2 + (data[k - 1] & 7), k += step) {
		r = parse_copy(data, k, &h);
		check_same(r, &h, rw, &whole);
	}
	return 0;
}
