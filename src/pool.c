/*
 * pool.c - the master's side of the worker pool: dispatch (pool.h says
 * what poolsup.c does).
 *
 * N long-lived workers each hold one end of a SOCK_SEQPACKET socketpair.
 * The master sends every accepted connection, fd and metadata in one
 * message (wire.c), to the ready worker with the fewest connections in
 * flight, and closes its own copy; the worker answers DONE when it has
 * closed the connection, which is when -c, the per-source counts and the
 * logs learn that it ended.  A worker that dies costs only the
 * connections it held: they are counted as failed and logged.  A handoff
 * that fails tries the next worker; with none left the connection is
 * closed with a log line, never dropped silently.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "pool.h"

void pool_watch(struct server *s, struct wslot *w, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

	if (w->ch >= 0)
		epoll_ctl(s->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->ch, &ev);
}

/* A full channel is watched for EPOLLOUT; any event on it clears the
 * mark, and the next send tells whether there is room again. */
static void set_full(struct server *s, struct wslot *w, bool full)
{
	struct epoll_event ev = { .events = EPOLLIN | (full ? EPOLLOUT : 0), .data.ptr = w };

	if (w->full == full || w->ch < 0)
		return;
	w->full = full;
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, w->ch, &ev);
}

/* A ready worker below its own limit exists.  Without one the listeners
 * leave the poll set: new connections wait in the backlog, as at -c. */
bool pool_ready(const struct server *s)
{
	if (s->pool->has_pending)
		return false;
	for (int i = 0; i < s->pool->n; i++)
		if (wslot_has_room(&s->pool->slot[i]))
			return true;
	return false;
}

/* The ready worker with the fewest connections in flight, below its own
 * limit; -1 if there is none.  skip: a worker that just refused. */
static int pick(const struct pool *p, const bool *skip)
{
	int best = -1;

	for (int i = 0; i < p->n; i++) {
		const struct wslot *w = &p->slot[i];

		if (skip[i] || !wslot_has_room(w))
			continue;
		if (best < 0 || w->inflight < p->slot[best].inflight)
			best = i;
	}
	return best;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	if (n >= len)
		n = len - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Appends one variable to m's env: "NAME=value", or "NAME" for
 * value NULL (unset).  Silently full: the message check catches it. */
static void env_put(struct wire_conn *m, const char *name, const char *value)
{
	size_t room = sizeof m->env - m->env_len;
	int n = value ? snprintf(m->env + m->env_len, room, "%s=%s", name, value) :
		snprintf(m->env + m->env_len, room, "%s", name);

	if (n >= 0 && (size_t)n < room)
		m->env_len += (size_t)n + 1;
}

/* A persistent worker's variables: the PROXY TLVs', then the rule's,
 * which win for a name both give (acceptd-workers(7)). */
static void env_to_wire(const struct conn_info *c, struct wire_conn *m, bool tlvs)
{
	m->env_len = 0;
	if (tlvs && c->xenv_len <= sizeof m->env) {
		memcpy(m->env, c->xenv, c->xenv_len);
		m->env_len = c->xenv_len;
	}
	for (unsigned i = 0; c->rule && i < c->rule->n_vars; i++)
		env_put(m, c->rule->vars[i].name, c->rule->vars[i].value);
}

static void to_wire(const struct conn_info *c, uint64_t id, struct wire_conn *m)
{
	m->id = id;
	m->unix_peer = c->remote.family == AF_UNIX;
	copy_str(m->local_ip, sizeof m->local_ip, c->local.ip);
	m->local_port = c->local.port;
	copy_str(m->remote_ip, sizeof m->remote_ip, c->remote.ip);
	m->remote_port = c->remote.port;
	m->uid = (unsigned)c->uid;
	m->gid = (unsigned)c->gid;
	m->pid = (int)c->pid;
	m->connnum = c->connnum;
	if (c->lst)
		copy_str(m->listener, sizeof m->listener, c->lst->name);
	else
		addr_peer_format(&c->local, m->listener, sizeof m->listener);
}

/* -t in the pool: the worker owns the connection, so the master keeps a
 * copy of the fd and, at the deadline, shuts the socket down both ways.
 * The worker then sees EOF (or EPIPE), closes it and says DONE - a
 * built-in at once, a persistent worker as soon as it looks.  No signal:
 * the worker serves others too. */
static void keep_for_timeout(struct server *s, struct pool_conn *pc, int fd)
{
	int64_t at = pc->started_ms + (int64_t)s->opt->timeout_secs * 1000;

	pc->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (pc->fd < 0) {
		log_warn("cannot keep a copy of a connection for --timeout: %s", strerror(errno));
		return;
	}
	if (!s->pool->timeout_at_ms || at < s->pool->timeout_at_ms)
		s->pool->timeout_at_ms = at;
}

struct expiry {
	struct server *s;
	int64_t now, next;
};

static void expire_one(void *rec, void *arg)
{
	struct pool_conn *pc = rec;
	struct expiry *e = arg;
	int64_t at = pc->started_ms + (int64_t)e->s->opt->timeout_secs * 1000;
	char who[ADDR_STRLEN];

	if (pc->fd < 0)
		return;
	if (at <= e->now) {
		addr_peer_format(&pc->remote, who, sizeof who);
		log_notice("%s: open for %.1f s, over --timeout; shutting it down", who,
			   (double)(e->now - pc->started_ms) / 1000.0);
		shutdown(pc->fd, SHUT_RDWR);
		close(pc->fd);
		pc->fd = -1;
	} else if (!e->next || at < e->next) {
		e->next = at;
	}
}

/* -t on the connections workers hold; returns the next deadline. */
int64_t pool_expire(struct server *s)
{
	struct expiry e = { .s = s, .now = mono_ms() };

	if (s->pool->timeout_at_ms && e.now >= s->pool->timeout_at_ms) {
		table_each(s->pool->conns, expire_one, &e);
		s->pool->timeout_at_ms = e.next;
	}
	return s->pool->timeout_at_ms ? s->pool->timeout_at_ms : -1;
}

/* Hands c to a worker.  Returns the worker's pid; 0 when the connection
 * was kept to wait for room (pool_flush sends it on; the caller must not
 * close it); or -1 with errno set when no worker can take it (the caller
 * closes the connection). */
pid_t pool_dispatch(struct server *s, const struct conn_info *c)
{
	struct pool *p = s->pool;
	bool skip[p->n];
	char msg[WIRE_MSG_MAX];
	struct wire_conn m;
	uint64_t id = ++p->next_id;
	int i, len;

	memset(skip, 0, sizeof skip);
	to_wire(c, id, &m);
	m.env_len = 0;	/* built-in workers have no use for variables */
	if (s->opt->fd_passing)
		env_to_wire(c, &m, true);
	len = wire_format_conn(msg, sizeof msg, &m);
	if (len < 0 && c->xenv_len) {
		/* The rule's variables always fit (rulesfile.c): the TLVs
		 * made it too long.  The connection goes without them. */
		static struct log_limit lim = { .what = "PROXY TLVs left out" };
		char who[ADDR_STRLEN];

		if (log_limited(&lim)) {
			addr_peer_format(&c->remote, who, sizeof who);
			log_warn("%s: PROXY TLV variables left out: too long for the worker's "
				 "connection message", who);
		}
		env_to_wire(c, &m, false);
		len = wire_format_conn(msg, sizeof msg, &m);
	}
	if (len < 0)
		return errno = EMSGSIZE, -1;
	while ((i = pick(p, skip)) >= 0) {
		struct wslot *w = &p->slot[i];
		unsigned char key[TABLE_KEY_MAX];
		struct pool_conn *pc;

		if (fdpass_send(w->ch, msg, (size_t)len, c->fd) < 0) {
			skip[i] = true;
			if (errno == EAGAIN || errno == ENOBUFS || errno == ETOOMANYREFS)
				set_full(s, w, true);	/* busy, not broken */
			else
				poolsup_lost(s, w, strerror(errno));
			continue;
		}
		pool_id_key(id, key);
		pc = table_put(p->conns, key);
		if (pc) {
			pc->id = id;
			pc->worker = i;
			pc->remote = c->remote;
			pc->started_ms = mono_ms();
			pc->fd = -1;
			if (s->opt->timeout_secs)
				keep_for_timeout(s, pc, c->fd);
		}
		w->inflight++;
		s->active++;
		return w->pid;
	}
	if (!p->has_pending && !s->stopping && poolsup_alive(s) > 0) {
		p->pending = *c;
		p->has_pending = true;
		return 0;
	}
	return errno = EAGAIN, -1;
}

/* Sends the waiting connection on, if a worker has room now. */
void pool_flush(struct server *s)
{
	struct pool *p = s->pool;
	struct conn_info c;

	if (!p || !p->has_pending)
		return;
	for (int i = 0; i < p->n; i++) {
		if (wslot_has_room(&p->slot[i])) {
			c = p->pending;
			p->has_pending = false;
			accept_hand(s, &c);
			return;
		}
	}
}

/* Stopping: a connection no worker took yet will not be taken. */
void pool_drop_pending(struct server *s)
{
	struct pool *p = s->pool;
	char who[ADDR_STRLEN];

	if (!p->has_pending)
		return;
	p->has_pending = false;
	addr_peer_format(&p->pending.remote, who, sizeof who);
	log_warn("%s: closed: stopping before a worker had room for it", who);
	source_release(s, &p->pending.remote);
	close(p->pending.fd);
	s->failed++;
}

static void conn_ended(struct server *s, uint64_t id, bool failed)
{
	unsigned char key[TABLE_KEY_MAX];
	struct pool_conn *pc;
	char who[ADDR_STRLEN];
	struct wslot *w;

	pool_id_key(id, key);
	pc = table_get(s->pool->conns, key);
	if (!pc)
		return;	/* unknown or already counted: never twice */
	w = &s->pool->slot[pc->worker];
	if (failed || log_enabled(LOG_LVL_INFO))
		addr_peer_format(&pc->remote, who, sizeof who);
	if (failed) {
		s->failed++;
		log_warn("%s: connection lost with worker pid %d", who, (int)w->last_pid);
	} else {
		log_info("end %s worker pid %d after %.3fs", who, (int)w->last_pid,
			 (double)(mono_ms() - pc->started_ms) / 1000.0);
	}
	source_release(s, &pc->remote);
	if (pc->fd >= 0)
		close(pc->fd);
	table_del(s->pool->conns, key);
	if (w->inflight)
		w->inflight--;
	s->active--;
}

/* A DONE counts only for a connection its sender holds: ids are
 * sequential, and a buggy or hostile worker must not release the -c/-C
 * counts of another worker's connections or close the master's copy that
 * -t needs to end them. */
struct done_ctx {
	struct server *s;
	struct wslot *w;
	unsigned foreign;
};

static void on_done(uint64_t id, void *arg)
{
	struct done_ctx *dc = arg;
	unsigned char key[TABLE_KEY_MAX];
	const struct pool_conn *pc;

	pool_id_key(id, key);
	pc = table_get(dc->s->pool->conns, key);
	if (pc && pc->worker != dc->w->idx) {
		dc->foreign++;
		return;
	}
	conn_ended(dc->s, id, false);
}

struct lost_ctx {
	int worker;
	uint64_t *ids;
	size_t n;
};

static void collect_lost(void *rec, void *arg)
{
	const struct pool_conn *pc = rec;
	struct lost_ctx *lc = arg;

	if (pc->worker == lc->worker)
		lc->ids[lc->n++] = pc->id;
}

/* The ids of the connections w holds, *n of them, in a new array (NULL
 * when it holds none, or out of memory). */
uint64_t *pool_held_ids(struct server *s, const struct wslot *w, size_t *n)
{
	struct lost_ctx lc = { .worker = w->idx };

	*n = 0;
	if (w->inflight == 0)
		return NULL;
	lc.ids = calloc(table_count(s->pool->conns), sizeof *lc.ids);
	if (lc.ids)
		table_each(s->pool->conns, collect_lost, &lc);
	*n = lc.n;
	return lc.ids;
}

/* The connections a dead worker held are gone with it: count each. */
void pool_fail_held(struct server *s, struct wslot *w)
{
	size_t n;
	uint64_t *ids = pool_held_ids(s, w, &n);

	for (size_t i = 0; i < n; i++)
		conn_ended(s, ids[i], true);
	free(ids);
}

/* What a worker says: HELLO once, then DONEs (later verbs are ignored). */
void pool_on_message(struct server *s, struct wslot *w, const char *msg, size_t len)
{
	unsigned version, max;

	switch (wire_verb(msg, len)) {
	case WIRE_HELLO:
		if (w->state != WS_STARTING)
			break;
		if (wire_parse_hello(msg, len, &version, &max) < 0 || version != WIRE_VERSION) {
			char esc[128];

			log_escape(esc, sizeof esc, msg, len);
			log_err("worker %d pid %d: protocol mismatch: acceptd speaks version %d, "
				"worker said '%s'", w->idx, (int)w->pid, WIRE_VERSION, esc);
			poolsup_lost(s, w, "stopped: wrong protocol version");
			break;
		}
		w->state = WS_READY;
		w->max = max;
		log_info("worker %d pid %d ready", w->idx, (int)w->pid);
		break;
	case WIRE_DONE: {
		struct done_ctx dc = { .s = s, .w = w };

		/* Any DONE is activity; one without ids is worker 0 saying it
		 * answered datagrams (wdgram.c): --idle-exit starts over. */
		s->idle_since_ms = 0;
		if (wire_parse_done(msg, len, on_done, &dc) < 0)
			log_warn("worker %d pid %d: malformed DONE", w->idx, (int)w->pid);
		if (dc.foreign)
			log_warn("worker %d pid %d: DONE for %u connection(s) of other workers: "
				 "ignored", w->idx, (int)w->pid, dc.foreign);
		break;
	}
	default:
		break;	/* unknown verbs are for later versions */
	}
}

#define DONE_RECV_BATCH 16

/* The receive buffers of the master's channels (and of a built-in
 * worker's: worker.c), set up once per process. */
struct fdpass_msg *pool_recv_batch(void)
{
	static char bufs[FDPASS_BATCH][WIRE_MSG_MAX];
	static struct fdpass_msg m[FDPASS_BATCH];

	if (!m[0].buf)
		for (int i = 0; i < FDPASS_BATCH; i++) {
			m[i].buf = bufs[i];
			m[i].cap = sizeof bufs[i];
		}
	return m;
}

void pool_readable(struct server *s, struct wslot *w)
{
	struct fdpass_msg *m = pool_recv_batch();

	if (w->full)
		set_full(s, w, false);	/* maybe room again: the next send says */
	/* A dead worker's backlog is read whole; a live one's in slices.
	 * One recvmmsg takes all that is queued: fewer than asked for means
	 * the queue is empty, so no extra call just to see EAGAIN. */
	for (int turn = 0; (turn < 4 || w->pid == 0) && w->ch >= 0; turn++) {
		int n = fdpass_recv_many(w->ch, m, DONE_RECV_BATCH, MSG_DONTWAIT), i;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			poolsup_lost(s, w, n == 0 ? "closed its channel" : strerror(errno));
			return;
		}
		for (i = 0; i < n && w->ch >= 0; i++) {
			if (m[i].fd >= 0)
				close(m[i].fd);	/* workers send no fds */
			m[i].fd = -1;
			if (m[i].len <= 0) {
				poolsup_lost(s, w, m[i].len == 0 ? "closed its channel" :
					    strerror(m[i].err));
				break;
			}
			pool_on_message(s, w, m[i].buf, (size_t)m[i].len);
		}
		for (; i < n; i++)
			if (m[i].fd >= 0)
				close(m[i].fd);
		if (n < DONE_RECV_BATCH)
			return;
	}
}

/* A connection waiting inside acceptd for a worker with room. */
bool pool_holding(const struct server *s)
{
	return s->pool && s->pool->has_pending;
}
