/*
 * fuzz_addr.c - libFuzzer target for src/addr.c.
 *
 * Any bytes, cut at the first NUL, go to addr_parse (the -l argument) from
 * a heap copy of exactly that length.  It must not crash, and what it
 * accepts must be ready to use: the kind agrees with the socket address
 * (family, sslen, port in network order), nothing to bind for PORT and
 * HOST:PORT, a host name within its buffer, a unix path that fits
 * sun_path.  A bindable result is also turned into a struct peer and
 * formatted, as the daemon does for its "listening on" line.  A refusal
 * must come with a reason.  Build and run: tests/fuzz/run.sh.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz_addr: %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

static void check_inet(const struct addr_spec *a)
{
	if (a->kind == ADDR_IPV4) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

		CHECK(sin->sin_family == AF_INET && a->sslen == sizeof *sin);
		CHECK(ntohs(sin->sin_port) == a->port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

		CHECK(sin6->sin6_family == AF_INET6 && a->sslen == sizeof *sin6);
		CHECK(ntohs(sin6->sin6_port) == a->port);
	}
}

static void check_unix(const char *in, const struct addr_spec *a)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	bool dgram = strncmp(in, "unix-dgram:", 11) == 0;
	const char *path = in + (dgram ? 11 : 5);	/* after "unix:" */
	size_t n = strlen(path);

	CHECK(dgram || strncmp(in, "unix:", 5) == 0);
	CHECK(a->socktype == (dgram ? SOCK_DGRAM : SOCK_STREAM));
	CHECK(sun->sun_family == AF_UNIX && a->port == 0);
	CHECK(n > 0 && n < sizeof sun->sun_path);
	/* a file path keeps its NUL inside sun_path; abstract has none */
	CHECK(a->sslen == off + n + (path[0] == '@' ? 0 : 1));
	CHECK(a->sslen <= sizeof *sun);
	CHECK(memcmp(sun->sun_path + 1, path + 1, n - 1) == 0);
}

/* What the daemon does with a bound address: make a peer, print it. */
static void check_peer(const struct addr_spec *a)
{
	struct peer p;
	char buf[ADDR_STRLEN];
	int n;

	addr_peer_from(&p, (const struct sockaddr *)&a->ss, a->sslen);
	CHECK(p.family == AF_INET || p.family == AF_INET6 || p.family == AF_UNIX);
	if (p.family != AF_UNIX)
		CHECK(p.port == a->port && strlen(p.ip) < sizeof p.ip);
	CHECK(strlen(p.path) < sizeof p.path);
	n = addr_peer_format(&p, buf, sizeof buf);
	CHECK(n > 0);
	CHECK(strlen(buf) == ((size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1));
	(void)addr_is_wildcard((const struct sockaddr *)&a->ss);
}

static void check_good(const char *in, const struct addr_spec *a)
{
	/* udp: and unix-dgram: are datagrams, everything else a stream. */
	CHECK(a->socktype == (strncmp(in, "udp:", 4) == 0 ||
			      strncmp(in, "unix-dgram:", 11) == 0 ? SOCK_DGRAM : SOCK_STREAM));
	switch (a->kind) {
	case ADDR_ANY:
	case ADDR_HOST:
		CHECK(a->sslen == 0 && a->ss.ss_family == AF_UNSPEC);
		CHECK(strnlen(a->host, sizeof a->host) < sizeof a->host);
		CHECK((a->kind == ADDR_HOST) == (a->host[0] != '\0'));
		/* no colon: a host that looks like IPv6 must be bracketed */
		CHECK(strchr(a->host, ':') == NULL);
		return;
	case ADDR_IPV4:
	case ADDR_IPV6:
		check_inet(a);
		break;
	case ADDR_UNIX:
		check_unix(in, a);
		break;
	default:
		CHECK(!"unknown addr_kind");
	}
	check_peer(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = strnlen((const char *)data, size);
	char *s = malloc(n + 1);
	char err[160];
	struct addr_spec a;

	if (!s)
		abort();
	memcpy(s, data, n);
	s[n] = '\0';
	err[0] = '\0';
	if (addr_parse(s, &a, err, sizeof err) == 0)
		check_good(s, &a);
	else
		CHECK(err[0] != '\0' && strlen(err) < sizeof err);
	free(s);
	return 0;
}
