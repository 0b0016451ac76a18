/*
 * builtin.c - the classic inetd internal services: echo (RFC 862), discard
 * (863), chargen (864), daytime (867) and time (868).
 *
 * Each is a small state machine driven by a worker's event loop, so one
 * worker serves thousands of connections at once: builtin_begin starts a
 * connection, builtin_step runs it on readiness, and either returns the
 * epoll events it waits for next, or 0 when the connection is finished.
 * Work per step is bounded, so one busy client cannot starve the rest.  A
 * peer that went away is the normal way for echo, discard and chargen to
 * end; echo stops reading while the peer does not read (back-pressure).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

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

/* The RFC 864 pattern, 95 lines, built once: chargen writes from it. */
static char pattern[95 * 74];

static void pattern_init(void)
{
	if (pattern[0])
		return;
	for (unsigned l = 0; l < 95; l++)
		builtin_chargen_line(l, pattern + l * 74);
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

/* RFC 868: seconds since 1900-01-01 as 32 bits, network order.  Taken
 * modulo 2^32, it wraps in 2036 as every implementation does. */
uint32_t builtin_time_value(time_t now)
{
	return (uint32_t)((uint64_t)now + 2208988800ULL);
}

static size_t daytime_line(char *line, size_t len, time_t now)
{
	struct tm tm;

	localtime_r(&now, &tm);
	return strftime(line, len, "%a %b %e %H:%M:%S %Y %Z\r\n", &tm);
}

/* Reads and drops what is there.  0: the peer closed (or failed). */
static uint32_t drain_input(int fd)
{
	char buf[16384];

	for (int i = 0; i < 8; i++) {
		ssize_t n = read(fd, buf, sizeof buf);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return EPOLLIN;
		if (n <= 0)
			return 0;
	}
	return EPOLLIN;
}

/* Writes what echo owes.  Returns 1 when all is out, 0 when the socket is
 * full (wait for EPOLLOUT), -1 on error. */
static int flush_pending(struct bconn *b)
{
	while (b->len > 0) {
		ssize_t w = write(b->fd, b->pend + b->off, b->len);

		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		b->off += (unsigned)w;
		b->len -= (unsigned)w;
	}
	free(b->pend);
	b->pend = NULL;
	b->off = 0;
	return 1;
}

static uint32_t echo_step(struct bconn *b)
{
	char buf[16384];
	int f = flush_pending(b);

	if (f <= 0)
		return f < 0 ? 0 : EPOLLOUT;
	for (int i = 0; i < 8; i++) {
		ssize_t n = read(b->fd, buf, sizeof buf), w;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return EPOLLIN;
		if (n <= 0)
			return 0;
		w = write(b->fd, buf, (size_t)n);
		if (w < 0 && errno != EAGAIN)
			return 0;
		if (w < n) {
			/* The peer reads slower than it writes: keep the rest and
			 * stop reading until it is out (back-pressure). */
			w = w < 0 ? 0 : w;
			b->pend = malloc((size_t)(n - w));
			if (!b->pend)
				return 0;
			memcpy(b->pend, buf + w, (size_t)(n - w));
			b->len = (unsigned)(n - w);
			return EPOLLOUT;
		}
	}
	return EPOLLIN;
}

static uint32_t chargen_step(struct bconn *b, uint32_t events)
{
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && drain_input(b->fd) == 0)
		return 0;
	for (int i = 0; i < 8; i++) {
		ssize_t w = write(b->fd, pattern + b->off, sizeof pattern - b->off);

		if (w < 0)
			return errno == EAGAIN || errno == EINTR ? EPOLLIN | EPOLLOUT : 0;
		b->off = (unsigned)((b->off + (size_t)w) % sizeof pattern);
	}
	return EPOLLIN | EPOLLOUT;
}

/* Starts serving fd.  Returns the events to wait for, or 0 when the
 * connection is finished and the caller should close it. */
uint32_t builtin_begin(struct bconn *b, enum builtin_kind kind, int fd)
{
	char line[64];
	ssize_t w;

	memset(b, 0, sizeof *b);
	b->fd = fd;
	b->kind = kind;
	switch (kind) {
	case BUILTIN_DAYTIME:
		/* A fresh socket takes a few dozen bytes without blocking. */
		w = write(fd, line, daytime_line(line, sizeof line, time(NULL)));
		return (void)w, 0;
	case BUILTIN_TIME: {
		uint32_t v = htonl(builtin_time_value(time(NULL)));

		w = write(fd, &v, sizeof v);
		return (void)w, 0;
	}
	case BUILTIN_CHARGEN:
		pattern_init();
		/* fall through */
	case BUILTIN_ECHO:
	case BUILTIN_DISCARD:
		if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
			return 0;
		return kind == BUILTIN_CHARGEN ? EPOLLIN | EPOLLOUT : EPOLLIN;
	default:
		return 0;
	}
}

uint32_t builtin_step(struct bconn *b, uint32_t events)
{
	switch (b->kind) {
	case BUILTIN_ECHO: return echo_step(b);
	case BUILTIN_DISCARD: return drain_input(b->fd);
	case BUILTIN_CHARGEN: return chargen_step(b, events);
	default: return 0;
	}
}

/* The answer to one datagram (the RFCs' UDP forms) into out, and its
 * length; 0 for none (discard, or nothing to say).  A reply goes to
 * whatever address the request names, which anyone can forge: none is
 * longer than its request except where the RFC says so - chargen's
 * BUILTIN_CHARGEN_DGRAM characters (RFC 864: 0 to 512), daytime's line,
 * time's 4 bytes - and the worker rate-limits every source (wdgram.c).
 * *line: chargen's place in the pattern, carried from one to the next. */
size_t builtin_dgram_reply(enum builtin_kind kind, const void *req, size_t len,
			   unsigned *line, time_t now, char *out, size_t outmax)
{
	size_t n = 0;

	switch (kind) {
	case BUILTIN_ECHO:
		if (len > outmax)
			return 0;	/* never cut: the peer would get another datagram */
		memcpy(out, req, len);
		return len;
	case BUILTIN_CHARGEN:
		pattern_init();
		while (n + 74 <= BUILTIN_CHARGEN_DGRAM && n + 74 <= outmax) {
			memcpy(out + n, pattern + (*line % 95) * 74, 74);
			*line = (*line + 1) % 95;
			n += 74;
		}
		return n;
	case BUILTIN_DAYTIME: {
		char tmp[64];

		n = daytime_line(tmp, sizeof tmp, now);
		if (n > outmax)
			return 0;
		memcpy(out, tmp, n);
		return n;
	}
	case BUILTIN_TIME: {
		uint32_t v = htonl(builtin_time_value(now));

		if (outmax < sizeof v)
			return 0;
		memcpy(out, &v, sizeof v);
		return sizeof v;
	}
	default:
		return 0;
	}
}

void builtin_end(struct bconn *b)
{
	free(b->pend);
	b->pend = NULL;
}
