/*
 * accept.c - take connections off the listeners and hand each to a handler.
 *
 * Back-pressure keeps no queue of its own: at --max-conns the listeners
 * simply leave the epoll set and new connections wait in the kernel's
 * backlog until a handler exits.  When the process runs out of fds
 * (EMFILE/ENFILE) or memory, the listeners pause on a timer instead of
 * spinning on a readable socket that cannot be accepted.  A connection that
 * was accepted is always either handed to a handler or closed with a log
 * line - never dropped silently.
 */
#include "config.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"

#define ACCEPT_BATCH 32		/* per wake-up: keeps signals and reaping timely */
#define EXHAUSTED_PAUSE_MS 100	/* retry after EMFILE & co. */
#define SPAWN_FAIL_PAUSE_MS 100	/* retry after fork/spawn EAGAIN or ENOMEM */

static void arm(struct server *s, struct listener *l, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->kind };

	/* In a built-in's pool a worker answers the datagram sockets. */
	if (l->armed == on || l->fd < 0 || l->is_conn || (l->socktype == SOCK_DGRAM && s->pool))
		return;
	if (epoll_ctl(s->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, &ev) == 0)
		l->armed = on;
	else
		log_err("epoll_ctl on %s: %s", l->name, strerror(errno));
}

/* May one more connection be taken now?  Not when stopping or about to
 * reload, at -c (headers being read count), in an EMFILE pause, or with
 * no pool worker that has room. */
static bool may_accept(const struct server *s)
{
	return !s->stopping && !s->reload_wanted &&
	       s->active + s->proxying < s->opt->max_conns && !s->resume_at_ms &&
	       (!s->pool || pool_ready(s));
}

/* l's socket is now fd (per-peer gave the old one away): the old one
 * out of the poll set before the caller closes it - a handler's copy
 * would keep its registration, and its events, alive - the new one in
 * at the next accept_update. */
void accept_replace_fd(struct server *s, struct listener *l, int fd)
{
	arm(s, l, false);
	l->fd = fd;
}

/* Listeners are in the poll set exactly when nothing holds them back. */
void accept_update(struct server *s)
{
	bool want;

	if (s->resume_at_ms && mono_ms() >= s->resume_at_ms)
		s->resume_at_ms = 0;
	want = may_accept(s);
	for (int i = 0; i < s->n_lst; i++)
		arm(s, &s->lst[i], want && dgram_idle(&s->lst[i]));
}

/* The EMFILE pause (clock.h): over when its time comes. */
int64_t accept_tick(struct server *s)
{
	accept_update(s);
	return s->resume_at_ms ? s->resume_at_ms : -1;
}

static void pause_for(struct server *s, int ms, const char *why, int err)
{
	int64_t now = mono_ms();

	s->resume_at_ms = now + ms;
	/* At most one line a second, however hard the storm. */
	if (now - s->last_pause_log_ms >= 1000) {
		s->last_pause_log_ms = now;
		log_warn("%s: %s; pausing accept for %d ms", why, strerror(err), ms);
	}
	accept_update(s);
}

static void set_int(int fd, int level, int opt, unsigned v)
{
	int i = (int)v;

	setsockopt(fd, level, opt, &i, sizeof i);
}

/* -D and --keepalive on an accepted TCP connection; a timer left at 0
 * keeps the kernel's value. */
static void tcp_options(const struct options *o, int fd)
{
	if (o->nodelay)
		set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (!o->keepalive)
		return;
	set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	if (o->keepalive_idle)
		set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, o->keepalive_idle);
	if (o->keepalive_intvl)
		set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, o->keepalive_intvl);
	if (o->keepalive_cnt)
		set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, o->keepalive_cnt);
}

static void fill_conn(struct server *s, struct conn_info *c, int fd, struct listener *l,
		      const struct sockaddr_storage *ss, socklen_t sslen)
{
	struct sockaddr_storage peer;

	CONN_INFO_CLEAR(c);
	c->fd = fd;
	c->lst = l;
	if (!ss) {	/* an inherited connection: ask the socket */
		memset(&peer, 0, sizeof peer);
		sslen = sizeof peer;
		getpeername(fd, (struct sockaddr *)&peer, &sslen);
		ss = &peer;
	}
	addr_peer_from(&c->remote, (const struct sockaddr *)ss, sslen);
	if (l && l->fixed_local && l->local.family != AF_UNIX) {
		c->local = l->local;
	} else {
		struct sockaddr_storage loc;
		socklen_t len = sizeof loc;

		memset(&loc, 0, sizeof loc);
		if (getsockname(fd, (struct sockaddr *)&loc, &len) == 0)
			addr_peer_from(&c->local, (struct sockaddr *)&loc, len);
	}
	if (c->remote.family == AF_UNIX) {
		struct ucred uc;
		socklen_t len = sizeof uc;

		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0) {
			c->uid = uc.uid;
			c->gid = uc.gid;
			c->pid = uc.pid;
			memcpy(c->remote.raw, &uc.uid, sizeof uc.uid);	/* the source */
		}
	} else {
		tcp_options(s->opt, fd);
	}
}

/* Hands a described connection to a worker or a new handler, and closes
 * acceptd's copy: the peer must see EOF when its handler closes it.  A
 * connection the pool keeps for later (all workers busy) stays open and
 * comes back here from pool_flush.  Returns 0, or -1 if nothing took it. */
int accept_hand(struct server *s, struct conn_info *c)
{
	char who[ADDR_STRLEN];
	uint32_t cg = 0;
	pid_t pid = s->pool ? pool_dispatch(s, c) : spawn_handler(s, c, &cg);

	if (pid == 0)
		return 0;	/* kept by the pool until a worker has room */
	if (pid < 0) {
		static struct log_limit lim = { .what = "connections that could not be handed on" };
		int e = errno;

		source_release(s, &c->remote);
		close(c->fd);
		s->failed++;
		if (log_limited(&lim)) {
			addr_peer_format(&c->remote, who, sizeof who);
			log_err("%s: %s: %s; connection closed", who,
				s->pool ? "no worker took it" : "cannot start handler",
				strerror(e));
		}
		if (e == EAGAIN || e == ENOMEM)
			pause_for(s, SPAWN_FAIL_PAUSE_MS,
				  s->pool ? "handoff failed" : "handler start failed", e);
		return -1;
	}
	if (!s->pool)
		conns_track(s, pid, c, cg);
	close(c->fd);
	s->total++;
	s->idle_since_ms = 0;	/* --idle-exit: even if it ended already */
	if (log_enabled(LOG_LVL_INFO)) {
		addr_peer_format(&c->remote, who, sizeof who);
		if (c->rule)
			log_info("connection %s on %s %s %d (--rules line %u)", who,
				 c->lst ? c->lst->name : "?", s->pool ? "worker pid" : "pid",
				 (int)pid, c->rule->line);
		else
			log_info("connection %s on %s %s %d", who, c->lst ? c->lst->name : "?",
				 s->pool ? "worker pid" : "pid", (int)pid);
	}
	return 0;
}

/* An accepted (or inherited) connection fd: describe it, let admission
 * decide (after its PROXY header, if one is due), hand it on.  Returns -1
 * only when it was admitted and nothing could take it. */
int accept_serve(struct server *s, int fd, struct listener *l,
		 const struct sockaddr_storage *ss, socklen_t sslen)
{
	struct conn_info c;

	fill_conn(s, &c, fd, l, ss, sslen);
	if (s->opt->proxy_protocol) {
		proxyq_begin(s, &c);
		return 0;
	}
	if (!admit_conn(s, &c))
		return 0;
	return accept_hand(s, &c);
}

/* accept(2): these mean the one connection went away, or the network had a
 * hiccup; the listener itself is fine. */
static bool transient(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED ||
	       e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT || e == EHOSTDOWN ||
	       e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP || e == ENETUNREACH ||
	       e == EPERM;
}

void accept_ready(struct server *s, struct listener *l)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		int fd;

		if (!may_accept(s))
			break;
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (transient(errno))
				continue;
			pause_for(s, EXHAUSTED_PAUSE_MS, l->name, errno);
			break;
		}
		accept_serve(s, fd, l, &ss, len);
	}
	accept_update(s);
}
