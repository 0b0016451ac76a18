/*
 * builtin.c - the classic inetd internal services: echo (RFC 862), discard
 * (863), chargen (864), daytime (867) and time (868).
 *
 * Each serves one connection on fd and then exits the process that runs
 * it; acceptd starts that process per connection.  They never read more
 * than they must and stop at the first error: a peer that went away is the
 * normal way for echo, discard and chargen to end.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "acceptd.h"

static const struct {
	const char *name;
	enum builtin_kind kind;
} services[] = {
	{ "echo", BUILTIN_ECHO }, { "discard", BUILTIN_DISCARD },
	{ "chargen", BUILTIN_CHARGEN }, { "daytime", BUILTIN_DAYTIME },
	{ "time", BUILTIN_TIME },
};

int builtin_lookup(const char *name, enum builtin_kind *out)
{
	for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
		if (strcmp(name, services[i].name) == 0) {
			*out = services[i].kind;
			return 0;
		}
	return -1;
}

const char *builtin_name(enum builtin_kind k)
{
	for (size_t i = 0; i < sizeof services / sizeof services[0]; i++)
		if (services[i].kind == k)
			return services[i].name;
	return "none";
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void echo(int fd, bool reply)
{
	char buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (reply && write_all(fd, buf, (size_t)n) < 0))
			return;
	}
}

/* RFC 864: lines of 72 characters from the 95 printable ASCII ones, each
 * line starting one character further along, ending in CR LF. */
size_t builtin_chargen_line(unsigned line, char out[74])
{
	for (unsigned i = 0; i < 72; i++)
		out[i] = (char)(' ' + (line + i) % 95);
	out[72] = '\r';
	out[73] = '\n';
	return 74;
}

static void chargen(int fd)
{
	char buf[95 * 74];

	for (unsigned l = 0; l < 95; l++)
		builtin_chargen_line(l, buf + l * 74);
	while (write_all(fd, buf, sizeof buf) == 0)
		;
}

static void daytime(int fd)
{
	char line[64];
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	localtime_r(&now, &tm);
	n = strftime(line, sizeof line, "%a %b %e %H:%M:%S %Y %Z\r\n", &tm);
	write_all(fd, line, n);
}

/* RFC 868: seconds since 1900-01-01 as 32 bits, network order.  Taken
 * modulo 2^32, it wraps in 2036 as every implementation does. */
uint32_t builtin_time_value(time_t now)
{
	return (uint32_t)((uint64_t)now + 2208988800ULL);
}

static void rfc868(int fd)
{
	uint32_t v = builtin_time_value(time(NULL));
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
			       (unsigned char)(v >> 8), (unsigned char)v };

	write_all(fd, b, sizeof b);
}

void builtin_serve(enum builtin_kind k, int fd)
{
	switch (k) {
	case BUILTIN_ECHO: echo(fd, true); break;
	case BUILTIN_DISCARD: echo(fd, false); break;
	case BUILTIN_CHARGEN: chargen(fd); break;
	case BUILTIN_DAYTIME: daytime(fd); break;
	case BUILTIN_TIME: rfc868(fd); break;
	case BUILTIN_NONE: break;
	}
	_exit(0);
}
