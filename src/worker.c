/*
 * worker.c - a pool worker serving a built-in service.
 *
 * Forked from the master (no exec: the built-ins are already in this
 * binary), it keeps only its channel on fd 3, leads a process group of its
 * own and restores default signal handling, like any handler.  It speaks
 * the same protocol as a persistent PROGRAM worker (acceptd-workers(7)):
 * answer HELLO, take CONN messages with their fds, serve them all from one
 * epoll loop, and report each finished connection with DONE - batched, one
 * message per loop turn.  STOP, or the master's end closing, means: take
 * nothing new, finish what is open, exit.
 *
 * Worker 0 also answers the datagram sockets, which it keeps from the
 * master (wdgram.c): one reader, so the per-source rate is exact.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"
#include "fdpass.h"
#include "wire.h"

#define CH_FD 3
#define DONE_BATCH 150		/* ids per DONE message: well under WIRE_MSG_MAX */

struct wconn {
	uint64_t id;
	uint32_t events;	/* what epoll waits for now */
	struct bconn b;
};

struct wstate {
	struct server *s;	/* this process's copy of the master's */
	int64_t told_ms;	/* datagrams: when the master last heard of them */
	int epfd;
	enum builtin_kind kind;
	unsigned open;
	bool stopping;
	bool dgrams;		/* serving datagram sockets too */
	uint64_t done[DONE_BATCH];
	size_t ndone;
};

static void flush_done(struct wstate *ws)
{
	char msg[WIRE_MSG_MAX];
	int n;

	if (ws->ndone == 0)
		return;
	n = wire_format_done(msg, sizeof msg, ws->done, ws->ndone);
	ws->ndone = 0;
	/* Blocking send: the master never blocks on us, so this cannot
	 * deadlock, and a DONE must not be lost.  EPIPE: master gone. */
	if (n > 0)
		while (fdpass_send_flags(CH_FD, msg, (size_t)n, -1, 0) < 0 && errno == EINTR)
			;
}

static void finished(struct wstate *ws, uint64_t id)
{
	ws->done[ws->ndone++] = id;
	if (ws->ndone == DONE_BATCH)
		flush_done(ws);
}

static void close_conn(struct wstate *ws, struct wconn *c)
{
	/* DEL before close: epoll forgets an fd only when the last reference
	 * to the socket goes, and the master may not have closed its copy yet -
	 * without this a stale event would arrive for freed memory. */
	if (c->events)
		epoll_ctl(ws->epfd, EPOLL_CTL_DEL, c->b.fd, NULL);
	builtin_end(&c->b);
	close(c->b.fd);
	finished(ws, c->id);
	free(c);
	ws->open--;
}

static void new_conn(struct wstate *ws, uint64_t id, int fd)
{
	struct bconn b;
	uint32_t want = builtin_begin(&b, ws->kind, fd);
	struct wconn *c;
	struct epoll_event ev;

	if (want == 0) {	/* served at once (daytime, time): no state to keep */
		builtin_end(&b);
		close(fd);
		finished(ws, id);
		return;
	}
	c = malloc(sizeof *c);
	if (!c) {
		log_err("worker: out of memory; connection closed");
		builtin_end(&b);
		close(fd);
		finished(ws, id);
		return;
	}
	c->id = id;
	c->b = b;
	c->events = 0;
	ws->open++;
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(ws->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_err("worker pid %d: epoll_ctl: %s; connection closed", (int)getpid(),
			strerror(errno));
		close_conn(ws, c);
		return;
	}
	c->events = want;
}


/* One message from the master; false when the worker must take no more
 * (STOP, or the master is gone). */
static bool on_master_message(struct wstate *ws, const char *msg, ssize_t n, int fd)
{
	struct wire_conn m;

	if (n <= 0 || wire_verb(msg, (size_t)n) == WIRE_STOP) {
		if (fd >= 0)
			close(fd);
		ws->stopping = true;	/* STOP, or the master is gone */
		epoll_ctl(ws->epfd, EPOLL_CTL_DEL, CH_FD, NULL);
		if (ws->dgrams)
			wdgram_stop(ws->s, ws->epfd);
		ws->dgrams = false;
		return false;
	}
	if (wire_verb(msg, (size_t)n) != WIRE_CONN || wire_parse_conn(msg, (size_t)n, &m) < 0) {
		if (fd >= 0)
			close(fd);
		return true;
	}
	if (fd < 0) {
		/* The kernel could not give us the fd (EMFILE): the
		 * connection is closed; say so, and report it done. */
		log_err("worker pid %d: connection %s:%u lost: no fd received (%s)",
			(int)getpid(), m.remote_ip, m.remote_port,
			fd == FDPASS_LOST ? "out of file descriptors" : "none sent");
		finished(ws, m.id);
		return true;
	}
	new_conn(ws, m.id, fd);
	return true;
}

/* Everything the master queued, in one recvmmsg; block: wait for the
 * first message (the worker has nothing else to do). */
static void on_channel(struct wstate *ws, bool block)
{
	struct fdpass_msg *m = pool_recv_batch();	/* this process's copy */
	int n, i;

	n = fdpass_recv_many(CH_FD, m, FDPASS_BATCH, block ? MSG_WAITFORONE : MSG_DONTWAIT);
	/* The master closed its end with our DONEs unread (acceptd seals
	 * its channels before a reload, but an older one did not).  The
	 * reset is reported once, ahead of any CONN still queued: read on. */
	if (n < 0 && errno == ECONNRESET)
		n = fdpass_recv_many(CH_FD, m, FDPASS_BATCH, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		on_master_message(ws, "", 0, -1);
		return;
	}
	for (i = 0; i < n; i++)
		if (!on_master_message(ws, m[i].buf, m[i].len, m[i].fd))
			break;
	for (i++; i < n; i++)	/* after STOP: nothing more is taken */
		if (m[i].fd >= 0)
			close(m[i].fd);
}

static void on_conn(struct wstate *ws, struct wconn *c, uint32_t events)
{
	uint32_t want = builtin_step(&c->b, events);
	struct epoll_event ev = { .events = want, .data.ptr = c };

	if (want == 0) {
		close_conn(ws, c);
		return;
	}
	if (want != c->events && epoll_ctl(ws->epfd, EPOLL_CTL_MOD, c->b.fd, &ev) < 0) {
		log_err("worker pid %d: epoll_ctl: %s; connection closed", (int)getpid(),
			strerror(errno));
		close_conn(ws, c);
		return;
	}
	c->events = want;
}

static int handshake(void)
{
	char msg[WIRE_MSG_MAX];
	unsigned version, max;
	int fd, n;
	ssize_t r = fdpass_recv(CH_FD, msg, sizeof msg, &fd, 0);

	if (fd >= 0)
		close(fd);
	if (r <= 0 || wire_verb(msg, (size_t)r) != WIRE_HELLO ||
	    wire_parse_hello(msg, (size_t)r, &version, &max) < 0)
		return -1;
	n = wire_format_hello(msg, sizeof msg, WIRE_VERSION, 0);
	return fdpass_send_flags(CH_FD, msg, (size_t)n, -1, 0) < 0 ? -1 : 0;
}

/* Datagrams answered: an empty DONE, at most once a second, so that the
 * master's --idle-exit counts them as activity. */
static void tell_busy(struct wstate *ws)
{
	static const char done[] = "DONE";

	ws->told_ms = mono_ms();
	(void)fdpass_send_flags(CH_FD, done, sizeof done - 1, -1, MSG_DONTWAIT);
}

static bool is_listener(const struct wstate *ws, const void *p)
{
	const struct listener *l = p;

	return l >= ws->s->lst && l < ws->s->lst + ws->s->n_lst;
}

static void worker_main(struct server *s, bool dgrams) __attribute__((noreturn));

static void worker_main(struct server *s, bool dgrams)
{
	struct epoll_event evs[256], ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct wstate ws = { .s = s, .kind = s->opt->builtin };

	ws.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ws.epfd < 0 || handshake() < 0 ||
	    epoll_ctl(ws.epfd, EPOLL_CTL_ADD, CH_FD, &ev) < 0)
		_exit(1);
	ws.dgrams = dgrams && wdgram_start(s, ws.epfd);
	while (!ws.stopping || ws.open > 0) {
		/* Nothing open: wait on the channel itself, no epoll_wait. */
		if (ws.open == 0 && !ws.dgrams) {
			on_channel(&ws, true);
			flush_done(&ws);
			continue;
		}
		int n = epoll_wait(ws.epfd, evs, 256, -1);
		unsigned answered = 0;

		if (n < 0 && errno != EINTR)
			_exit(1);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				on_channel(&ws, false);
			else if (is_listener(&ws, evs[i].data.ptr))
				answered += wdgram_ready(s, evs[i].data.ptr);
			else
				on_conn(&ws, evs[i].data.ptr, evs[i].events);
		}
		flush_done(&ws);
		if (answered && mono_ms() - ws.told_ms >= 1000)
			tell_busy(&ws);
		(void)log_limits_flush(false);	/* the datagram refusals' counts */
	}
	_exit(0);
}

/* Closes every fd above CH_FD but those in keep[0..n), sorted. */
static void close_all_but(const int *keep, int n)
{
	unsigned lo = CH_FD + 1;

	for (int i = 0; i <= n; i++) {
		unsigned hi = i < n ? (unsigned)keep[i] : ~0U;

		if (hi > lo) {
#ifdef HAVE_CLOSE_RANGE
			if (close_range(lo, hi - 1, 0) == 0)
				goto next;
#endif
			for (unsigned fd = lo; fd < hi && fd < 65536; fd++)
				close((int)fd);
		}
#ifdef HAVE_CLOSE_RANGE
next:
#endif
		lo = i < n ? (unsigned)keep[i] + 1 : lo;
	}
}

static int cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Starts a built-in worker with ch as its channel; returns its pid.
 * dgrams: it answers the datagram sockets too. */
pid_t worker_fork(struct server *s, int ch, bool dgrams, uint32_t *cg)
{
	pid_t pid;
	sigset_t none;
	int null, keep[64], n = 0, procs = -1;

	/* --cgroup: the child moves into its cgroup before anything else
	 * (the spawn path's clone3 would skip fork's bookkeeping in libc,
	 * which a worker, running on, needs). */
	*cg = 0;
	if (cgroup_on()) {
		int dir = cgroup_create(true, cg), e;

		if (dir < 0)
			return -1;
		procs = openat(dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
		e = errno;
		close(dir);
		if (procs < 0) {
			cgroup_discard(*cg);
			*cg = 0;
			errno = e;
			return -1;
		}
	}
	pid = fork();
	if (pid != 0) {
		int e = errno;

		if (procs >= 0)
			close(procs);
		if (pid < 0 && *cg) {
			cgroup_discard(*cg);
			*cg = 0;
		}
		errno = e;
		return pid;
	}
	if (procs >= 0 && write(procs, "0", 1) != 1) {
		log_err("worker pid %d: cannot move into its cgroup: %s", (int)getpid(),
			strerror(errno));
		_exit(1);
	}
	/* A datagram socket the service manager passed as fd 3 would be
	 * lost to the channel's dup2 below: moved up first. */
	for (int i = 0; dgrams && i < s->n_lst; i++)
		if (s->lst[i].socktype == SOCK_DGRAM && s->lst[i].fd >= 0 && s->lst[i].fd <= CH_FD)
			s->lst[i].fd = fcntl(s->lst[i].fd, F_DUPFD_CLOEXEC, CH_FD + 1);
	/* Like a persistent worker: fds 0 and 1 on /dev/null, 2 shared. */
	null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		_exit(1);
	if (ch != CH_FD && dup2(ch, CH_FD) < 0)
		_exit(1);
	/* The master's listeners, epoll, signalfd...: no exec sheds them.
	 * The datagram sockets it answers stay, at the numbers they have
	 * (above CH_FD: the master's stdio and channel came first). */
	for (int i = 0; dgrams && i < s->n_lst && n < 64; i++)
		if (s->lst[i].socktype == SOCK_DGRAM && s->lst[i].fd > CH_FD)
			keep[n++] = s->lst[i].fd;
	qsort(keep, (size_t)n, sizeof keep[0], cmp_int);
	close_all_but(keep, n);
	for (int i = 0; i < s->n_lst; i++)
		if (s->lst[i].socktype != SOCK_DGRAM || !dgrams)
			s->lst[i].fd = -1;	/* closed above: not ours */
	setpgid(0, 0);
	if ((errno = contain_apply(s->opt)) != 0) {
		log_err("worker pid %d: --rlimit/--nice/--umask: %s", (int)getpid(), strerror(errno));
		_exit(1);
	}
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&s->sigs_ignored, sig) == 1)
			signal(sig, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);	/* a gone peer: EPIPE from write */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	worker_main(s, dgrams);
}
