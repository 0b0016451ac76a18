/*
 * proxyq.c - connections that must first say who they are for: the
 * PROXY protocol header (--proxy-protocol), read inside the event loop.
 *
 * The master never blocks on a client: each connection waits in epoll
 * (edge-triggered, so a half-sent header does not wake the loop again until
 * more bytes come) with a deadline of PROXY_TIMEOUT_MS.  The bytes are
 * looked at with MSG_PEEK and handed to proxy_parse() whole each time;
 * only once the header is known complete are exactly its bytes read off
 * the socket, so whatever the client sent after it stays in the kernel
 * for the handler, byte for byte.
 *
 * --proxy-from is checked on the real peer before anything is read.  Once
 * the header is in, the address it carries replaces the real one (unless
 * it is UNKNOWN/LOCAL), what its TLVs say becomes the handler's PROXY_*
 * variables (conn_info's xenv; empty for v1 and for headers without them,
 * as fill_conn left it) and the connection goes through admission - ACL,
 * --rate, -C - like any other.  Connections still reading count against
 * --max-conns: a slowloris cannot hold more than -c fds, nor for longer
 * than the timeout; and since -C and --rate only see the claimed address,
 * one real peer may have only so many headers in progress (pending_cap),
 * or it alone could keep every -c slot reading, 3 s at a time.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"

#define PROXY_TIMEOUT_MS 3000

struct plist;

struct pconn {
	enum ev_kind kind;	/* EV_PROXY: first, for the event loop */
	struct pconn *prev, *next;
	struct conn_info c;
	int64_t deadline_ms;
	bool watched;		/* in the epoll set */
	struct plist *in;	/* the list it is on, NULL if none */
};

/* Two FIFO lists: connections reading their header (all have the same
 * timeout, so arrival order is deadline order), and connections whose
 * header is in but that wait for a pool worker with room. */
struct plist {
	struct pconn *head, *tail;
};

struct proxyq {
	struct plist reading, ready;
	struct pconn *spare;	/* freed records, reused */
};

static struct log_limit untrusted_log = { .what = "connections from outside --proxy-from" };
static struct log_limit bad_log = { .what = "bad PROXY headers" };
static struct log_limit busy_log = { .what = "peers over their PROXY headers in progress" };
static struct log_limit tlv_log = { .what = "PROXY TLV values left out" };

static void push(struct plist *l, struct pconn *p)
{
	p->in = l;
	p->next = NULL;
	p->prev = l->tail;
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
}

static void unlink_from(struct plist *l, struct pconn *p)
{
	p->in = NULL;
	if (p->prev)
		p->prev->next = p->next;
	else
		l->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		l->tail = p->prev;
	p->prev = p->next = NULL;
}

int proxyq_init(struct server *s)
{
	if (!s->opt->proxy_protocol)
		return 0;
	s->proxyq = calloc(1, sizeof *s->proxyq);
	return s->proxyq ? 0 : -1;
}

static void release(struct server *s, struct pconn *p)
{
	if (p->in)
		unlink_from(p->in, p);
	if (p->watched)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->c.fd, NULL);
	p->watched = false;
	p->next = s->proxyq->spare;
	s->proxyq->spare = p;
	s->proxying--;
}

/* Closes a connection that never got as far as a handler, with a line
 * (limited: these come in floods) saying why and, for a bad header, what
 * came instead. */
static void refuse(struct server *s, struct pconn *p, struct log_limit *lim,
		   const char *why, const unsigned char *got, size_t n)
{
	admit_refuse(s, &p->c, lim, why, got, n);
	release(s, p);
}

/* The header is in: take the addresses it carries and pass the
 * connection on as if it had just been accepted from there. */
static void pass_on(struct server *s, struct pconn *p)
{
	struct conn_info c = p->c;

	release(s, p);
	if (admit_conn(s, &c))
		accept_hand(s, &c);
}

static void hand_on(struct server *s, struct pconn *p)
{
	if (s->pool && !pool_ready(s))
		push(&s->proxyq->ready, p);	/* proxyq_tick sends it on */
	else
		pass_on(s, p);
}

/* May this peer speak for a client?  TCP peers: --proxy-from's networks
 * (none given: anyone).  Unix peers: --proxy-from's unix:uid=/unix:gid=
 * entries when there are any; else a socket file's permissions have
 * already said who may connect - but an abstract socket has no file, and
 * anyone on the host can reach it, so there nobody is trusted unless
 * named. */
static bool trusted(const struct server *s, const struct conn_info *c)
{
	const struct options *o = s->opt;
	bool unix_rules = false;

	for (unsigned i = 0; i < o->n_proxy_from; i++) {
		const struct cidr *r = &o->proxy_from[i];

		if (c->remote.family == AF_UNIX ? cidr_match_cred(r, (uint32_t)c->uid,
								   (uint32_t)c->gid) :
		    cidr_match(r, &c->remote))
			return true;
		unix_rules |= r->family == AF_UNIX;
	}
	if (c->remote.family == AF_UNIX)
		return !unix_rules && c->local.path[0] != '@';
	return o->n_proxy_from == 0;
}

/* Reads exactly n bytes that MSG_PEEK has shown to be there. */
static int consume(int fd, size_t n)
{
	unsigned char sink[PROXY_MAX];

	while (n > 0) {
		ssize_t r = recv(fd, sink, n, MSG_DONTWAIT);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		n -= (size_t)r;
	}
	return 0;
}

static void take_addresses(struct conn_info *c, const struct proxy_header *h)
{
	struct peer remote, local;

	if (!h->has_addr)
		return;
	addr_peer_from(&remote, (const struct sockaddr *)&h->src, sizeof h->src);
	addr_peer_from(&local, (const struct sockaddr *)&h->dst, sizeof h->dst);
	c->remote = remote;
	c->local = local;
	c->uid = 0;
	c->gid = 0;
	c->pid = 0;
}

/* What the v2 header's TLVs said becomes the handler's PROXY_* variables
 * (c->xenv).  A value left out (not printable, too long) costs only its
 * variable; the line names the client, the proxy that spoke for it
 * (via), the TLV and the first bytes, escaped. */
static void take_tlvs(struct conn_info *c, const struct peer *via,
		      const struct proxy_header *h, const unsigned char *buf)
{
	char who[ADDR_STRLEN], proxy[ADDR_STRLEN], esc[4 * 32 + 1];
	struct proxy_env_drop drop;

	c->xenv_len = (unsigned)proxy_env(h, buf, c->xenv, sizeof c->xenv, &drop);
	if (!drop.name || !log_limited(&tlv_log))
		return;
	addr_peer_format(&c->remote, who, sizeof who);
	addr_peer_format(via, proxy, sizeof proxy);
	log_escape(esc, sizeof esc, buf + drop.off, drop.len < 32 ? drop.len : 32);
	if (drop.n > 1)
		log_notice("%s via %s: PROXY v2 TLV %s left out of %s: %s (got \"%s\"%s), "
			   "and %u more", who, proxy, drop.tlv, drop.name, drop.why, esc,
			   drop.len > 32 ? "..." : "", drop.n - 1);
	else
		log_notice("%s via %s: PROXY v2 TLV %s left out of %s: %s (got \"%s\"%s)",
			   who, proxy, drop.tlv, drop.name, drop.why, esc,
			   drop.len > 32 ? "..." : "");
}

/* Looks at what has arrived; decides, or waits for more. */
void proxyq_readable(struct server *s, struct pconn *p, uint32_t events)
{
	unsigned char buf[PROXY_MAX];
	struct proxy_header h;
	struct peer via;
	ssize_t n;
	int r;

	/* An event from the same epoll_wait batch as a SIGTERM whose
	 * proxyq_stop already closed this connection: the record is spare. */
	if (p->in != &s->proxyq->reading)
		return;
	do
		n = recv(p->c.fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		n = 0;	/* nothing yet; events tell whether more can come */
	else if (n < 0) {
		refuse(s, p, &bad_log, strerror(errno), NULL, 0);
		return;
	}
	r = proxy_parse(buf, (size_t)n, &h);
	if (r == PROXY_INVALID) {
		char why[96];

		snprintf(why, sizeof why, "bad PROXY header: %s", h.why);
		refuse(s, p, &bad_log, why, buf, (size_t)n);
		return;
	}
	if (r == PROXY_NEED_MORE) {
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
			refuse(s, p, &bad_log, n ? "closed in the middle of its PROXY header" :
			       "closed before sending a PROXY header", n ? buf : NULL, (size_t)n);
			return;
		}
		if (!p->watched) {
			struct epoll_event ev = {
				.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = &p->kind };

			if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, p->c.fd, &ev) < 0) {
				refuse(s, p, &bad_log, strerror(errno), NULL, 0);
				return;
			}
			p->watched = true;
		}
		return;
	}
	if (consume(p->c.fd, h.len) < 0) {
		refuse(s, p, &bad_log, "lost while reading its PROXY header", NULL, 0);
		return;
	}
	unlink_from(&s->proxyq->reading, p);
	if (p->watched)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->c.fd, NULL);
	p->watched = false;
	via = p->c.remote;
	take_addresses(&p->c, &h);
	take_tlvs(&p->c, &via, &h, buf);
	hand_on(s, p);
}

/* Headers in progress one real peer may have: -C when set, else a
 * quarter of -c (at least one).  A real proxy sends its header with the
 * handshake, so its count stays near zero however busy it is. */
static unsigned pending_cap(const struct options *o)
{
	unsigned quarter = o->max_conns / 4;

	return o->max_per_source ? o->max_per_source : quarter ? quarter : 1;
}

/* Counted by walking the reading list (at most -c long, and near empty
 * unless headers are slow to come), keyed like -C: --source-prefix holds. */
static unsigned pending_from(const struct server *s, const struct peer *p)
{
	unsigned char want[TABLE_KEY_MAX], key[TABLE_KEY_MAX];
	unsigned n = 0;

	source_key(s->opt, p, want);
	for (const struct pconn *q = s->proxyq->reading.head; q; q = q->next) {
		source_key(s->opt, &q->c.remote, key);
		n += memcmp(key, want, TABLE_KEY_MAX) == 0;
	}
	return n;
}

/* A new connection on a --proxy-protocol listener (or an inherited one):
 * vet the real peer, then read its header. */
void proxyq_begin(struct server *s, struct conn_info *c)
{
	struct proxyq *q = s->proxyq;
	struct pconn *p = q->spare;

	if (!trusted(s, c)) {
		admit_refuse(s, c, &untrusted_log, "not in --proxy-from", NULL, 0);
		return;
	}
	if (pending_from(s, &c->remote) >= pending_cap(s->opt)) {
		admit_refuse(s, c, &busy_log, "too many PROXY headers in progress", NULL, 0);
		return;
	}
	if (p)
		q->spare = p->next;
	else if (!(p = malloc(sizeof *p))) {
		log_err("out of memory for a new connection; closed");
		close(c->fd);
		s->failed++;
		return;
	}
	memset(p, 0, sizeof *p);
	p->kind = EV_PROXY;
	p->c = *c;
	p->deadline_ms = mono_ms() + PROXY_TIMEOUT_MS;
	s->proxying++;
	push(&q->reading, p);
	/* The header usually came with the handshake: try it at once. */
	proxyq_readable(s, p, 0);
}

/* Timeouts, and connections whose header is in once a worker has room.
 * Returns the next header deadline (clock.h): the oldest reader's, as
 * they all have the same timeout. */
int64_t proxyq_tick(struct server *s)
{
	struct proxyq *q = s->proxyq;
	int64_t now;

	if (!q)
		return -1;
	now = mono_ms();
	while (q->reading.head && q->reading.head->deadline_ms <= now) {
		struct pconn *p = q->reading.head;

		refuse(s, p, &bad_log, "no complete PROXY header within 3 s", NULL, 0);
	}
	while (q->ready.head && (!s->pool || pool_ready(s)))
		pass_on(s, q->ready.head);
	return q->reading.head ? q->reading.head->deadline_ms : -1;
}

/* Stopping: connections that have not said who they are yet are not
 * running connections; they are closed, not drained. */
void proxyq_stop(struct server *s)
{
	struct proxyq *q = s->proxyq;
	unsigned n = 0;

	if (!q)
		return;
	for (struct plist *l = &q->reading; l; l = l == &q->reading ? &q->ready : NULL)
		while (l->head) {
			struct pconn *p = l->head;

			close(p->c.fd);
			release(s, p);
			n++;
		}
	if (n)
		log_notice("stopping: closed %u connection(s) still before their PROXY header", n);
}

void proxyq_free(struct server *s)
{
	struct proxyq *q = s->proxyq;

	if (!q)
		return;
	proxyq_stop(s);
	while (q->spare) {
		struct pconn *p = q->spare;

		q->spare = p->next;
		free(p);
	}
	free(q);
	s->proxyq = NULL;
}
