/*
 * cidr.c - networks for --allow, --deny and --proxy-from: parsing,
 * matching a peer, formatting.  Also unix:uid=N and unix:gid=N, the local
 * users --proxy-from can name for unix-socket peers (no network there).
 *
 * Pure: no I/O, errors returned as short text without the input (the
 * caller names the option and the value).  A struct cidr that leaves
 * cidr_parse is canonical: host bits below the prefix are zero and a
 * v4-mapped network of /96 or longer has become plain IPv4, so matching
 * is a prefix compare and formatting then parsing gives the same struct.
 * The out-parameter is written only on success.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

/* Longer than any inet_pton text ("ffff:...:255.255.255.255" is 45). */
#define CIDR_ADDR_MAX INET6_ADDRSTRLEN

static int set_err(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

static unsigned family_bits(int family)
{
	return family == AF_INET ? 32 : 128;
}

/* Decimal digits, no sign, no leading zero but "0" itself, at most max.
 * Three digits are enough for 128, so a long string never overflows. */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;
	size_t n = strspn(s, "0123456789");

	if (n == 0 || s[n] != '\0' || n > 3 || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Whether any bit at position >= prefix (counting from the most
 * significant bit of addr[0]) is set in the first nbits. */
static bool host_bits_set(const uint8_t *addr, unsigned prefix, unsigned nbits)
{
	unsigned i = prefix / 8;

	if (prefix % 8 && (addr[i++] & (0xffu >> (prefix % 8))))
		return true;
	for (; i < nbits / 8; i++)
		if (addr[i])
			return true;
	return false;
}

static void clear_host_bits(uint8_t *addr, unsigned prefix, unsigned nbits)
{
	unsigned i = prefix / 8;

	if (prefix % 8)
		addr[i++] &= (uint8_t)(0xff00u >> (prefix % 8));
	for (; i < nbits / 8; i++)
		addr[i] = 0;
}

/* The address half: which family it is decides the prefix range, so the
 * messages can say what was expected rather than just "invalid". */
static int parse_address(const char *a, struct cidr *c, char *err, size_t errlen)
{
	if (a[0] == '\0')
		return set_err(err, errlen, "missing address");
	if (strchr(a, '[') || strchr(a, ']'))
		return set_err(err, errlen, "an IPv6 network is written without brackets");
	if (strchr(a, '%'))
		return set_err(err, errlen, "a zone id (%IFACE) is not allowed in a network");
	if (strchr(a, ':')) {
		if (inet_pton(AF_INET6, a, c->addr) != 1)
			return set_err(err, errlen, "not a valid IPv6 address");
		c->family = AF_INET6;
		return 0;
	}
	if (a[strspn(a, "0123456789.")] != '\0')
		return set_err(err, errlen, "expected an IPv4 or IPv6 address or 'all'");
	if (inet_pton(AF_INET, a, c->addr) != 1)
		return set_err(err, errlen, "not a valid IPv4 address");
	c->family = AF_INET;
	return 0;
}

/* ::ffff:a.b.c.d/96+ names IPv4 hosts, and peers arrive un-mapped: keep
 * the IPv4 network so that cidr_match is a plain compare. */
static void unmap_v4(struct cidr *c)
{
	if (c->family != AF_INET6 || c->prefix < 96 ||
	    !IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)c->addr))
		return;
	memmove(c->addr, c->addr + 12, 4);
	memset(c->addr + 4, 0, 12);
	c->family = AF_INET;
	c->prefix -= 96;
}

/* unix:uid=N or unix:gid=N, N decimal below 2^32 - 1 ((uid_t)-1 is "no
 * id" to the kernel).  s is past "unix:". */
static int parse_unix(const char *s, struct cidr *out, char *err, size_t errlen)
{
	struct cidr c;
	unsigned long long v = 0;
	uint32_t id;
	size_t n;

	memset(&c, 0, sizeof c);
	c.family = AF_UNIX;
	if (strncmp(s, "uid=", 4) == 0)
		c.prefix = CIDR_UID;
	else if (strncmp(s, "gid=", 4) == 0)
		c.prefix = CIDR_GID;
	else
		return set_err(err, errlen, "a unix peer is named by uid=N or gid=N");
	s += 4;
	n = strspn(s, "0123456789");
	if (n == 0 || s[n] != '\0' || n > 10 || (n > 1 && s[0] == '0'))
		return set_err(err, errlen, "the id must be a decimal number");
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long long)(s[i] - '0');
	if (v >= 0xffffffffULL)
		return set_err(err, errlen, "the id must be below 4294967295");
	id = (uint32_t)v;
	memcpy(c.addr, &id, sizeof id);
	*out = c;
	return 0;
}

int cidr_parse(const char *s, struct cidr *out, char *err, size_t errlen)
{
	struct cidr c;
	char a[CIDR_ADDR_MAX];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	memset(&c, 0, sizeof c);
	if (strcmp(s, "all") == 0) {
		c.family = AF_UNSPEC;
		*out = c;
		return 0;
	}
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s + 5, out, err, errlen);
	if (s[0] == '\0')
		return set_err(err, errlen, "empty network");
	if (alen >= sizeof a)
		return set_err(err, errlen, "address too long");
	memcpy(a, s, alen);
	a[alen] = '\0';
	if (parse_address(a, &c, err, errlen) < 0)
		return -1;
	c.prefix = family_bits(c.family);
	if (slash && slash[1] == '\0')
		return set_err(err, errlen, "missing prefix after '/'");
	if (slash && parse_prefix(slash + 1, family_bits(c.family), &c.prefix) < 0)
		return set_err(err, errlen, c.family == AF_INET ?
			       "prefix must be a number from 0 to 32" :
			       "prefix must be a number from 0 to 128");
	if (host_bits_set(c.addr, c.prefix, family_bits(c.family))) {
		char net[CIDR_ADDR_MAX + 8];

		/* Suggest the network in the form it was written (mapped or not). */
		clear_host_bits(c.addr, c.prefix, family_bits(c.family));
		cidr_format(&c, net, sizeof net);
		snprintf(err, errlen, "host bits set (did you mean %s?)", net);
		return -1;
	}
	unmap_v4(&c);
	*out = c;
	return 0;
}

/* A unix peer has no address: only "all" covers it. */
bool cidr_match(const struct cidr *c, const struct peer *p)
{
	unsigned whole, rest;

	if (c->family == AF_UNSPEC)
		return true;
	if (c->family == AF_UNIX || p->family != c->family || c->prefix > family_bits(c->family))
		return false;
	whole = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(c->addr, p->raw, whole) != 0)
		return false;
	return rest == 0 ||
	       ((c->addr[whole] ^ p->raw[whole]) & (0xff00u >> rest) & 0xff) == 0;
}

/* A unix peer's credentials against unix:uid=N / unix:gid=N. */
bool cidr_match_cred(const struct cidr *c, uint32_t uid, uint32_t gid)
{
	uint32_t id;

	if (c->family != AF_UNIX)
		return false;
	memcpy(&id, c->addr, sizeof id);
	return id == (c->prefix == CIDR_UID ? uid : gid);
}

int cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (c->family == AF_UNSPEC)
		return snprintf(buf, len, "all");
	if (c->family == AF_UNIX) {
		uint32_t id;

		memcpy(&id, c->addr, sizeof id);
		return snprintf(buf, len, "unix:%cid=%u", c->prefix == CIDR_UID ? 'u' : 'g',
				(unsigned)id);
	}
	if ((c->family != AF_INET && c->family != AF_INET6) ||
	    !inet_ntop(c->family, c->addr, ip, sizeof ip))
		return snprintf(buf, len, "?");
	return snprintf(buf, len, "%s/%u", ip, c->prefix);
}
