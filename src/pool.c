/*
 * pool.c - the master's side of the worker pool.
 *
 * N long-lived workers each hold one end of a SOCK_SEQPACKET socketpair.
 * The master sends every accepted connection, fd and metadata in one
 * message (wire.c), to the ready worker with the fewest connections in
 * flight, and closes its own copy; the worker answers DONE when it has
 * closed the connection, which is when -c, the per-source counts and the
 * logs learn that it ended.
 *
 * Supervision: a worker that dies costs only the connections it held -
 * they are counted as failed and logged.  It is started again after a
 * delay that doubles with each death soon after start (capped), so a
 * worker that crashes at once costs a few forks a minute, never a storm.
 * A handoff that fails tries the next worker; with none left the
 * connection is closed with a log line, never dropped silently.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "fdpass.h"
#include "wire.h"

#define HEALTHY_MS 10000	/* a worker that lived this long resets back-off */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000
#define HELLO_TIMEOUT_MS 10000

enum wstate { W_DOWN, W_STARTING, W_READY, W_STOPPING };

struct worker {
	enum ev_kind kind;	/* EV_WORKER: first, for the event loop */
	int idx;
	enum wstate state;
	pid_t pid;
	pid_t last_pid;		/* for the log, after pid is reaped */
	int ch;			/* master's end of the channel, -1 if none */
	unsigned inflight;
	unsigned max;		/* the worker's own limit, 0 = none */
	unsigned fails;		/* deaths soon after start, in a row */
	bool full;		/* its channel's queue is full: wait for EPOLLOUT */
	int64_t started_ms;
	int64_t deadline_ms;	/* W_DOWN: respawn at; W_STARTING: hello by */
};

struct pool_conn {
	uint64_t id;
	int worker;
	struct peer remote;
	int64_t started_ms;
	int fd;			/* -t: our copy, to shut it down at the deadline */
};

struct pool {
	struct worker *w;
	int n;
	/* An accepted connection no worker had room for at that moment (a
	 * busy worker's channel full, or every worker at its max).  The
	 * listeners are out of the poll set while it waits, so there is never
	 * more than one; it goes first when room comes back. */
	struct conn_info pending;
	bool has_pending;
	uint64_t next_id;
	struct table *conns;	/* pool_conn by id */
	int64_t timeout_at_ms;	/* -t: earliest deadline to look at, 0 none */
};

static void id_key(uint64_t id, unsigned char key[TABLE_KEY_MAX])
{
	memset(key, 0, TABLE_KEY_MAX);
	memcpy(key, &id, sizeof id);
}

static void watch(struct server *s, struct worker *w, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

	if (w->ch >= 0)
		epoll_ctl(s->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->ch, &ev);
}

/* A full channel is watched for EPOLLOUT; any event on it clears the
 * mark, and the next send tells whether there is room again. */
static void set_full(struct server *s, struct worker *w, bool full)
{
	struct epoll_event ev = { .events = EPOLLIN | (full ? EPOLLOUT : 0), .data.ptr = w };

	if (w->full == full || w->ch < 0)
		return;
	w->full = full;
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, w->ch, &ev);
}

static void start_worker(struct server *s, struct worker *w)
{
	char hello[64];
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("worker %d: socketpair: %s", w->idx, strerror(errno));
		goto retry;
	}
	pid = s->opt->program ? spawn_worker(s, sv[1]) : worker_fork(s, sv[1]);
	close(sv[1]);
	if (pid < 0) {
		log_err("worker %d: cannot start: %s", w->idx, strerror(errno));
		close(sv[0]);
		goto retry;
	}
	w->pid = w->last_pid = pid;
	w->ch = sv[0];
	w->state = W_STARTING;
	w->inflight = 0;
	w->full = false;
	w->started_ms = mono_ms();
	w->deadline_ms = w->started_ms + HELLO_TIMEOUT_MS;
	watch(s, w, true);
	wire_format_hello(hello, sizeof hello, WIRE_VERSION, 0);
	fdpass_send(w->ch, hello, strlen(hello), -1);
	return;
retry:
	w->fails++;
	w->state = W_DOWN;
	w->deadline_ms = mono_ms() + BACKOFF_MAX_MS;
}

int pool_init(struct server *s)
{
	struct pool *p = calloc(1, sizeof *p);

	if (!p)
		return -1;
	s->pool = p;
	p->n = (int)s->opt->workers;
	if (p->n <= 0)
		p->n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (p->n <= 0)
		p->n = 1;
	p->w = calloc((size_t)p->n, sizeof *p->w);
	p->conns = table_new((size_t)s->opt->max_conns + 1, sizeof(struct pool_conn));
	if (!p->w || !p->conns)
		return -1;
	for (int i = 0; i < p->n; i++) {
		p->w[i].kind = EV_WORKER;
		p->w[i].idx = i;
		p->w[i].ch = -1;
		start_worker(s, &p->w[i]);
	}
	return 0;
}

/* A ready worker below its own limit exists.  Without one the listeners
 * leave the poll set: new connections wait in the backlog, as at -c. */
bool pool_ready(const struct server *s)
{
	if (s->pool->has_pending)
		return false;
	for (int i = 0; i < s->pool->n; i++) {
		const struct worker *w = &s->pool->w[i];

		if (w->state == W_READY && !w->full && (w->max == 0 || w->inflight < w->max))
			return true;
	}
	return false;
}

/* The ready worker with the fewest connections in flight, below its own
 * limit; -1 if there is none.  skip: a worker that just refused. */
static int pick(const struct pool *p, const bool *skip)
{
	int best = -1;

	for (int i = 0; i < p->n; i++) {
		const struct worker *w = &p->w[i];

		if (w->state != W_READY || skip[i] || w->full || (w->max && w->inflight >= w->max))
			continue;
		if (best < 0 || w->inflight < p->w[best].inflight)
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

static void worker_lost(struct server *s, struct worker *w, const char *why);

/* Hands c to a worker.  Returns the worker's pid; 0 when the connection
 * was kept to wait for room (pool_flush sends it on; the caller must not
 * close it); or -1 with errno set when no worker can take it (the caller
 * closes the connection). */
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

static void expire_conns(struct server *s)
{
	struct expiry e = { .s = s, .now = mono_ms() };

	if (!s->pool->timeout_at_ms || e.now < s->pool->timeout_at_ms)
		return;
	table_each(s->pool->conns, expire_one, &e);
	s->pool->timeout_at_ms = e.next;
}

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
	len = wire_format_conn(msg, sizeof msg, &m);
	if (len < 0)
		return errno = EMSGSIZE, -1;
	while ((i = pick(p, skip)) >= 0) {
		struct worker *w = &p->w[i];
		unsigned char key[TABLE_KEY_MAX];
		struct pool_conn *pc;

		if (fdpass_send(w->ch, msg, (size_t)len, c->fd) < 0) {
			skip[i] = true;
			if (errno == EAGAIN || errno == ENOBUFS || errno == ETOOMANYREFS)
				set_full(s, w, true);	/* busy, not broken */
			else
				worker_lost(s, w, strerror(errno));
			continue;
		}
		id_key(id, key);
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
	if (!p->has_pending && !s->stopping && pool_alive(s) > 0) {
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
		const struct worker *w = &p->w[i];

		if (w->state == W_READY && !w->full && (w->max == 0 || w->inflight < w->max)) {
			c = p->pending;
			p->has_pending = false;
			accept_hand(s, &c);
			return;
		}
	}
}

/* Stopping: a connection no worker took yet will not be taken. */
static void drop_pending(struct server *s)
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
	struct worker *w;

	id_key(id, key);
	pc = table_get(s->pool->conns, key);
	if (!pc)
		return;	/* unknown or already counted: never twice */
	w = &s->pool->w[pc->worker];
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
	struct worker *w;
	unsigned foreign;
};

static void on_done(uint64_t id, void *arg)
{
	struct done_ctx *dc = arg;
	unsigned char key[TABLE_KEY_MAX];
	const struct pool_conn *pc;

	id_key(id, key);
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

/* The connections a dead worker held are gone with it: count each. */
static void fail_inflight(struct server *s, struct worker *w)
{
	struct lost_ctx lc = { .worker = w->idx };

	if (w->inflight == 0)
		return;
	lc.ids = calloc(table_count(s->pool->conns), sizeof *lc.ids);
	if (!lc.ids)
		return;
	table_each(s->pool->conns, collect_lost, &lc);
	for (size_t i = 0; i < lc.n; i++)
		conn_ended(s, lc.ids[i], true);
	free(lc.ids);
}

static void worker_lost(struct server *s, struct worker *w, const char *why)
{
	if (w->ch < 0)
		return;
	watch(s, w, false);
	close(w->ch);
	w->ch = -1;
	if (w->pid == 0)
		return;		/* already reaped; pool_reaped logs the death */
	if (s->stopping) {	/* expected: it finished and is exiting */
		log_info("worker %d pid %d: %s", w->idx, (int)w->pid, why);
		return;
	}
	log_warn("worker %d pid %d: %s", w->idx, (int)w->pid, why);
	if (w->pid > 0)
		kill(w->pid, SIGKILL);	/* reaped, and respawned, in pool_reaped */
	w->state = W_STOPPING;
}

static void on_message(struct server *s, struct worker *w, const char *msg, size_t len)
{
	unsigned version, max;

	switch (wire_verb(msg, len)) {
	case WIRE_HELLO:
		if (w->state != W_STARTING)
			break;
		if (wire_parse_hello(msg, len, &version, &max) < 0 || version != WIRE_VERSION) {
			char esc[128];

			log_escape(esc, sizeof esc, msg, len);
			log_err("worker %d pid %d: protocol mismatch: acceptd speaks version %d, "
				"worker said '%s'", w->idx, (int)w->pid, WIRE_VERSION, esc);
			worker_lost(s, w, "stopped: wrong protocol version");
			break;
		}
		w->state = W_READY;
		w->max = max;
		log_info("worker %d pid %d ready", w->idx, (int)w->pid);
		break;
	case WIRE_DONE: {
		struct done_ctx dc = { .s = s, .w = w };

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

void pool_readable(struct server *s, struct worker *w)
{
	static char bufs[DONE_RECV_BATCH][WIRE_MSG_MAX];
	struct fdpass_msg m[DONE_RECV_BATCH];

	if (w->full)
		set_full(s, w, false);	/* maybe room again: the next send says */
	for (int i = 0; i < DONE_RECV_BATCH; i++) {
		m[i].buf = bufs[i];
		m[i].cap = sizeof bufs[i];
	}
	/* A dead worker's backlog is read whole; a live one's in slices.
	 * One recvmmsg takes all that is queued: fewer than asked for means
	 * the queue is empty, so no extra call just to see EAGAIN. */
	for (int turn = 0; (turn < 4 || w->pid == 0) && w->ch >= 0; turn++) {
		int n = fdpass_recv_many(w->ch, m, DONE_RECV_BATCH, MSG_DONTWAIT), i;

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			worker_lost(s, w, n == 0 ? "closed its channel" : strerror(errno));
			return;
		}
		for (i = 0; i < n && w->ch >= 0; i++) {
			if (m[i].fd >= 0)
				close(m[i].fd);	/* workers send no fds */
			m[i].fd = -1;
			if (m[i].len <= 0) {
				worker_lost(s, w, m[i].len == 0 ? "closed its channel" :
					    strerror(m[i].err));
				break;
			}
			on_message(s, w, m[i].buf, (size_t)m[i].len);
		}
		for (; i < n; i++)
			if (m[i].fd >= 0)
				close(m[i].fd);
		if (n < DONE_RECV_BATCH)
			return;
	}
}

/* The delay before a worker's restart after fails deaths in a row soon
 * after start: none after a healthy run, then 100 ms doubling up to 30 s.
 * A function of its own so that the unit tests can reach the cap, which a
 * crash loop only reaches after some 50 s. */
unsigned pool_backoff_ms(unsigned fails)
{
	unsigned delay;

	if (fails == 0)
		return 0;
	/* The shift stops at 9 (51.2 s, over the cap): no overflow however
	 * many deaths there were. */
	delay = BACKOFF_FIRST_MS << (fails > 9 ? 9 : fails - 1);
	return delay < BACKOFF_MAX_MS ? delay : BACKOFF_MAX_MS;
}

/* A reaped pid: ours if it was a worker.  Returns false otherwise. */
bool pool_reaped(struct server *s, pid_t pid, int status)
{
	struct pool *p = s->pool;

	for (int i = 0; p && i < p->n; i++) {
		struct worker *w = &p->w[i];
		int64_t lived;
		unsigned delay;

		if (w->pid != pid)
			continue;
		lived = mono_ms() - w->started_ms;
		/* It may have said DONE just before dying, and we may reap
		 * before reading that: read what it left, then count the rest
		 * as lost.  pid 0 first: the number is free for reuse now. */
		w->pid = 0;
		if (w->ch >= 0)
			pool_readable(s, w);
		if (w->ch >= 0) {
			watch(s, w, false);
			close(w->ch);
			w->ch = -1;
		}
		/* Serving one inherited connection, this worker was its
		 * handler: its death is the exit status, as a PROGRAM's is. */
		if (w->inflight)
			s->exit_status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) :
					 WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
		fail_inflight(s, w);
		w->fails = lived >= HEALTHY_MS ? 0 : w->fails + 1;
		delay = pool_backoff_ms(w->fails);
		w->state = W_DOWN;
		w->deadline_ms = mono_ms() + delay;
		if (!s->stopping || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (WIFSIGNALED(status))
				log_warn("worker %d pid %d killed by signal %d after %.1fs; "
					 "restarting in %u ms", i, (int)pid, WTERMSIG(status),
					 (double)lived / 1000.0, delay);
			else
				log_warn("worker %d pid %d exited with status %d after %.1fs; "
					 "restarting in %u ms", i, (int)pid, WEXITSTATUS(status),
					 (double)lived / 1000.0, delay);
		}
		return true;
	}
	return false;
}

/* Timers: respawns that are due, hellos that never came, -t.  Returns
 * the next deadline (clock.h), read after acting: a worker started here
 * now waits for its HELLO. */
int64_t pool_tick(struct server *s)
{
	int64_t now = mono_ms(), at;

	if (!s->pool)
		return -1;
	expire_conns(s);
	at = s->pool->timeout_at_ms ? s->pool->timeout_at_ms : -1;
	for (int i = 0; i < s->pool->n; i++) {
		struct worker *w = &s->pool->w[i];

		if (w->state == W_DOWN && !s->stopping && now >= w->deadline_ms)
			start_worker(s, w);
		else if (w->state == W_STARTING && now >= w->deadline_ms)
			worker_lost(s, w, "no HELLO within 10 s");
		if ((w->state == W_DOWN && !s->stopping) || w->state == W_STARTING)
			at = deadline_earlier(at, w->deadline_ms);
	}
	return at;
}

/* Drain: no new connections; each worker finishes what it holds. */
void pool_stop(struct server *s)
{
	static const char stop[] = "STOP";

	if (s->pool)
		drop_pending(s);
	for (int i = 0; s->pool && i < s->pool->n; i++)
		if (s->pool->w[i].ch >= 0)
			fdpass_send(s->pool->w[i].ch, stop, sizeof stop - 1, -1);
}

void pool_signal_all(struct server *s, int sig)
{
	for (int i = 0; s->pool && i < s->pool->n; i++)
		if (s->pool->w[i].pid > 0)
			kill(s->pool->w[i].pid, sig);
}

unsigned pool_alive(const struct server *s)
{
	unsigned n = 0;

	for (int i = 0; s->pool && i < s->pool->n; i++)
		n += s->pool->w[i].pid > 0;
	return n;
}

/* A connection waiting inside acceptd for a worker with room. */
bool pool_holding(const struct server *s)
{
	return s->pool && s->pool->has_pending;
}

/* Reload, just before the exec.  A unix socket closed with messages still
 * unread in its own queue resets its peer: the worker's next read fails
 * with ECONNRESET, and a worker that takes that as the end - ours did -
 * never reads the CONN messages still queued for it, so those clients get
 * a reset.  Shutting our receiving side first makes the workers' further
 * DONEs fail at their end instead of queueing here; what is already queued
 * is read (and counted) now, so the exec closes an empty socket cleanly and
 * each old worker reads every CONN sent to it before its end of file. */
void pool_seal(struct server *s)
{
	static char bufs[DONE_RECV_BATCH][WIRE_MSG_MAX];
	struct fdpass_msg m[DONE_RECV_BATCH];

	for (int i = 0; i < DONE_RECV_BATCH; i++) {
		m[i].buf = bufs[i];
		m[i].cap = sizeof bufs[i];
	}
	for (int i = 0; s->pool && i < s->pool->n; i++) {
		struct worker *w = &s->pool->w[i];
		int n = DONE_RECV_BATCH;

		if (w->ch < 0)
			continue;
		shutdown(w->ch, SHUT_RD);
		while (n == DONE_RECV_BATCH) {
			n = fdpass_recv_many(w->ch, m, DONE_RECV_BATCH, MSG_DONTWAIT);
			for (int j = 0; j < n; j++) {
				if (m[j].fd >= 0)
					close(m[j].fd);
				if (m[j].len > 0)
					on_message(s, w, m[j].buf, (size_t)m[j].len);
				else
					n = 0;	/* end of the queue */
			}
		}
	}
}

/* The exec failed after pool_seal: no DONE can reach us from these
 * workers any more.  They are retired the way a new image takes them
 * over - told to stop, their connections counted until they exit - and
 * fresh workers start in their place. */
void pool_unseal(struct server *s)
{
	static const char stop[] = "STOP";
	struct pool *p = s->pool;

	for (int i = 0; p && i < p->n; i++) {
		struct worker *w = &p->w[i];
		struct lost_ctx lc = { .worker = i };

		if (w->ch < 0)
			continue;
		fdpass_send(w->ch, stop, sizeof stop - 1, -1);
		watch(s, w, false);
		close(w->ch);
		w->ch = -1;
		if (w->pid > 0) {
			conns_adopt_worker(s, w->pid);
			lc.ids = w->inflight ? calloc(table_count(p->conns), sizeof *lc.ids) : NULL;
			if (lc.ids)
				table_each(p->conns, collect_lost, &lc);
			for (size_t j = 0; j < lc.n; j++) {
				unsigned char key[TABLE_KEY_MAX];
				struct pool_conn *pc;

				id_key(lc.ids[j], key);
				pc = table_get(p->conns, key);
				conns_adopt_held(s, w->pid, &pc->remote);	/* counts it again */
				source_release(s, &pc->remote);
				s->active--;
				if (pc->fd >= 0)
					close(pc->fd);
				table_del(p->conns, key);
			}
			free(lc.ids);
		}
		w->pid = 0;
		w->inflight = 0;
		w->state = W_DOWN;
		w->deadline_ms = mono_ms();
	}
}

struct save_ctx {
	FILE *f;
	int worker;
};

static void save_conn(void *rec, void *arg)
{
	const struct pool_conn *pc = rec;
	struct save_ctx *sc = arg;

	if (pc->worker != sc->worker)
		return;
	fputs("held ", sc->f);
	reload_format_peer(sc->f, &pc->remote);
	fputc('\n', sc->f);
}

/* reload.c's hand-over: each live worker and the connections it holds.
 * The new image counts them until that worker exits. */
void pool_save(struct server *s, FILE *f)
{
	for (int i = 0; s->pool && i < s->pool->n; i++) {
		struct worker *w = &s->pool->w[i];
		struct save_ctx sc = { .f = f, .worker = i };

		if (w->pid <= 0)
			continue;
		fprintf(f, "worker %d %u\n", (int)w->pid, w->inflight);
		table_each(s->pool->conns, save_conn, &sc);
	}
}
