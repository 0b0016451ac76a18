/*
 * poolsup.c - supervising the pool's workers (pool.h says what pool.c
 * does): starting each, waiting for its HELLO, restarting it when it dies,
 * stopping them, and handing them over at a reload.
 *
 * A worker that dies is started again after a delay that doubles with
 * each death soon after start (capped), so a worker that crashes at once
 * costs a few forks a minute, never a storm; one that ran a while starts
 * again at once.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool.h"

#define HEALTHY_MS 10000	/* a worker that lived this long resets back-off */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 30000

static void start_worker(struct server *s, struct wslot *w)
{
	char hello[64];
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("worker %d: socketpair: %s", w->idx, strerror(errno));
		goto retry;
	}
	pid = s->opt->program ? spawn_worker(s, sv[1], &w->cg) :
	      worker_fork(s, sv[1], w->idx == 0, &w->cg);
	close(sv[1]);
	if (pid < 0) {
		log_err("worker %d: cannot start: %s", w->idx, strerror(errno));
		close(sv[0]);
		goto retry;
	}
	w->pid = w->last_pid = pid;
	w->ch = sv[0];
	w->state = WS_STARTING;
	w->inflight = 0;
	w->full = false;
	w->started_ms = mono_ms();
	w->deadline_ms = w->started_ms + HELLO_TIMEOUT_MS;
	pool_watch(s, w, true);
	wire_format_hello(hello, sizeof hello, WIRE_VERSION, 0);
	fdpass_send(w->ch, hello, strlen(hello), -1);
	return;
retry:
	w->fails++;
	w->state = WS_DOWN;
	w->deadline_ms = mono_ms() + BACKOFF_MAX_MS;
}

int poolsup_init(struct server *s)
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
	p->slot = calloc((size_t)p->n, sizeof *p->slot);
	p->conns = table_new((size_t)s->opt->max_conns + 1, sizeof(struct pool_conn));
	if (!p->slot || !p->conns)
		return -1;
	for (int i = 0; i < p->n; i++) {
		p->slot[i].kind = EV_WORKER;
		p->slot[i].idx = i;
		p->slot[i].ch = -1;
		start_worker(s, &p->slot[i]);
	}
	return 0;
}

/* The delay before a worker's restart after fails deaths in a row soon
 * after start: none after a healthy run, then 100 ms doubling up to 30 s.
 * A function of its own so that the unit tests can reach the cap, which a
 * crash loop only reaches after some 50 s. */
unsigned poolsup_backoff_ms(unsigned fails)
{
	unsigned delay;

	if (fails == 0)
		return 0;
	/* The shift stops at 9 (51.2 s, over the cap): no overflow however
	 * many deaths there were. */
	delay = BACKOFF_FIRST_MS << (fails > 9 ? 9 : fails - 1);
	return delay < BACKOFF_MAX_MS ? delay : BACKOFF_MAX_MS;
}

/* A worker that broke its side of the protocol, or whose channel failed:
 * killed, and restarted when reaped. */
void poolsup_lost(struct server *s, struct wslot *w, const char *why)
{
	if (w->ch < 0)
		return;
	pool_watch(s, w, false);
	close(w->ch);
	w->ch = -1;
	if (w->pid == 0)
		return;		/* already reaped; poolsup_reaped logs the death */
	if (s->stopping) {	/* expected: it finished and is exiting */
		log_info("worker %d pid %d: %s", w->idx, (int)w->pid, why);
		return;
	}
	log_warn("worker %d pid %d: %s", w->idx, (int)w->pid, why);
	if (w->pid > 0)
		kill(w->pid, SIGKILL);	/* reaped, and respawned, in poolsup_reaped */
	w->state = WS_STOPPING;
}

/* A reaped pid: ours if it was a worker.  Returns false otherwise. */
bool poolsup_reaped(struct server *s, pid_t pid, int status)
{
	struct pool *p = s->pool;

	for (int i = 0; p && i < p->n; i++) {
		struct wslot *w = &p->slot[i];
		int64_t lived;
		unsigned delay, left;

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
			pool_watch(s, w, false);
			close(w->ch);
			w->ch = -1;
		}
		/* Serving one inherited connection, this worker was its
		 * handler: its death is the exit status, as a PROGRAM's is. */
		if (w->inflight)
			s->exit_status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) :
					 WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
		pool_fail_held(s, w);
		/* --cgroup: what it started goes with it. */
		if (w->cg && (left = cgroup_release(w->cg)) > 0 && !w->cgkilled) {
			s->cgkills++;
			log_info("worker %d pid %d: %u process(es) it left killed with its cgroup",
				 i, (int)pid, left);
		}
		w->cg = 0;
		w->cgkilled = false;
		w->fails = lived >= HEALTHY_MS ? 0 : w->fails + 1;
		delay = poolsup_backoff_ms(w->fails);
		w->state = WS_DOWN;
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
int64_t poolsup_tick(struct server *s)
{
	int64_t now = mono_ms(), at;

	if (!s->pool)
		return -1;
	at = pool_expire(s);
	for (int i = 0; i < s->pool->n; i++) {
		struct wslot *w = &s->pool->slot[i];

		if (w->state == WS_DOWN && !s->stopping && now >= w->deadline_ms)
			start_worker(s, w);
		else if (w->state == WS_STARTING && now >= w->deadline_ms)
			poolsup_lost(s, w, "no HELLO within 10 s");
		if ((w->state == WS_DOWN && !s->stopping) || w->state == WS_STARTING)
			at = deadline_earlier(at, w->deadline_ms);
	}
	return at;
}

/* Drain: no new connections; each worker finishes what it holds. */
void poolsup_stop(struct server *s)
{
	static const char stop[] = "STOP";

	if (s->pool)
		pool_drop_pending(s);
	for (int i = 0; s->pool && i < s->pool->n; i++)
		if (s->pool->slot[i].ch >= 0)
			fdpass_send(s->pool->slot[i].ch, stop, sizeof stop - 1, -1);
}

void poolsup_signal_all(struct server *s, int sig)
{
	for (int i = 0; s->pool && i < s->pool->n; i++) {
		struct wslot *w = &s->pool->slot[i];

		if (w->pid <= 0)
			continue;
		if (sig == SIGKILL && w->cg && !w->cgkilled && cgroup_kill(w->cg) == 0) {
			s->cgkills++;	/* and whatever it started */
			w->cgkilled = true;
		} else
			kill(w->pid, sig);
	}
}

unsigned poolsup_alive(const struct server *s)
{
	unsigned n = 0;

	for (int i = 0; s->pool && i < s->pool->n; i++)
		n += s->pool->slot[i].pid > 0;
	return n;
}

/* Reload, just before the exec.  A unix socket closed with messages still
 * unread in its own queue resets its peer: the worker's next read fails
 * with ECONNRESET, and a worker that takes that as the end - ours did -
 * never reads the CONN messages still queued for it, so those clients get
 * a reset.  Shutting our receiving side first makes the workers' further
 * DONEs fail at their end instead of queueing here; what is already queued
 * is read (and counted) now, so the exec closes an empty socket cleanly and
 * each old worker reads every CONN sent to it before its end of file. */
void poolsup_seal(struct server *s)
{
	struct fdpass_msg *m = pool_recv_batch();

	for (int i = 0; s->pool && i < s->pool->n; i++) {
		struct wslot *w = &s->pool->slot[i];
		int n = FDPASS_BATCH;

		if (w->ch < 0)
			continue;
		shutdown(w->ch, SHUT_RD);
		while (n == FDPASS_BATCH) {
			n = fdpass_recv_many(w->ch, m, FDPASS_BATCH, MSG_DONTWAIT);
			for (int j = 0; j < n; j++) {
				if (m[j].fd >= 0)
					close(m[j].fd);
				if (m[j].len > 0)
					pool_on_message(s, w, m[j].buf, (size_t)m[j].len);
				else
					n = 0;	/* end of the queue */
			}
		}
	}
}

/* The exec failed after poolsup_seal: no DONE can reach us from these
 * workers any more.  They are retired the way a new image takes them
 * over - told to stop, their connections counted until they exit - and
 * fresh workers start in their place. */
void poolsup_unseal(struct server *s)
{
	static const char stop[] = "STOP";
	struct pool *p = s->pool;

	for (int i = 0; p && i < p->n; i++) {
		struct wslot *w = &p->slot[i];
		uint64_t *ids;
		size_t n;

		if (w->ch < 0)
			continue;
		fdpass_send(w->ch, stop, sizeof stop - 1, -1);
		pool_watch(s, w, false);
		close(w->ch);
		w->ch = -1;
		if (w->pid > 0) {
			conns_adopt_worker(s, w->pid);
			conns_adopt_cgroup(s, w->pid, w->cg);
			w->cg = 0;
			ids = pool_held_ids(s, w, &n);
			for (size_t j = 0; j < n; j++) {
				unsigned char key[TABLE_KEY_MAX];
				struct pool_conn *pc;

				pool_id_key(ids[j], key);
				pc = table_get(p->conns, key);
				conns_adopt_held(s, w->pid, &pc->remote);	/* counts it again */
				source_release(s, &pc->remote);
				s->active--;
				if (pc->fd >= 0)
					close(pc->fd);
				table_del(p->conns, key);
			}
			free(ids);
		}
		w->pid = 0;
		w->inflight = 0;
		w->state = WS_DOWN;
		w->deadline_ms = mono_ms();
	}
}

/* The reload's hand-over (reload.c writes it): each live worker and the
 * connections it holds, which the new image counts until it exits. */
void poolsup_hand_over(struct server *s, const struct handover *h)
{
	for (int i = 0; s->pool && i < s->pool->n; i++) {
		struct wslot *w = &s->pool->slot[i];
		uint64_t *ids;
		size_t n;

		if (w->pid <= 0)
			continue;
		h->worker(h->arg, w->pid, w->inflight);
		ids = pool_held_ids(s, w, &n);
		for (size_t j = 0; j < n; j++) {
			unsigned char key[TABLE_KEY_MAX];
			const struct pool_conn *pc;

			pool_id_key(ids[j], key);
			pc = table_get(s->pool->conns, key);
			if (pc)
				h->held(h->arg, &pc->remote);
		}
		free(ids);
		if (w->cg)
			h->cgroup(h->arg, w->pid, w->cg);
	}
}
