/*
 * addr.c - the one file that knows IPv4 from IPv6.
 *
 * Parses the ADDR forms of -l (PORT, IPV4:PORT, [IPV6]:PORT, HOST:PORT,
 * each with udp: before it for datagrams; unix:PATH, unix-dgram:PATH) strictly and without touching the network, and turns kernel
 * socket addresses into the struct peer that handlers and logs see.  An IPv4
 * client on a dual-stack socket arrives as ::ffff:a.b.c.d; it leaves here as
 * plain IPv4 so that environment, ACLs and per-source counts agree.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "core.h"

static int set_err(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long long v;

	if (options_parse_uint(s, 65535, &v) < 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* inet_pton already refuses octal, hex and short forms ("10.1"); the rule
 * here is only that the string is made of digits and dots at all. */
int addr_parse_ipv4(const char *s, struct in_addr *out)
{
	return inet_pton(AF_INET, s, out) == 1 ? 0 : -1;
}

static bool digits_and_dots(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && *s != '.')
			return false;
	return true;
}

static bool valid_hostname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' && *s != '_')
			return false;
	return true;
}

static int parse_unix(const char *path, struct addr_spec *out, char *err, size_t errlen)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
	size_t n = strlen(path);

	if (n == 0)
		return set_err(err, errlen, "empty unix socket path");
	if (n >= sizeof sun->sun_path)
		return set_err(err, errlen, "unix socket path too long");
	out->kind = ADDR_UNIX;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@')	/* abstract namespace: no file on disk */
		sun->sun_path[0] = '\0';
	out->sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
				 (path[0] == '@' ? 0 : 1));
	return 0;
}

static int parse_ipv6(const char *host, struct addr_spec *out, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_INET6,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res = NULL;

	/* getaddrinfo rather than inet_pton: it also takes a %scope suffix. */
	if (getaddrinfo(host, "0", &hints, &res) != 0 || !res)
		return set_err(err, errlen, "not a valid IPv6 address");
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->sslen = res->ai_addrlen;
	freeaddrinfo(res);
	((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(out->port);
	out->kind = ADDR_IPV6;
	return 0;
}

static int parse_host(const char *host, struct addr_spec *out, char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

	if (strcmp(host, "*") == 0) {
		out->kind = ADDR_ANY;
		return 0;
	}
	if (digits_and_dots(host)) {
		if (addr_parse_ipv4(host, &sin->sin_addr) < 0)
			return set_err(err, errlen, "not a valid IPv4 address");
		sin->sin_family = AF_INET;
		sin->sin_port = htons(out->port);
		out->sslen = sizeof *sin;
		out->kind = ADDR_IPV4;
		return 0;
	}
	if (strchr(host, ':'))
		return set_err(err, errlen, "an IPv6 address must be in brackets, as [::1]:PORT");
	if (!valid_hostname(host))
		return set_err(err, errlen, "not a valid host name");
	snprintf(out->host, sizeof out->host, "%s", host);
	out->kind = ADDR_HOST;
	return 0;
}

/* -l's forms: "tcp:" (the default, so rarely written) before an inet
 * address, "udp:" for a datagram one; unix:PATH a stream, unix-dgram:PATH
 * datagrams. */
static int parse_inet(const char *s, struct addr_spec *out, char *err, size_t errlen);

int addr_parse(const char *s, struct addr_spec *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	out->socktype = SOCK_STREAM;
	if (strncmp(s, "unix:", 5) == 0)
		return parse_unix(s + 5, out, err, errlen);
	if (strncmp(s, "unix-dgram:", 11) == 0) {
		out->socktype = SOCK_DGRAM;
		return parse_unix(s + 11, out, err, errlen);
	}
	if (strncmp(s, "udp:", 4) == 0) {
		out->socktype = SOCK_DGRAM;
		s += 4;
	} else if (strncmp(s, "tcp:", 4) == 0) {
		s += 4;
	}
	if (strncmp(s, "unix:", 5) == 0)
		return set_err(err, errlen, "a unix socket is unix:PATH (a stream) or "
			       "unix-dgram:PATH");
	return parse_inet(s, out, err, errlen);
}

/* PORT, IPV4:PORT, [IPV6]:PORT or HOST:PORT. */
static int parse_inet(const char *s, struct addr_spec *out, char *err, size_t errlen)
{
	char host[256];
	const char *colon, *portstr;
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return set_err(err, errlen, "expected [IPV6]:PORT");
		hlen = (size_t)(close - s - 1);
		portstr = close + 2;
		if (hlen == 0 || hlen >= sizeof host)
			return set_err(err, errlen, "not a valid IPv6 address");
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (parse_port(portstr, &out->port) < 0)
			return set_err(err, errlen, "port must be a number from 0 to 65535");
		return parse_ipv6(host, out, err, errlen);
	}
	colon = strrchr(s, ':');
	if (!colon) {
		if (parse_port(s, &out->port) < 0)
			return set_err(err, errlen, *s && s[strspn(s, "0123456789")] == '\0' ?
				       "port must be a number from 0 to 65535" :
				       "expected PORT, IPV4:PORT, [IPV6]:PORT, HOST:PORT (udp: before any "
				       "for datagrams), unix:PATH or unix-dgram:PATH");
		out->kind = ADDR_ANY;
		return 0;
	}
	hlen = (size_t)(colon - s);
	if (hlen == 0)
		return set_err(err, errlen, "missing host before ':'");
	if (hlen >= sizeof host)
		return set_err(err, errlen, "host name too long");
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (parse_port(colon + 1, &out->port) < 0)
		return set_err(err, errlen, "port must be a number from 0 to 65535");
	return parse_host(host, out, err, errlen);
}

void addr_peer_from(struct peer *p, const struct sockaddr *sa, socklen_t len)
{
	memset(p, 0, sizeof *p);
	p->family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		memcpy(p->raw, &sin->sin_addr, 4);
		p->port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		p->port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			p->family = AF_INET;
			memcpy(p->raw, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			memcpy(p->raw, &sin6->sin6_addr, 16);
		}
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
		size_t off = offsetof(struct sockaddr_un, sun_path);
		size_t n = len > off ? (size_t)len - off : 0;

		if (n > sizeof p->path - 1)
			n = sizeof p->path - 1;
		if (n > 0 && sun->sun_path[0] == '\0') {	/* abstract */
			p->path[0] = '@';
			memcpy(p->path + 1, sun->sun_path + 1, n - 1);
			p->path[n] = '\0';
		} else {
			memcpy(p->path, sun->sun_path, n);
			p->path[n] = '\0';
		}
		return;
	} else {
		return;
	}
	inet_ntop(p->family, p->raw, p->ip, sizeof p->ip);
}

int addr_peer_format(const struct peer *p, char *buf, size_t len)
{
	switch (p->family) {
	case AF_INET:
		return snprintf(buf, len, "%s:%u", p->ip, p->port);
	case AF_INET6:
		return snprintf(buf, len, "[%s]:%u", p->ip, p->port);
	case AF_UNIX: {
		unsigned uid;

		/* The client chose its path, bytes and all: escaped, so that a
		 * newline or an ESC in it cannot forge or paint log lines. */
		if (p->path[0] && len > 5) {
			memcpy(buf, "unix:", 5);
			return 5 + (int)log_escape(buf + 5, len - 5, p->path, strlen(p->path));
		}
		/* An unnamed client (the usual kind): say who it runs as. */
		memcpy(&uid, p->raw, sizeof uid);
		return snprintf(buf, len, "unix:uid=%u", uid);
	}
	default:
		return snprintf(buf, len, "?");
	}
}

bool addr_is_wildcard(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}
