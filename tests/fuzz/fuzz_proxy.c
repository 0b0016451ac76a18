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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header whole, h;
	int rw, r = PROXY_NEED_MORE;
	size_t k;

	rw = parse_copy(data, size, &whole);
	check_invariants(rw, &whole, size);
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
