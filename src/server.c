/*
 * server.c - the one event loop: listeners, the signalfd and timers.
 *
 * Each wake-up handles what epoll reported, reaps every exited child once
 * a SIGCHLD was read (waitpid until none is left), and
 * then re-decides whether the listeners belong in the poll set.  The only
 * timers are deadlines (EMFILE back-off, drain, the kill stages), folded
 * into epoll_wait's timeout.  Stopping: close the listeners we created (new
 * connects are refused), stop polling inherited ones (their owner keeps
 * them), let handlers finish for --drain seconds, then SIGTERM their
 * process groups, and SIGKILL 5 s later.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core.h"

int server_init(struct server *s, struct options *o)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	s->opt = o;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 || conns_init(s) < 0 || source_init(s) < 0 || proxyq_init(s) < 0)
		return -1;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev) < 0)
		return -1;
	return 0;
}

static void log_counters(const struct server *s, const char *when)
{
	log_notice("%sactive %u total %llu refused %llu failed %llu", when, s->active,
		   s->total, s->refused, s->failed);
	/* A line of its own: what the counters line says stays as it was. */
	if (s->timeouts || s->cgkills)
		log_notice("%stimeouts %llu cgroup-kills %llu", when, s->timeouts, s->cgkills);
}

static bool has_listeners(const struct server *s);

/* proxyq.c trusts nobody on an abstract socket unless --proxy-from
 * names users or groups: say so at start, not only per refusal. */
static void warn_abstract_untrusted(const struct server *s)
{
	for (unsigned i = 0; i < s->opt->n_proxy_from; i++)
		if (s->opt->proxy_from[i].family == AF_UNIX)
			return;
	for (int i = 0; i < s->n_lst; i++)
		if (!s->lst[i].is_conn && s->lst[i].local.family == AF_UNIX &&
		    s->lst[i].local.path[0] == '@')
			log_warn("%s: an abstract socket, which anyone on the host can reach: "
				 "its PROXY headers are refused unless --proxy-from names "
				 "unix:uid=N or unix:gid=N", s->lst[i].name);
}

/* sig 0: --idle-exit. */
static void begin_stop(struct server *s, int sig)
{
	if (s->pool && !s->stopping)
		poolsup_stop(s);	/* workers take no more and finish theirs */
	if (s->stopping) {
		/* A second SIGTERM/SIGINT: skip to the next stage now. */
		s->stop_deadline_ms = mono_ms();
		return;
	}
	s->stopping = true;
	sdg_notify("STOPPING=1");
	if (sig)
		log_notice("SIG%s: stopping; %u connection(s) open, draining up to %u s",
			   signals_abbrev(sig), s->active, s->opt->drain_secs);
	else
		log_notice("no connection for %u s (--idle-exit): stopping",
			   s->opt->idle_exit_secs);
	proxyq_stop(s);
	accept_update(s);	/* listeners out of the poll set... */
	listen_close_owned(s);	/* ...and ours closed: connects are refused */
	s->stop_deadline_ms = mono_ms() + (int64_t)s->opt->drain_secs * 1000;
}

static void stop_stage(struct server *s)
{
	if (s->stop_stage == 0) {
		log_warn("drain time over: sending SIGTERM to %u handler(s)", s->active);
		conns_signal_all(s, SIGTERM);
		poolsup_signal_all(s, SIGTERM);
		s->stop_deadline_ms = mono_ms() + KILL_GRACE_MS;
	} else if (s->stop_stage == 1) {
		log_warn("sending SIGKILL to %u handler(s)", s->active);
		conns_signal_all(s, SIGKILL);
		poolsup_signal_all(s, SIGKILL);
		s->stop_deadline_ms = mono_ms() + KILL_GRACE_MS;
	} else {
		/* Unkillable (D state): do not hang the service manager. */
		log_err("%u handler(s) did not exit after SIGKILL; exiting anyway", s->active);
		s->active = 0;
		s->abandon = true;
	}
	s->stop_stage++;
}

/* SIGHUP: tell the manager, stop taking new connections (they wait in the
 * backlog: nothing is refused), and re-execute as soon as nothing is half
 * handled (see reload.c). */
static void begin_reload(struct server *s)
{
	char msg[64];

	if (s->stopping || s->reload_wanted)
		return;
	if (!has_listeners(s)) {
		log_notice("SIGHUP: serving one connection; nothing to reload");
		return;
	}
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)mono_us());
	sdg_notify(msg);
	log_notice("SIGHUP: reloading");
	s->reload_wanted = true;
	accept_update(s);
}

static void on_signals(struct server *s)
{
	int sig;

	while ((sig = signals_read(s->sigfd)) > 0) {
		switch (sig) {
		case SIGTERM:
		case SIGINT:
			begin_stop(s, sig);
			break;
		case SIGUSR1:
			log_counters(s, "");
			break;
		case SIGHUP:
			begin_reload(s);
			break;
		case SIGCHLD:	/* reaped at the end of this turn */
			s->sigchld = true;
			break;
		default:
			break;
		}
	}
}

/* --idle-exit: the clock runs while nothing is open or being read. */
static int64_t idle_tick(struct server *s)
{
	int64_t now, limit = (int64_t)s->opt->idle_exit_secs * 1000;

	if (!s->opt->idle_exit_secs || s->stopping)
		return -1;
	now = mono_ms();
	if (s->active || s->proxying) {
		s->idle_since_ms = 0;
		return -1;
	}
	if (!s->idle_since_ms)
		s->idle_since_ms = now;
	else if (now - s->idle_since_ms >= limit) {
		begin_stop(s, 0);
		return -1;	/* stop_tick has the drain's deadline now */
	}
	return s->idle_since_ms + limit;
}

/* Stopping: the drain, then SIGTERM, then SIGKILL, each stage when the
 * last one's time is up (or at once on a second signal). */
static int64_t stop_tick(struct server *s)
{
	if (!s->stopping)
		return -1;
	if (mono_ms() >= s->stop_deadline_ms)
		stop_stage(s);
	return s->stop_deadline_ms;
}

/* Every module's tick (clock.h), each once a turn; the earliest answer
 * is how long the loop may sleep.  Producers first: the PROXY queue may
 * hand connections to the pool or to new handlers, whose deadlines the
 * pool's and conns' ticks then report. */
static int64_t timers(struct server *s)
{
	int64_t at = proxyq_tick(s);

	at = deadline_earlier(at, poolsup_tick(s));
	at = deadline_earlier(at, conns_tick(s));
	at = deadline_earlier(at, cgroup_tick());
	at = deadline_earlier(at, idle_tick(s));
	at = deadline_earlier(at, stop_tick(s));
	at = deadline_earlier(at, dgram_tick(s));
	at = deadline_earlier(at, accept_tick(s));
	at = deadline_earlier(at, notify_tick(s));
	return deadline_earlier(at, log_limits_flush(false));
}

static int wait_ms(int64_t at)
{
	int64_t now = mono_ms();

	if (at < 0)
		return -1;
	return at <= now ? 0 : at - now > INT_MAX ? INT_MAX : (int)(at - now);
}

/* Connections held open by the master (PROXY headers being read) or by
 * workers need an fd each: make sure -c fits RLIMIT_NOFILE now rather
 * than meet EMFILE under load.  Raise the soft limit as far as needed (not
 * further: handlers inherit it), or, when the hard limit is too low,
 * lower -c to what fits - a warning, not an error, since the daemon
 * still works, only with fewer connections. */
/* --rlimit nofile binds the pool's workers too: each holds its share
 * of -c open at once, and one out of fds loses the connections it is
 * sent.  Said at start, not found under load. */
static void warn_worker_nofile(const struct server *s, unsigned workers)
{
	unsigned share = (s->opt->max_conns + workers - 1) / (workers ? workers : 1);

	if (!s->pool && (s->opt->program && !s->opt->fd_passing))
		return;
	for (unsigned i = 0; i < s->opt->n_rlimits; i++)
		if (s->opt->rlimits[i].resource == RLIMIT_NOFILE &&
		    s->opt->rlimits[i].soft < (unsigned long long)share + 16)
			log_warn("--rlimit nofile=%llu: a worker may hold up to %u of -c %u "
				 "connections at once, and loses those it has no fd for; "
				 "raise nofile or lower -c", s->opt->rlimits[i].soft, share,
				 s->opt->max_conns);
}

static void fit_fd_limit(struct server *s)
{
	unsigned workers = s->opt->workers ? s->opt->workers :
			   (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	rlim_t reserve = (rlim_t)s->n_lst + workers + 32, need;
	struct rlimit rl;

	warn_worker_nofile(s, workers);
	if (!s->opt->proxy_protocol && s->opt->program && !s->opt->fd_passing)
		return;	/* spawn mode: the master closes each fd at once */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	need = reserve + s->opt->max_conns;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need ?
			      rl.rlim_max : need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_info("raised the soft RLIMIT_NOFILE from %llu to %llu for "
				 "--max-conns %u", (unsigned long long)old,
				 (unsigned long long)rl.rlim_cur, s->opt->max_conns);
		else
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		unsigned fit = rl.rlim_cur > reserve + 1 ? (unsigned)(rl.rlim_cur - reserve) : 1;

		log_warn("--max-conns %u needs %llu fds but RLIMIT_NOFILE allows %llu; "
			 "serving at most %u connections at once", s->opt->max_conns,
			 (unsigned long long)need, (unsigned long long)rl.rlim_cur, fit);
		s->opt->max_conns = fit;
	}
}

static bool has_listeners(const struct server *s)
{
	for (int i = 0; i < s->n_lst; i++)
		if (!s->lst[i].is_conn)
			return true;
	return false;
}

/* Inherited connections (Accept=yes, inetd nowait) are served as soon as
 * something can serve them: at once in spawn mode, once a worker is ready
 * in pool mode.  Returns how many are still waiting. */
static int serve_inherited(struct server *s)
{
	int waiting = 0;

	for (int i = 0; i < s->n_lst; i++) {
		struct listener *l = &s->lst[i];

		if (!l->is_conn || l->fd < 0)
			continue;
		if (s->pool && !pool_ready(s)) {
			waiting++;
			continue;
		}
		if (accept_serve(s, l->fd, l, NULL, 0) < 0)
			s->exit_status = 1;
		l->fd = -1;
	}
	return waiting;
}

/* Done when stopping or serving inherited connections only, and nothing
 * is left: no connection, no handler, no worker. */
static bool finished(struct server *s, bool single, int waiting)
{
	if (s->abandon)
		return true;
	/* --cgroup: what handlers left is killed, and gone, first. */
	if (single && !s->stopping)
		return waiting == 0 && s->active == 0 && s->proxying == 0 &&
		       conns_lingering() == 0 && cgroup_pending() == 0;
	return s->stopping && s->active == 0 && poolsup_alive(s) == 0 &&
	       conns_lingering() == 0 && cgroup_pending() == 0;
}

static void dispatch(struct server *s, struct epoll_event *ev)
{
	enum ev_kind *k = ev->data.ptr;

	if (k == NULL)
		on_signals(s);
	else if (*k == EV_LISTENER && ((struct listener *)(void *)k)->socktype == SOCK_DGRAM)
		dgram_ready(s, (struct listener *)(void *)k);
	else if (*k == EV_LISTENER)
		accept_ready(s, (struct listener *)(void *)k);
	else if (*k == EV_PROXY)
		proxyq_readable(s, (struct pconn *)(void *)k, ev->events);
	else
		pool_readable(s, (struct wslot *)(void *)k);
}

/* per-peer on a wildcard address: connect() fixes the handed-over
 * socket's local address to the route's choice, so a peer that sent to
 * another of the host's addresses gets answers from that one, and its
 * next datagrams, not matching the connected socket, a new handler each
 * (udpsvd's limit too). */
static void warn_per_peer_wildcard(const struct server *s)
{
	for (int i = 0; s->opt->per_peer && i < s->n_lst; i++)
		if (s->lst[i].socktype == SOCK_DGRAM && !s->lst[i].fixed_local)
			log_warn("%s: --datagram per-peer on a wildcard address: a peer that sends "
				 "to another address than the one its route leaves from gets a "
				 "handler per datagram; listen on each address instead",
				 s->lst[i].name);
}

/* A datagram carries no PROXY header: say so once, at start. */
static void warn_dgram_proxy(const struct server *s)
{
	for (int i = 0; i < s->n_lst; i++)
		if (s->lst[i].socktype == SOCK_DGRAM) {
			log_warn("%s: a datagram socket carries no PROXY header: its datagrams "
				 "are admitted by their own source", s->lst[i].name);
			return;
		}
}

int server_run(struct server *s)
{
	struct epoll_event evs[64];
	bool single = !has_listeners(s);
	int waiting;
	int64_t at;

	if (single)
		s->opt->workers = 1;	/* one connection: one worker */
	fit_fd_limit(s);
	notify_init();
	if (s->opt->proxy_protocol && !s->opt->n_proxy_from)
		log_warn("--proxy-protocol without --proxy-from: any client that can "
			 "connect may claim any address");
	if (s->opt->proxy_protocol) {
		warn_abstract_untrusted(s);
		warn_dgram_proxy(s);
	}
	warn_per_peer_wildcard(s);
	if (!s->opt->program || s->opt->fd_passing) {
		if (poolsup_init(s) < 0) {
			log_err("cannot start the worker pool: %s", strerror(errno));
			return 1;
		}
	}
	log_notice("started %s %s: %s", PACKAGE_NAME, PACKAGE_VERSION,
		   s->opt->program ? s->opt->program[0] : builtin_name(s->opt->builtin));
	waiting = serve_inherited(s);
	s->idle_since_ms = mono_ms();
	accept_update(s);
	sdg_notify("READY=1");
	at = timers(s);
	while (!finished(s, single, waiting)) {
		int n = epoll_wait(s->epfd, evs, 64, wait_ms(at));

		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++)
			dispatch(s, &evs[i]);
		if (s->sigchld) {
			/* One SIGCHLD may stand for many exits; conns_reap
			 * loops until waitpid finds none. */
			s->sigchld = false;
			conns_reap(s);
		}
		pool_flush(s);
		waiting = serve_inherited(s);
		if (s->reload_wanted && reload_quiet(s)) {
			reload_exec(s);		/* returns only if it failed */
			s->reload_wanted = false;
		}
		at = timers(s);
		accept_update(s);
	}
	if (single && s->pool && !s->stopping)
		poolsup_stop(s);	/* idle workers exit at once */
	proxyq_free(s);
	cgroup_left();		/* what could not be removed, said once */
	log_limits_flush(true);
	if (s->stopping)
		log_counters(s, "stopped: ");
	return single && !s->stopping ? s->exit_status : 0;
}
