/*
 * dgram.c - datagram sockets (udp:, unix-dgram:, ListenDatagram=, inetd's
 * "dgram udp wait") served the inetd way: when a datagram waits, PROGRAM
 * starts with the socket itself on fds 0 and 1 and reads it; the socket
 * leaves the poll set until that handler exits, then comes back.
 *
 * Admission looks at the waiting datagram's source before any handler
 * starts: the datagram is peeked, not read, so the handler still finds
 * it.  A refused one is read and dropped (admit.c), never answered: an
 * answer to a forged source is how reflection attacks work.
 *
 * A handler that exits without reading must not make acceptd spin on a
 * socket that stays readable.  Each start notes the head of the queue (its
 * source, length, first bytes and, for UDP, the kernel's receive time, so
 * that the same bytes sent again - a retransmission, a heartbeat - are
 * another datagram); when the handler is gone and the same
 * datagram still waits, that start failed, and the next one waits
 * poolsup_backoff_ms(fails) - the back-off of failing workers: 100 ms
 * doubling to 30 s.  A handler that read anything resets it.
 *
 * The socket stays blocking (what inetd handlers expect of fd 0); every
 * read here says MSG_DONTWAIT.
 */
#include "config.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

#define DGRAM_BATCH 32		/* refused datagrams dropped per wake-up */
#define HEAD_BYTES 64		/* of a datagram, for its fingerprint */

/* The datagram at the head of a socket's queue, as peeked. */
struct head {
	struct sockaddr_storage from;
	socklen_t fromlen;
	struct sockaddr_storage to;	/* IP_PKTINFO: the address it was sent to */
	bool has_to;
	struct ucred cred;		/* AF_UNIX: SCM_CREDENTIALS */
	bool has_cred;
	uint32_t mark;
};

/* Peeks at the first datagram: 1, 0 when none waits, -1 on an error. */
static int peek(int fd, struct head *h)
{
	unsigned char data[HEAD_BYTES];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			 CMSG_SPACE(sizeof(struct in_pktinfo)) +
			 CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
	struct msghdr m = { .msg_name = &h->from, .msg_namelen = sizeof h->from,
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
		.msg_controllen = sizeof ctl.buf };
	uint32_t sum = 2166136261u;	/* FNV-1a */
	struct timespec ts;
	ssize_t n;

	memset(h, 0, sizeof *h);
	n = recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	h->fromlen = m.msg_namelen;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *to = (struct sockaddr_in *)&h->to;

			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			to->sin_family = AF_INET;
			to->sin_addr = pi.ipi_addr;
			h->has_to = true;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *to = (struct sockaddr_in6 *)&h->to;

			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			to->sin6_family = AF_INET6;
			to->sin6_addr = pi.ipi6_addr;
			h->has_to = true;
		} else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			memcpy(&h->cred, CMSG_DATA(c), sizeof h->cred);
			h->has_cred = true;
		}
	}
	/* The peek left the datagram's receive time in the socket
	 * (dgram_prepare): the same bytes resent are another datagram. */
	if (ioctl(fd, SIOCGSTAMPNS, &ts) == 0)
		for (size_t i = 0; i < sizeof ts; i++)
			sum = (sum ^ ((unsigned char *)&ts)[i]) * 16777619u;
	for (size_t i = 0; i < (size_t)n && i < sizeof data; i++)
		sum = (sum ^ data[i]) * 16777619u;
	for (socklen_t i = 0; i < h->fromlen && i < sizeof h->from; i++)
		sum = (sum ^ ((unsigned char *)&h->from)[i]) * 16777619u;
	h->mark = (sum ^ (uint32_t)n) * 16777619u;
	return 1;
}

/* The socket options dgram.c reads its answers from: where a datagram
 * was sent (a wildcard bind hides it), who sent a unix one.  Set on every
 * datagram listener, ours or inherited; failures cost only those
 * variables.  The first SIOCGSTAMPNS has the kernel note each UDP
 * datagram's receive time, which every peek then leaves in the socket for
 * the next SIOCGSTAMPNS (peek): unlike SO_TIMESTAMPNS, it adds no control
 * message to what handlers read.  A unix socket has none: there the same
 * bytes resent from the same sender look like the datagram unread. */
void dgram_prepare(struct listener *l)
{
	struct timespec ts;
	int on = 1;

	(void)ioctl(l->fd, SIOCGSTAMPNS, &ts);
	if (l->local.family == AF_UNIX) {
		setsockopt(l->fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
		return;
	}
	if (l->fixed_local)
		return;
	setsockopt(l->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
	if (l->local.family == AF_INET6)
		setsockopt(l->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
}

/* The waiting datagram as the rest of acceptd sees a connection. */
static void describe(struct listener *l, const struct head *h, struct conn_info *c)
{
	CONN_INFO_CLEAR(c);
	c->fd = l->fd;
	c->lst = l;
	c->dgram = true;
	addr_peer_from(&c->remote, (const struct sockaddr *)&h->from, h->fromlen);
	c->local = l->local;
	if (h->has_to && !l->fixed_local) {
		uint16_t port = l->local.port;

		addr_peer_from(&c->local, (const struct sockaddr *)&h->to, sizeof h->to);
		c->local.port = port;
	}
	if (l->local.family == AF_UNIX) {
		c->remote.family = AF_UNIX;
		if (h->has_cred) {
			c->uid = h->cred.uid;
			c->gid = h->cred.gid;
			c->pid = h->cred.pid;
		} else {
			c->uid = (uid_t)-1;	/* the kernel did not say: no user's rules */
			c->gid = (gid_t)-1;
		}
		memcpy(c->remote.raw, &c->uid, sizeof c->uid);	/* the source */
	}
}

/* A listener may be in the poll set: not while its handler runs or its
 * back-off lasts. */
bool dgram_idle(const struct listener *l)
{
	return l->socktype != SOCK_DGRAM || (!l->dgram_pid && !l->dgram_resume_ms);
}

/* One more failed start on l: the socket comes back after the back-off.
 * Returns the back-off, for the log. */
static unsigned back_off(struct listener *l)
{
	unsigned ms = poolsup_backoff_ms(++l->dgram_fails);

	l->dgram_resume_ms = mono_ms() + ms;
	return ms;
}

/* A handler that did not start: its source's count back, counted failed. */
static void not_started(struct server *s, const struct conn_info *c)
{
	source_release(s, &c->remote);
	s->failed++;
}

static void start(struct server *s, struct listener *l, struct conn_info *c,
		  const struct head *h)
{
	static struct log_limit lim = { .what = "datagram handlers that could not start" };
	char who[ADDR_STRLEN];
	uint32_t cg;
	pid_t pid = spawn_handler(s, c, &cg);

	if (pid < 0) {
		int e = errno;
		unsigned ms = back_off(l);

		not_started(s, c);
		if (log_limited(&lim)) {
			addr_peer_format(&c->remote, who, sizeof who);
			log_err("%s on %s: cannot start handler: %s; trying again in %u ms",
				who, l->name, strerror(e), ms);
		}
		return;
	}
	conns_track(s, pid, c, cg);
	conns_adopt_dgram(s, pid, l);
	l->dgram_pid = pid;
	l->dgram_mark = h->mark;
	s->total++;
	s->idle_since_ms = 0;
	if (log_enabled(LOG_LVL_INFO)) {
		addr_peer_format(&c->remote, who, sizeof who);
		log_info("datagram %s on %s pid %d", who, l->name, (int)pid);
	}
}

/* per-peer (busybox udpsvd's model): the socket, with the datagram
 * waiting in it, is connected to its sender and becomes that handler's,
 * so it sees only that peer from now on; a fresh socket bound to the same
 * address takes its place first (bound before the connect, so a datagram
 * from someone else meanwhile lands in one of the two rather than in
 * none).  Datagrams other peers sent just before the connect are still
 * in the handed-over socket's queue: the handler sees those, as under
 * udpsvd - the kernel cannot move them. */
static void start_peer(struct server *s, struct listener *l, struct conn_info *c,
		       const struct head *h)
{
	static struct log_limit lim = { .what = "per-peer handlers that could not start" };
	char who[ADDR_STRLEN];
	int old = l->fd, fresh = listen_rebind(s, l), e = 0;
	uint32_t cg = 0;
	pid_t pid = -1;

	if (fresh < 0 || connect(old, (const struct sockaddr *)&h->from, h->fromlen) < 0)
		e = errno;
	else if ((pid = spawn_handler(s, c, &cg)) < 0)
		e = errno;
	if (fresh < 0) {
		/* No second socket (out of fds?): the datagram waits, and the
		 * socket stays ours; try again after the back-off. */
		unsigned ms = back_off(l);

		not_started(s, c);
		if (log_limited(&lim))
			log_err("%s: cannot bind a socket for the next peer: %s; trying again "
				"in %u ms", l->name, strerror(e), ms);
		return;
	}
	accept_replace_fd(s, l, fresh);
	close(old);	/* the handler's now, or lost with its datagram */
	if (pid < 0) {
		not_started(s, c);
		if (log_limited(&lim)) {
			addr_peer_format(&c->remote, who, sizeof who);
			log_err("%s on %s: cannot start handler: %s; datagram dropped", who,
				l->name, strerror(e));
		}
		return;
	}
	l->dgram_fails = 0;
	conns_track(s, pid, c, cg);
	s->total++;
	s->idle_since_ms = 0;
	if (log_enabled(LOG_LVL_INFO)) {
		addr_peer_format(&c->remote, who, sizeof who);
		log_info("peer %s on %s pid %d", who, l->name, (int)pid);
	}
}

/* The socket is readable: start a handler for the first datagram whose
 * source is admitted, dropping the refused ones before it (per-peer: a
 * handler for each new peer, while -c allows). */
void dgram_ready(struct server *s, struct listener *l)
{
	static struct log_limit lim = { .what = "datagram socket errors" };

	for (int i = 0; i < DGRAM_BATCH && dgram_idle(l) && !s->stopping &&
	     s->active < s->opt->max_conns; i++) {
		struct conn_info c;
		struct head h;
		int r = peek(l->fd, &h);

		if (r < 0) {
			/* An ICMP error queued on the socket (a connected one
			 * from inetd): reading it clears it. */
			if (log_limited(&lim))
				log_warn("%s: %s", l->name, strerror(errno));
			(void)recv(l->fd, NULL, 0, MSG_DONTWAIT);
			continue;
		}
		if (r == 0)
			break;
		describe(l, &h, &c);
		if (!admit_conn(s, &c))
			continue;	/* dropped: the next one is looked at */
		if (s->opt->per_peer)
			start_peer(s, l, &c, &h);
		else
			start(s, l, &c, &h);
	}
	accept_update(s);
}

/* Its handler is gone: the socket goes back in the poll set, at once if
 * the handler read something, after the back-off if the datagram that
 * started it is still the first in the queue. */
void dgram_reaped(struct listener *l)
{
	static struct log_limit lim = { .what = "datagram handlers that read nothing" };
	struct head h;
	unsigned ms;

	l->dgram_pid = 0;
	if (l->fd < 0 || peek(l->fd, &h) != 1 || h.mark != l->dgram_mark) {
		l->dgram_fails = 0;
		return;
	}
	ms = back_off(l);
	if (log_limited(&lim))
		log_warn("%s: the handler exited without reading its datagram; starting the "
			 "next in %u ms", l->name, ms);
}

/* Back-offs that are over (clock.h). */
int64_t dgram_tick(struct server *s)
{
	int64_t now = mono_ms(), next = -1;

	for (int i = 0; i < s->n_lst; i++) {
		struct listener *l = &s->lst[i];

		if (!l->dgram_resume_ms)
			continue;
		if (now >= l->dgram_resume_ms)
			l->dgram_resume_ms = 0;
		else
			next = deadline_earlier(next, l->dgram_resume_ms);
	}
	return next;
}
