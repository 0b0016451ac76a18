/*
 * pool.h - the master's side of the worker pool, shared by its two halves
 * and by nothing else (other modules see it through core.h):
 *   pool.c     dispatch: choosing a worker with room, sending it the
 *              connection, counting it until its DONE or the worker's
 *              death, and -t on it;
 *   poolsup.c  supervision: starting workers and waiting for HELLO,
 *              back-off, reaping, stopping them, and handing them over
 *              at a reload.
 */
#ifndef ACCEPTD_POOL_H
#define ACCEPTD_POOL_H

#include <string.h>

#include "core.h"
#include "fdpass.h"
#include "wire.h"

#define HELLO_TIMEOUT_MS 10000

enum wslot_state { WS_DOWN, WS_STARTING, WS_READY, WS_STOPPING };

/* The master's record of one worker slot: the process in it now (if any),
 * its channel and its counts - not the worker process itself (worker.c). */
struct wslot {
	enum ev_kind kind;	/* EV_WORKER: first, for the event loop */
	int idx;
	enum wslot_state state;
	pid_t pid;
	pid_t last_pid;		/* for the log, after pid is reaped */
	int ch;			/* master's end of the channel, -1 if none */
	unsigned inflight;
	unsigned max;		/* the worker's own limit, 0 = none */
	unsigned fails;		/* deaths soon after start, in a row */
	bool full;		/* its channel's queue is full: wait for EPOLLOUT */
	int64_t started_ms;
	int64_t deadline_ms;	/* WS_DOWN: respawn at; WS_STARTING: hello by */
	uint32_t cg;		/* --cgroup: its cgroup (cgroup.c); 0 none */
	bool cgkilled;		/* ...killed whole at the drain: counted once */
};

struct pool_conn {
	uint64_t id;
	int worker;
	struct peer remote;
	int64_t started_ms;
	int fd;			/* -t: our copy, to shut it down at the deadline */
};

struct pool {
	struct wslot *slot;
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

/* May this worker take one more connection now?  Ready, its channel's
 * queue not full, and below its own limit. */
static inline bool wslot_has_room(const struct wslot *w)
{
	return w->state == WS_READY && !w->full && (w->max == 0 || w->inflight < w->max);
}

static inline void pool_id_key(uint64_t id, unsigned char key[TABLE_KEY_MAX])
{
	memset(key, 0, TABLE_KEY_MAX);
	memcpy(key, &id, sizeof id);
}

/* pool.c */
void pool_watch(struct server *s, struct wslot *w, bool on);
void pool_on_message(struct server *s, struct wslot *w, const char *msg, size_t len);
void pool_fail_held(struct server *s, struct wslot *w);
uint64_t *pool_held_ids(struct server *s, const struct wslot *w, size_t *n);
void pool_drop_pending(struct server *s);
int64_t pool_expire(struct server *s);

/* poolsup.c */
void poolsup_lost(struct server *s, struct wslot *w, const char *why);

#endif
