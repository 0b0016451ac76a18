/*
 * fuzz_cidr.c - libFuzzer target for src/cidr.c.
 *
 * Any bytes, cut at the first NUL, go to cidr_parse from a heap copy of
 * exactly that length (reading past the end trips ASan).  A network it
 * accepts must be canonical, because the ACL compares structs and prints
 * them: family and prefix in range, no host bits, unused bytes zero, and
 * cidr_format then cidr_parse gives the identical struct.  cidr_match must
 * agree with the prefix: the network address itself and its last host
 * address match, the address with the last network bit flipped does not,
 * a peer of the other family does not, and a unix peer only matches "all".
 * unix:uid=N / unix:gid=N match credentials with that id and no peer.
 * A refusal must come with a reason.  Build and run: tests/fuzz/run.sh.
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
			fprintf(stderr, "fuzz_cidr: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static unsigned bits_of(int family)
{
	return family == AF_INET ? 32 : 128;
}

static bool bit(const uint8_t *a, unsigned i)
{
	return a[i / 8] & (0x80 >> (i % 8));
}

static void flip(uint8_t *a, unsigned i)
{
	a[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
}

static void check_canonical(const struct cidr *c)
{
	static const uint8_t zero[16];

	if (c->family == AF_UNSPEC) {
		CHECK(c->prefix == 0 && memcmp(c->addr, zero, 16) == 0);
		return;
	}
	if (c->family == AF_UNIX) {	/* unix:uid=N / unix:gid=N */
		uint32_t id;

		memcpy(&id, c->addr, sizeof id);
		CHECK(c->prefix == CIDR_UID || c->prefix == CIDR_GID);
		CHECK(id != 0xffffffffu && memcmp(c->addr + 4, zero, 12) == 0);
		return;
	}
	CHECK(c->family == AF_INET || c->family == AF_INET6);
	CHECK(c->prefix <= bits_of(c->family));
	for (unsigned i = c->prefix; i < 128; i++)
		CHECK(!bit(c->addr, i));
	/* v4-mapped /96+ must have been turned into IPv4 */
	if (c->family == AF_INET6 && c->prefix >= 96)
		CHECK(!IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)c->addr));
}

static void check_round_trip(const struct cidr *c)
{
	char buf[128], err[128] = "";
	struct cidr again;
	int n = cidr_format(c, buf, sizeof buf);

	CHECK(n > 0 && (size_t)n < sizeof buf && strlen(buf) == (size_t)n);
	CHECK(cidr_format(c, NULL, 0) == n);
	if (cidr_parse(buf, &again, err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_cidr: '%s' does not parse back: %s\n", buf, err);
		abort();
	}
	CHECK(memcmp(c, &again, sizeof again) == 0);
}

static void check_match(const struct cidr *c)
{
	struct peer p;

	memset(&p, 0, sizeof p);
	p.family = AF_UNIX;
	CHECK(cidr_match(c, &p) == (c->family == AF_UNSPEC));
	if (c->family == AF_UNIX) {	/* credentials only, never a peer */
		uint32_t id;

		memcpy(&id, c->addr, sizeof id);
		CHECK(cidr_match_cred(c, id, id) && !cidr_match_cred(c, id + 1, id + 1));
		p.family = AF_INET;
		CHECK(!cidr_match(c, &p));
		return;
	}
	CHECK(!cidr_match_cred(c, 0, 0));
	if (c->family == AF_UNSPEC) {
		p.family = AF_INET;
		CHECK(cidr_match(c, &p));
		p.family = AF_INET6;
		CHECK(cidr_match(c, &p));
		return;
	}
	p.family = c->family == AF_INET ? AF_INET6 : AF_INET;
	memcpy(p.raw, c->addr, 16);
	CHECK(!cidr_match(c, &p));
	p.family = c->family;
	CHECK(cidr_match(c, &p));
	if (c->prefix < bits_of(c->family)) {
		flip(p.raw, bits_of(c->family) - 1);
		CHECK(cidr_match(c, &p));
		flip(p.raw, bits_of(c->family) - 1);
	}
	if (c->prefix > 0) {
		flip(p.raw, c->prefix - 1);
		CHECK(!cidr_match(c, &p));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *s = malloc(n + 1);
	char err[128];
	struct cidr c;

	if (!s)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	err[0] = '\0';
	if (cidr_parse(s, &c, err, sizeof err) == 0) {
		check_canonical(&c);
		check_round_trip(&c);
		check_match(&c);
	} else {
		CHECK(err[0] != '\0' && strlen(err) < sizeof err);
	}
	free(s);
	return 0;
}
