/*
 * udpload.c - a closed-loop UDP echo load generator (bench/udp).
 *
 *   udpload -c N -d SECS -w WARMSECS [-s SIZE] [-t TIMEOUT_MS] [-l LABEL] HOST PORT
 *
 * N client sockets, each bound to its own source port and connected to
 * HOST:PORT, each keeping exactly one datagram in flight: send, wait for
 * the echo, send the next.  A datagram not answered within TIMEOUT_MS
 * (default 200) counts as lost and the client sends a new one.  Every
 * datagram is SIZE bytes (default 64, at least 16): the client number,
 * a per-client sequence number and a fill derived from both, so a reply
 * is matched to its request and compared byte for byte with it.  A reply
 * carrying an older sequence number (the echo of a datagram already
 * counted as lost) is "late" and ignored; one with the current sequence
 * number but other bytes or another length is a "mismatch".
 *
 * One thread, epoll over all sockets.  WARMSECS of load first (not
 * counted), then SECS measured.  Two latencies, each in a log-linear
 * histogram (1/128 relative resolution): the datagram's (its send to its
 * echo: p50_us, p90_us, p99_us, max_us), and the request's (from the first
 * try to the echo, the timeouts of lost tries included: p50r_us, p99r_us,
 * maxr_us), which is what a client that retries sees.  One line on stdout:
 *
 *   RESULT label=L conc=N size=S dgrams_per_s=... p50_us=... p90_us=...
 *     p99_us=... max_us=... p50r_us=... p99r_us=... maxr_us=... ok=...
 *     lost=... late=... mismatch=... errors=... warm_ok=...
 *     machine_cpu_us=... client_cpu_us=... steal_pct=...
 *
 * machine_cpu_us: the whole machine's busy CPU time (/proc/stat) during
 * the measured part per answered datagram; client_cpu_us: this process's
 * own (getrusage) per answered datagram; steal_pct: the share of the
 * machine's time the hypervisor took.  Exit status 0 when at least one
 * reply came back and none mismatched, 1 otherwise, 2 on a usage error.
 *
 * Loopback only: HOST must be a loopback address.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXDGRAM 65507
#define HDR 16			/* client (u32), magic (u32), sequence (u64) */
#define MAGIC 0x75647031u	/* "udp1" */

/* --- latency histogram: ns, log-linear ------------------------------------ */
#define SUB_BITS 7		/* 128 sub-buckets per power of two */
#define SUB (1u << SUB_BITS)
#define NBUCKET (64 * SUB)

struct hist {
	uint64_t n[NBUCKET];
	uint64_t count, max;
};

static unsigned hist_index(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v);	/* v >= 2^SUB_BITS */
	unsigned shift = e - SUB_BITS;
	return (shift + 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* The middle of bucket i, in ns. */
static double hist_value(unsigned i)
{
	if (i < SUB)
		return i;
	unsigned shift = i / SUB - 1;
	uint64_t lo = ((uint64_t)(i % SUB) + SUB) << shift;
	return (double)lo + ((double)(1ull << shift) - 1) / 2;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->n[hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

static double hist_pct(const struct hist *h, double pct)
{
	if (h->count == 0)
		return 0;
	uint64_t want = (uint64_t)((double)h->count * pct / 100.0 + 0.5), seen = 0;
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < NBUCKET; i++) {
		seen += h->n[i];
		if (seen >= want)
			return hist_value(i);
	}
	return (double)h->max;
}

/* --- clients ---------------------------------------------------------------- */
struct client {
	int fd;
	uint32_t id;
	uint64_t seq;		/* of the datagram in flight */
	uint64_t sent_ns;	/* when it left; 0: none in flight */
	uint64_t first_ns;	/* when the first try of this request left */
	unsigned char *buf;	/* what was sent */
};

static struct {
	uint64_t ok, lost, late, mismatch, errors;
} cnt;
static struct hist hist, hreq;
static size_t size = 64;
static uint64_t timeout_ns = 200 * 1000000ull;
static unsigned char rbuf[MAXDGRAM + 1];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill(struct client *c)
{
	unsigned char *b = c->buf;
	uint32_t magic = MAGIC;
	uint64_t x = c->seq * 0x9e3779b97f4a7c15ull ^ c->id;

	memcpy(b, &c->id, 4);
	memcpy(b + 4, &magic, 4);
	memcpy(b + 8, &c->seq, 8);
	for (size_t i = HDR; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)(x >> 24);
	}
}

/* The next datagram: a new request, or a retry of the one in flight. */
static void send_next(struct client *c, int retry)
{
	c->seq++;
	fill(c);
	c->sent_ns = now_ns();
	if (!retry)
		c->first_ns = c->sent_ns;
	for (;;) {
		ssize_t r = send(c->fd, c->buf, size, 0);
		if (r == (ssize_t)size)
			return;
		if (r < 0 && errno == EINTR)
			continue;
		/* ECONNREFUSED (no server yet), ENOBUFS, EAGAIN: the datagram
		 * is gone; its timeout sends the next one */
		cnt.errors++;
		return;
	}
}

/* Everything waiting on c's socket; returns with a new datagram in flight
 * when its reply came back. */
static void on_readable(struct client *c)
{
	for (;;) {
		ssize_t r = recv(c->fd, rbuf, sizeof rbuf, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				cnt.errors++;	/* ECONNREFUSED: ICMP port unreachable */
			return;
		}
		uint64_t t = now_ns(), seq = 0;
		uint32_t id = 0, magic = 0;
		if (r >= HDR) {
			memcpy(&id, rbuf, 4);
			memcpy(&magic, rbuf + 4, 4);
			memcpy(&seq, rbuf + 8, 8);
		}
		if (r >= HDR && id == c->id && magic == MAGIC && seq < c->seq) {
			cnt.late++;	/* the echo of one already counted lost */
			continue;
		}
		if (c->sent_ns == 0) {
			cnt.late++;	/* nothing in flight (cannot happen) */
			continue;
		}
		if ((size_t)r != size || memcmp(rbuf, c->buf, size) != 0)
			cnt.mismatch++;
		else {
			cnt.ok++;
			hist_add(&hist, t - c->sent_ns);
			hist_add(&hreq, t - c->first_ns);
		}
		send_next(c, 0);
	}
}

/* --- machine CPU -------------------------------------------------------------- */
struct cpu {
	unsigned long long busy, total, steal;
};

static struct cpu machine_cpu(void)
{
	struct cpu m = { 0, 0, 0 };
	unsigned long long v[10] = { 0 };
	FILE *f = fopen("/proc/stat", "r");

	if (!f)
		return m;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
		   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
		/* user nice system idle iowait irq softirq steal (guest*: in user) */
		m.busy = v[0] + v[1] + v[2] + v[5] + v[6];
		m.steal = v[7];
		m.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
	}
	fclose(f);
	return m;
}

static double self_cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void usage(void)
{
	fprintf(stderr, "usage: udpload -c N -d SECS -w WARMSECS [-s SIZE] [-t TIMEOUT_MS] "
			"[-l LABEL] HOST PORT\n");
	exit(2);
}

static double num_arg(const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "udpload: bad number %s\n", s);
		usage();
	}
	return v;
}

/* Run until `until` (ns), with a timeout sweep every few ms. */
static void run(struct client *cl, int n, int ep, uint64_t until)
{
	struct epoll_event ev[256];
	uint64_t next_sweep = now_ns() + timeout_ns / 40;

	for (;;) {
		uint64_t t = now_ns();
		if (t >= until)
			return;
		if (t >= next_sweep) {
			for (int i = 0; i < n; i++)
				if (cl[i].sent_ns && t - cl[i].sent_ns >= timeout_ns) {
					cnt.lost++;
					send_next(&cl[i], 1);
				}
			next_sweep = t + timeout_ns / 40;
		}
		uint64_t wake = next_sweep < until ? next_sweep : until;
		int ms = (int)((wake - t + 999999) / 1000000);
		int k = epoll_wait(ep, ev, 256, ms);
		if (k < 0 && errno != EINTR) {
			perror("udpload: epoll_wait");
			exit(1);
		}
		for (int i = 0; i < k; i++)
			on_readable(&cl[ev[i].data.u32]);
	}
}

int main(int argc, char **argv)
{
	int n = 1, opt;
	double dur = 5, warm = 1;
	const char *label = "-";

	while ((opt = getopt(argc, argv, "c:d:w:s:t:l:h")) != -1) {
		switch (opt) {
		case 'c': n = (int)num_arg(optarg, 1, 10000); break;
		case 'd': dur = num_arg(optarg, 0.01, 86400); break;
		case 'w': warm = num_arg(optarg, 0, 86400); break;
		case 's': size = (size_t)num_arg(optarg, HDR, MAXDGRAM); break;
		case 't': timeout_ns = (uint64_t)(num_arg(optarg, 1, 60000) * 1e6); break;
		case 'l': label = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 2)
		usage();

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *ai;
	const char *host = argv[optind];
	char hbuf[64];
	size_t hl = strlen(host);
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof hbuf) {
		memcpy(hbuf, host + 1, hl - 2);
		hbuf[hl - 2] = 0;
		host = hbuf;
	}
	int e = getaddrinfo(host, argv[optind + 1], &hints, &ai);
	if (e) {
		fprintf(stderr, "udpload: %s %s: %s\n", host, argv[optind + 1], gai_strerror(e));
		return 2;
	}
	if (!((ai->ai_family == AF_INET &&
	       (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127) ||
	      (ai->ai_family == AF_INET6 &&
	       IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr)))) {
		fprintf(stderr, "udpload: %s is not a loopback address: refusing\n", host);
		return 2;
	}

	struct client *cl = calloc((size_t)n, sizeof *cl);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl || ep < 0) {
		perror("udpload");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		cl[i].id = (uint32_t)i;
		cl[i].buf = malloc(size);
		cl[i].fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (!cl[i].buf || cl[i].fd < 0 || connect(cl[i].fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			perror("udpload: socket/connect");
			return 1;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev) < 0) {
			perror("udpload: epoll_ctl");
			return 1;
		}
	}
	freeaddrinfo(ai);

	uint64_t t0 = now_ns();
	for (int i = 0; i < n; i++)
		send_next(&cl[i], 0);
	if (warm > 0)
		run(cl, n, ep, t0 + (uint64_t)(warm * 1e9));
	uint64_t warm_ok = cnt.ok;
	memset(&cnt, 0, sizeof cnt);
	memset(&hist, 0, sizeof hist);
	memset(&hreq, 0, sizeof hreq);

	struct cpu m0 = machine_cpu();
	double c0 = self_cpu_us();
	uint64_t t1 = now_ns();
	run(cl, n, ep, t1 + (uint64_t)(dur * 1e9));
	uint64_t t2 = now_ns();
	double c1 = self_cpu_us();
	struct cpu m1 = machine_cpu();

	double secs = (double)(t2 - t1) / 1e9;
	double ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
	double tot = (double)(m1.total - m0.total);
	/* busy share of all CPUs times the wall time = CPU-seconds busy */
	double mbusy_us = tot > 0 ? (double)(m1.busy - m0.busy) / tot * ncpu * secs * 1e6 : 0;
	double steal = tot > 0 ? 100.0 * (double)(m1.steal - m0.steal) / tot : 0;
	double ok = cnt.ok ? (double)cnt.ok : 1;

	printf("RESULT label=%s conc=%d size=%zu dgrams_per_s=%.1f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f max_us=%.1f p50r_us=%.1f p99r_us=%.1f maxr_us=%.1f ok=%llu lost=%llu late=%llu mismatch=%llu errors=%llu "
	       "warm_ok=%llu machine_cpu_us=%.2f client_cpu_us=%.2f steal_pct=%.1f\n",
	       label, n, size, (double)cnt.ok / secs, hist_pct(&hist, 50) / 1e3,
	       hist_pct(&hist, 90) / 1e3, hist_pct(&hist, 99) / 1e3, (double)hist.max / 1e3,
	       hist_pct(&hreq, 50) / 1e3, hist_pct(&hreq, 99) / 1e3, (double)hreq.max / 1e3,
	       (unsigned long long)cnt.ok, (unsigned long long)cnt.lost,
	       (unsigned long long)cnt.late, (unsigned long long)cnt.mismatch,
	       (unsigned long long)cnt.errors, (unsigned long long)warm_ok, mbusy_us / ok,
	       (c1 - c0) / ok, steal);
	return (cnt.ok > 0 && cnt.mismatch == 0) ? 0 : 1;
}
