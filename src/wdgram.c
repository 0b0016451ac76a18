/*
 * wdgram.c - the built-ins over datagram sockets, answered in a pool
 * worker with no process per datagram (worker.c runs it in worker 0).
 *
 * A built-in's answer goes to the address its request names, and a UDP
 * source address is anyone's to forge: chargen over UDP is the classic
 * reflector.  So every datagram passes the same admission a connection
 * does - the ACL or its --rules rule - and then a per-source rate, on by
 * default (WDGRAM_RATE_N per WDGRAM_RATE_SECS; --rate or a rule's rate=
 * replaces it); what fails is dropped, logged through a limiter, never
 * answered.  When the rate table has no room for one more source (a flood
 * of forged ones), the datagram is dropped too: for datagrams, unlike
 * connections, the safe way to fail is to stay silent.  No answer is
 * longer than its request except where the RFC says so
 * (builtin_dgram_reply).
 *
 * The worker reads with recvmmsg and answers with sendmmsg, WDGRAM_BATCH
 * at a time: a reply that does not fit the socket's send buffer is
 * dropped, as the network could have dropped it.  On a wildcard socket an
 * answer leaves from the address its request was sent to (the
 * IP_PKTINFO/IPV6_PKTINFO dgram_prepare asked for, sent back): the
 * kernel's own choice would be the route's, and a client that asked
 * another of this host's addresses would take that answer for someone
 * else's.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

#define WDGRAM_BATCH 16
#define WDGRAM_MAX 65536	/* the largest datagram, whole */
#define WDGRAM_OUT 512		/* a reply other than echo's */

struct wdgram {
	struct mmsghdr in[WDGRAM_BATCH], out[WDGRAM_BATCH];
	struct iovec iin[WDGRAM_BATCH], iout[WDGRAM_BATCH];
	struct sockaddr_storage from[WDGRAM_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			 CMSG_SPACE(sizeof(struct in_pktinfo)) +
			 CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl[WDGRAM_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} octl[WDGRAM_BATCH];
	char reply[WDGRAM_BATCH][WDGRAM_OUT];
	char data[WDGRAM_BATCH][WDGRAM_MAX];
	unsigned chargen_line;
};

static struct wdgram *w;	/* made by the worker that serves datagrams */

/* The datagram sockets a worker serves go in its epoll set with
 * data.ptr = the listener; false when there is nothing to serve. */
bool wdgram_start(struct server *s, int epfd)
{
	bool any = false;

	for (int i = 0; i < s->n_lst; i++) {
		struct listener *l = &s->lst[i];
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };

		if (l->socktype != SOCK_DGRAM || l->fd < 0)
			continue;
		if (!w && !(w = calloc(1, sizeof *w))) {
			log_err("worker pid %d: out of memory: no datagram service", (int)getpid());
			return false;
		}
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0)
			log_err("worker pid %d: %s: epoll_ctl: %s", (int)getpid(), l->name,
				strerror(errno));
		else
			any = true;
	}
	return any;
}

/* Stopping: no more datagrams are read here. */
void wdgram_stop(struct server *s, int epfd)
{
	for (int i = 0; i < s->n_lst; i++)
		if (s->lst[i].socktype == SOCK_DGRAM && s->lst[i].fd >= 0)
			epoll_ctl(epfd, EPOLL_CTL_DEL, s->lst[i].fd, NULL);
}

/* Admission, then the rate: may p have an answer? */
static bool admitted(struct server *s, const struct listener *l, const struct peer *p,
		     uint32_t gid)
{
	static struct log_limit denied = { .what = "datagrams denied" };
	static struct log_limit rated = { .what = "datagrams over the rate" };
	const struct options *o = s->opt;
	unsigned n = o->rate_n ? o->rate_n : WDGRAM_RATE_N;
	unsigned secs = o->rate_n ? o->rate_secs : WDGRAM_RATE_SECS;
	char who[ADDR_STRLEN], why[160];
	const struct rule *ru;
	int r;

	if (admit_policy(s, p, gid, &ru, why, sizeof why)) {
		if (log_limited(&denied)) {
			addr_peer_format(p, who, sizeof who);
			log_notice("%s on %s: %s; datagram dropped", who, l->name, why);
		}
		return false;
	}
	if (ru && ru->rate_n)
		n = ru->rate_n, secs = ru->rate_secs;
	r = source_rate(s, p, n, secs);
	if (r == 1)
		return true;
	if (log_limited(&rated)) {
		addr_peer_format(p, who, sizeof who);
		log_notice("%s on %s: %s %u/%u; datagram dropped", who, l->name,
			   r == 0 ? "over the datagram rate" : "too many sources for the rate table at",
			   n, secs);
	}
	return false;
}

/* The peer a datagram came from, as admission sees it. */
static void peer_of(const struct listener *l, struct msghdr *m, struct peer *p, uint32_t *gid)
{
	addr_peer_from(p, m->msg_name, m->msg_namelen);
	*gid = (uint32_t)-1;
	if (l->local.family != AF_UNIX)
		return;
	p->family = AF_UNIX;
	memset(p->raw, 0xff, 4);	/* unknown sender: no user's rule */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred uc;

			memcpy(&uc, CMSG_DATA(c), sizeof uc);
			memcpy(p->raw, &uc.uid, sizeof uc.uid);
			*gid = uc.gid;
		}
}

/* Where the answer to m leaves from: the address m was sent to, as a
 * control message in out's buffer (a wildcard socket's answer would
 * otherwise leave from the route's address); none when m says nothing
 * (a socket bound to one address, a unix one). */
static void reply_from(struct msghdr *m, struct msghdr *out, char *buf)
{
	struct cmsghdr *o;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			/* ipi_spec_dst: the local address to answer from (a
			 * broadcast's is the interface's own). */
			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			pi.ipi_ifindex = 0;
			pi.ipi_addr.s_addr = 0;
			out->msg_control = buf;
			out->msg_controllen = CMSG_SPACE(sizeof pi);
			o = CMSG_FIRSTHDR(out);
			o->cmsg_level = IPPROTO_IP;
			o->cmsg_type = IP_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof pi);
			memcpy(CMSG_DATA(o), &pi, sizeof pi);
			return;		/* an IPv4 one on an IPv6 socket: this one */
		}
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			if (IN6_IS_ADDR_MULTICAST(&pi.ipi6_addr))
				return;	/* no source address: the kernel's choice */
			out->msg_control = buf;
			out->msg_controllen = CMSG_SPACE(sizeof pi);
			o = CMSG_FIRSTHDR(out);
			o->cmsg_level = IPPROTO_IPV6;
			o->cmsg_type = IPV6_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof pi);
			memcpy(CMSG_DATA(o), &pi, sizeof pi);
			return;
		}
	}
}

/* l is readable: answer what is there, a batch at a time, a few batches
 * per wake-up so the worker's connections get their turn.  Returns how
 * many datagrams were read (the worker tells the master, for
 * --idle-exit). */
unsigned wdgram_ready(struct server *s, struct listener *l)
{
	unsigned seen = 0;

	for (int round = 0; round < 4; round++) {
		time_t now = time(NULL);
		int n, k = 0;

		for (int i = 0; i < WDGRAM_BATCH; i++) {
			w->iin[i] = (struct iovec){ w->data[i], WDGRAM_MAX };
			w->in[i].msg_hdr = (struct msghdr){ .msg_name = &w->from[i],
				.msg_namelen = sizeof w->from[i], .msg_iov = &w->iin[i],
				.msg_iovlen = 1, .msg_control = w->ctl[i].buf,
				.msg_controllen = sizeof w->ctl[i].buf };
		}
		n = recvmmsg(l->fd, w->in, WDGRAM_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return seen;
		seen += (unsigned)n;
		for (int i = 0; i < n; i++) {
			struct msghdr *m = &w->in[i].msg_hdr;
			size_t len = w->in[i].msg_len;
			struct peer p;
			uint32_t gid;
			char *out = w->reply[k];

			/* An unnamed unix sender has no address to answer. */
			if (m->msg_namelen <= sizeof(sa_family_t) || (m->msg_flags & MSG_TRUNC))
				continue;
			peer_of(l, m, &p, &gid);
			if (!admitted(s, l, &p, gid))
				continue;
			if (s->opt->builtin == BUILTIN_ECHO) {
				out = w->data[i];	/* the request is its own answer */
			} else {
				len = builtin_dgram_reply(s->opt->builtin, w->data[i], len,
							  &w->chargen_line, now, out, WDGRAM_OUT);
				if (len == 0)
					continue;	/* discard */
			}
			w->iout[k] = (struct iovec){ out, len };
			w->out[k].msg_hdr = (struct msghdr){ .msg_name = m->msg_name,
				.msg_namelen = m->msg_namelen, .msg_iov = &w->iout[k],
				.msg_iovlen = 1 };
			reply_from(m, &w->out[k].msg_hdr, w->octl[k].buf);
			k++;
		}
		for (int sent = 0; sent < k;) {
			int r = sendmmsg(l->fd, w->out + sent, (unsigned)(k - sent), MSG_DONTWAIT);

			if (r > 0)
				sent += r;
			else if (r < 0 && errno == EINTR)
				continue;
			else
				sent++;	/* this one is lost (ECONNREFUSED & co.): the rest go */
		}
		if (n < WDGRAM_BATCH)
			return seen;
	}
	return seen;
}
