/*
 * conns.c - handler processes by pid: their sources (counted in
 * source.c), -t, reaping.
 *
 * The table is sized from --max-conns at start and never allocates
 * later.  Children are reaped here, from the event loop (the signalfd says
 * SIGCHLD arrived), never in a signal handler: waitpid(WNOHANG) in a loop
 * collects every exit, since one SIGCHLD may stand for many.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core.h"

struct child {
	pid_t pid;
	struct peer remote;
	int64_t started_ms;
	int64_t deadline_ms;	/* -t: next signal due, 0 if none */
	int stage;		/* 0 running, 1 SIGTERM sent, 2 SIGKILL sent */
	bool lingering;		/* reaped after SIGTERM; its group may live on */
	bool old_worker;	/* a pool worker of the image before a reload */
	unsigned n_held;	/* old_worker: the connections it still holds */
	struct peer *held;
	const char *listener;
	struct listener *dgram;	/* wait mode: the datagram socket it has */
	uint32_t cg;		/* --cgroup: its cgroup (cgroup.c); 0 none */
	bool cgkilled;		/* ...killed whole (-t, drain): counted once */
};

/* Process groups whose leader exited of our SIGTERM while other members
 * may still hold the connection: kept (as their leader's record, no
 * longer counted as active) until the SIGKILL that was due, so "SIGKILL 5 s
 * later to its whole process group" holds even when the shell at the top
 * went first.  The leader's pid cannot be reused while its group has
 * members, so the group id stays theirs. */
static unsigned lingering;

#define LINGER_POLL_MS 50	/* how often a lingering group is looked at */

static void pid_key(pid_t pid, unsigned char key[TABLE_KEY_MAX])
{
	memset(key, 0, TABLE_KEY_MAX);
	memcpy(key, &pid, sizeof pid);
}

int conns_init(struct server *s)
{
	/* Inherited single connections may add to the -c bound. */
	size_t n = (size_t)s->opt->max_conns + (size_t)s->n_lst + 1;

	/* Room for as many lingering groups as live handlers. */
	s->children = table_new(2 * n, sizeof(struct child));
	return s->children ? 0 : -1;
}

int conns_track(struct server *s, pid_t pid, const struct conn_info *c, uint32_t cg)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;

	pid_key(pid, key);
	ch = table_put(s->children, key);
	if (!ch)
		return -1;
	if (ch->lingering)
		lingering--;	/* its pid is free again: the group is empty */
	memset(ch, 0, sizeof *ch);
	ch->pid = pid;
	ch->cg = cg;
	ch->remote = c->remote;
	ch->started_ms = mono_ms();
	ch->listener = c->lst ? c->lst->name : "inherited connection";
	if (s->opt->timeout_secs) {
		ch->deadline_ms = ch->started_ms + (int64_t)s->opt->timeout_secs * 1000;
		if (!s->timeout_at_ms || ch->deadline_ms < s->timeout_at_ms)
			s->timeout_at_ms = ch->deadline_ms;
	}
	s->active++;
	return 0;
}

/* Did --rlimit cpu's hard limit end it?  The kernel's SIGKILL then,
 * after cpu seconds of CPU time (its own: cpu is per process).  The
 * limit counts the scheduler's run time, which the rusage figures only
 * approximate (seen 16% short here): a quarter of slack. */
static bool cpu_limit_hit(const struct options *o, int status, const struct rusage *ru)
{
	double used = (double)ru->ru_utime.tv_sec + (double)ru->ru_stime.tv_sec +
		      (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;

	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		return false;
	for (unsigned i = 0; i < o->n_rlimits; i++)
		if (o->rlimits[i].resource == RLIMIT_CPU &&
		    o->rlimits[i].hard != (unsigned long long)RLIM_INFINITY)
			return used >= 0.75 * (double)o->rlimits[i].hard;
	return false;
}

/* What ended it, when acceptd's containment did: -t's stages, a limit
 * whose signal the kernel sends (--rlimit cpu's SIGXCPU, and SIGKILL at
 * its hard limit; fsize's SIGXFSZ), what was left in its cgroup. */
static void log_exit(const struct server *s, const struct child *ch, int status,
		     const struct rusage *ru, unsigned left)
{
	char who[ADDR_STRLEN], why[160] = "";
	double secs = (double)(mono_ms() - ch->started_ms) / 1000.0;
	size_t n = 0;

	addr_peer_format(&ch->remote, who, sizeof who);
	if (ch->stage > 0 && !s->stopping)
		n += (size_t)snprintf(why + n, sizeof why - n, " (--timeout)");
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
		n += (size_t)snprintf(why + n, sizeof why - n, " (--rlimit cpu)");
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ)
		n += (size_t)snprintf(why + n, sizeof why - n, " (--rlimit fsize)");
	else if (!ch->stage && cpu_limit_hit(s->opt, status, ru))
		n += (size_t)snprintf(why + n, sizeof why - n, " (--rlimit cpu)");
	if (ch->cgkilled)
		snprintf(why + n, sizeof why - n, "; its cgroup killed");
	else if (left)
		snprintf(why + n, sizeof why - n, "; %u process(es) it left killed with its "
			 "cgroup", left);
	if (WIFEXITED(status))
		log_info("end %s pid %d status %d after %.3fs%s", who, (int)ch->pid,
			 WEXITSTATUS(status), secs, why);
	else
		log_info("end %s pid %d killed by signal %d after %.3fs%s", who, (int)ch->pid,
			 WTERMSIG(status), secs, why);
}

/* A worker from before a reload exited: whatever it held has ended. */
static void old_worker_gone(struct server *s, struct child *ch, int status)
{
	for (unsigned i = 0; i < ch->n_held; i++)
		source_release(s, &ch->held[i]);
	s->active -= ch->n_held;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("worker pid %d from before the reload exited; its %u connection(s) "
			 "ended", (int)ch->pid, ch->n_held);
	else
		log_warn("worker pid %d from before the reload died (status %d); %u "
			 "connection(s) lost", (int)ch->pid, status, ch->n_held);
	free(ch->held);
}

void conns_reap(struct server *s)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;
	struct rusage ru;
	int status;
	unsigned left;
	pid_t pid;

	/* wait4: the CPU time says whether --rlimit cpu ended it. */
	while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
		pid_key(pid, key);
		ch = table_get(s->children, key);
		if (!ch) {
			poolsup_reaped(s, pid, status);
			continue;
		}
		if (ch->lingering)
			continue;	/* cannot happen: the pid was reaped once */
		if (ch->old_worker) {
			if (ch->cg && cgroup_release(ch->cg) && !ch->cgkilled)
				s->cgkills++;
			old_worker_gone(s, ch, status);
			table_del(s->children, key);
			continue;
		}
		/* --cgroup: nothing it started outlives it. */
		left = ch->cg ? cgroup_release(ch->cg) : 0;
		if (left && !ch->cgkilled)
			s->cgkills++;
		if (log_enabled(LOG_LVL_INFO))
			log_exit(s, ch, status, &ru, left);
		source_release(s, &ch->remote);
		s->active--;
		if (ch->dgram)
			dgram_reaped(ch->dgram);
		if (!ch->cg && ch->stage == 1 && kill(-pid, 0) == 0 &&
		    lingering < s->opt->max_conns) {
			int64_t soon = mono_ms() + LINGER_POLL_MS;

			ch->lingering = true;	/* SIGKILL still due to the rest */
			lingering++;
			if (!s->timeout_at_ms || soon < s->timeout_at_ms)
				s->timeout_at_ms = soon;
		} else {
			table_del(s->children, key);
		}
		s->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) :
				 128 + WTERMSIG(status);
	}
}

struct expiry {
	struct server *s;
	int64_t now, next;
};

static void expire_one(void *rec, void *arg)
{
	struct child *ch = rec;
	struct expiry *e = arg;
	char who[ADDR_STRLEN];

	if (ch->lingering) {
		/* Gone by itself (the usual case: the group took the SIGTERM
		 * too), or due for its SIGKILL; else look again shortly. */
		if (kill(-ch->pid, 0) < 0 && errno == ESRCH) {
			ch->stage = 2;
		} else if (ch->deadline_ms && ch->deadline_ms <= e->now) {
			addr_peer_format(&ch->remote, who, sizeof who);
			log_notice("%s: process group %d outlived its handler's SIGTERM; "
				   "sending SIGKILL", who, (int)ch->pid);
			kill(-ch->pid, SIGKILL);
			ch->stage = 2;
		} else if (!e->next || e->now + LINGER_POLL_MS < e->next) {
			e->next = e->now + LINGER_POLL_MS;
		}
		return;
	}
	if (!ch->deadline_ms)
		return;
	if (ch->deadline_ms <= e->now && ch->stage < 2) {
		int sig = ch->stage == 0 ? SIGTERM : SIGKILL;

		addr_peer_format(&ch->remote, who, sizeof who);
		log_notice("%s pid %d: running for %.1f s, over --timeout; sending SIG%s%s",
			   who, (int)ch->pid, (double)(e->now - ch->started_ms) / 1000.0,
			   signals_abbrev(sig), sig == SIGKILL && ch->cg ? " to its cgroup" : "");
		if (sig == SIGKILL && ch->cg && cgroup_kill(ch->cg) == 0) {
			e->s->cgkills++;	/* all it started, in or out of its group */
			ch->cgkilled = true;
		} else if (kill(-ch->pid, sig) < 0 && errno == ESRCH)
			kill(ch->pid, sig);
		if (ch->stage == 0)
			e->s->timeouts++;
		ch->stage++;
		ch->deadline_ms = ch->stage < 2 ? e->now + KILL_GRACE_MS : 0;
	}
	if (ch->deadline_ms && (!e->next || ch->deadline_ms < e->next))
		e->next = ch->deadline_ms;
}

static bool killed_lingering(const void *rec)
{
	const struct child *ch = rec;

	return ch->lingering && ch->stage == 2;
}

static void drop_killed(struct server *s)
{
	if (lingering)
		lingering -= (unsigned)table_sweep(s->children, killed_lingering);
}

/* -t: handlers past their time get SIGTERM, then SIGKILL KILL_GRACE_MS
 * later, to their whole process group.  Walks the table only when the
 * earliest deadline is due, so a steady stream of connections costs
 * nothing here.  The timer contract (clock.h): returns the next deadline. */
int64_t conns_tick(struct server *s)
{
	struct expiry e = { .s = s, .now = mono_ms() };

	if (s->timeout_at_ms && e.now >= s->timeout_at_ms) {
		table_each(s->children, expire_one, &e);
		s->timeout_at_ms = e.next;
		drop_killed(s);
	}
	return s->timeout_at_ms ? s->timeout_at_ms : -1;
}

struct signalling {
	struct server *s;
	int sig;
};

static void signal_one(void *rec, void *arg)
{
	struct child *ch = rec;
	struct signalling *g = arg;
	int sig = g->sig;

	/* Each handler leads its own process group: a shell handler's
	 * children go with it.  With --cgroup, SIGKILL reaches the ones
	 * that left the group too. */
	if (sig == SIGKILL && ch->cg && !ch->cgkilled && cgroup_kill(ch->cg) == 0) {
		g->s->cgkills++;
		ch->cgkilled = true;
	} else if (kill(-ch->pid, sig) < 0 && errno == ESRCH && !ch->lingering)
		kill(ch->pid, sig);
	if (sig == SIGTERM && ch->stage == 0)
		ch->stage = 1;	/* its group lingers for the SIGKILL stage */
	else if (sig == SIGKILL)
		ch->stage = 2;
}

/* The drain's last stages.  After SIGKILL nothing lingers any more. */
void conns_signal_all(struct server *s, int sig)
{
	struct signalling g = { s, sig };

	table_each(s->children, signal_one, &g);
	drop_killed(s);
}

unsigned conns_lingering(void)
{
	return lingering;
}

/* reload.c's hand-over: the handlers still running, by the same lines
 * conns_adopt_* read back. */
static void hand_over_one(void *rec, void *arg)
{
	const struct child *ch = rec;
	const struct handover *h = arg;

	if (ch->lingering)
		return;		/* already reaped: nothing to count */
	if (ch->old_worker) {
		h->worker(h->arg, ch->pid, ch->n_held);
		for (unsigned i = 0; i < ch->n_held; i++)
			h->held(h->arg, &ch->held[i]);
	} else {
		h->child(h->arg, ch->pid, ch->started_ms, ch->stage, &ch->remote);
		if (ch->dgram)
			h->dgram(h->arg, ch->pid, ch->dgram);
	}
	if (ch->cg)
		h->cgroup(h->arg, ch->pid, ch->cg);
}

/* The reload's hand-over (reload.c writes it): each running handler, and
 * each old worker from an earlier reload with what it still holds. */
void conns_hand_over(struct server *s, const struct handover *h)
{
	struct handover copy = *h;	/* table_each's argument is not const */

	table_each(s->children, hand_over_one, &copy);
}

void conns_adopt_child(struct server *s, pid_t pid, long long started_ms, unsigned stage,
		       const struct peer *p)
{
	struct conn_info c;
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;

	memset(&c, 0, sizeof c);
	c.remote = *p;
	if (conns_track(s, pid, &c, 0) < 0)
		return;
	source_acquire(s, p);
	pid_key(pid, key);
	ch = table_get(s->children, key);
	ch->started_ms = started_ms;
	ch->listener = "a listener before the reload";
	if (s->opt->timeout_secs || stage > 0) {
		ch->stage = stage > 2 ? 2 : (int)stage;
		ch->deadline_ms = ch->stage == 0 ?
			started_ms + (int64_t)s->opt->timeout_secs * 1000 :
			ch->stage == 1 ? mono_ms() + KILL_GRACE_MS : 0;
		if (ch->deadline_ms && (!s->timeout_at_ms || ch->deadline_ms < s->timeout_at_ms))
			s->timeout_at_ms = ch->deadline_ms;
	}
}

/* A handler (tracked already) has l's datagram socket: its exit brings
 * the socket back (dgram.c). */
void conns_adopt_dgram(struct server *s, pid_t pid, struct listener *l)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;

	pid_key(pid, key);
	ch = table_get(s->children, key);
	if (!ch)
		return;
	ch->dgram = l;
	ch->listener = l->name;
	l->dgram_pid = pid;
}

/* A handler or old worker (tracked already) runs in cgroup id.  False
 * when it is not tracked (the table was full): the sweep ends it. */
bool conns_adopt_cgroup(struct server *s, pid_t pid, uint32_t id)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;

	pid_key(pid, key);
	ch = table_get(s->children, key);
	if (ch)
		ch->cg = id;
	return ch != NULL;
}

void conns_adopt_worker(struct server *s, pid_t pid)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;

	pid_key(pid, key);
	ch = table_put(s->children, key);
	if (!ch)
		return;
	memset(ch, 0, sizeof *ch);
	ch->pid = pid;
	ch->old_worker = true;
	ch->started_ms = mono_ms();
	ch->listener = "a worker before the reload";
}

void conns_adopt_held(struct server *s, pid_t worker, const struct peer *p)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;
	struct peer *grown;

	pid_key(worker, key);
	ch = table_get(s->children, key);
	if (!ch || !ch->old_worker)
		return;
	grown = realloc(ch->held, (ch->n_held + 1) * sizeof *grown);
	if (!grown)
		return;
	ch->held = grown;
	ch->held[ch->n_held++] = *p;
	source_acquire(s, p);
	s->active++;
}
