/*
 * conns.c - who is connected: handler processes by pid and open
 * connections by source address.
 *
 * Both tables are sized from --max-conns at start and never allocate
 * later.  Children are reaped here, from the event loop (the signalfd says
 * SIGCHLD arrived), never in a signal handler: waitpid(WNOHANG) in a loop
 * collects every exit, since one SIGCHLD may stand for many.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "core.h"

struct child {
	pid_t pid;
	struct peer remote;
	int64_t started_ms;
	const char *listener;
};

struct source {
	unsigned open;
};

static void source_key(const struct peer *p, unsigned char key[TABLE_KEY_MAX])
{
	memset(key, 0, TABLE_KEY_MAX);
	key[0] = (unsigned char)p->family;
	/* Unix peers have no address worth telling apart: one source. */
	if (p->family == AF_INET || p->family == AF_INET6)
		memcpy(key + 1, p->raw, p->family == AF_INET ? 4 : 16);
}

static void pid_key(pid_t pid, unsigned char key[TABLE_KEY_MAX])
{
	memset(key, 0, TABLE_KEY_MAX);
	memcpy(key, &pid, sizeof pid);
}

int conns_init(struct server *s)
{
	/* Inherited single connections may add to the -c bound. */
	size_t n = (size_t)s->opt->max_conns + (size_t)s->n_lst + 1;

	s->children = table_new(n, sizeof(struct child));
	s->sources = table_new(n, sizeof(struct source));
	return s->children && s->sources ? 0 : -1;
}

unsigned conns_source_acquire(struct server *s, const struct peer *p)
{
	unsigned char key[TABLE_KEY_MAX];
	struct source *src;

	source_key(p, key);
	src = table_put(s->sources, key);
	return src ? ++src->open : 0;
}

void conns_source_release(struct server *s, const struct peer *p)
{
	unsigned char key[TABLE_KEY_MAX];
	struct source *src;

	source_key(p, key);
	src = table_get(s->sources, key);
	if (src && --src->open == 0)
		table_del(s->sources, key);
}

int conns_track(struct server *s, pid_t pid, const struct conn_info *c)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;

	pid_key(pid, key);
	ch = table_put(s->children, key);
	if (!ch)
		return -1;
	ch->pid = pid;
	ch->remote = c->remote;
	ch->started_ms = mono_ms();
	ch->listener = c->lst ? c->lst->name : "inherited connection";
	s->active++;
	return 0;
}

static void log_exit(const struct child *ch, int status)
{
	char who[ADDR_STRLEN];
	double secs = (double)(mono_ms() - ch->started_ms) / 1000.0;

	peer_format(&ch->remote, who, sizeof who);
	if (WIFEXITED(status))
		log_info("end %s pid %d status %d after %.3fs", who, (int)ch->pid,
			 WEXITSTATUS(status), secs);
	else
		log_info("end %s pid %d killed by signal %d after %.3fs", who, (int)ch->pid,
			 WTERMSIG(status), secs);
}

void conns_reap(struct server *s)
{
	unsigned char key[TABLE_KEY_MAX];
	struct child *ch;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		pid_key(pid, key);
		ch = table_get(s->children, key);
		if (!ch) {
			pool_reaped(s, pid, status);
			continue;
		}
		if (log_enabled(LOG_LVL_INFO))
			log_exit(ch, status);
		conns_source_release(s, &ch->remote);
		table_del(s->children, key);
		s->active--;
		s->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) :
				 128 + WTERMSIG(status);
	}
}

static void signal_one(void *rec, void *arg)
{
	const struct child *ch = rec;

	/* Each handler leads its own process group: a shell handler's
	 * children go with it. */
	if (kill(-ch->pid, *(int *)arg) < 0 && errno == ESRCH)
		kill(ch->pid, *(int *)arg);
}

void conns_signal_all(struct server *s, int sig)
{
	table_each(s->children, signal_one, &sig);
}
