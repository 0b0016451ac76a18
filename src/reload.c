/*
 * reload.c - SIGHUP: acceptd executes itself again, in place.
 *
 * Same pid, so a service manager's MAINPID stays right and every running
 * handler stays our child: the new image reaps it like the old one would
 * have.  The listening sockets cross the exec the way they arrive at any
 * start, through LISTEN_FDS/LISTEN_FDNAMES (one acquisition path): ours
 * named acceptd-own-ADDR as in the fd store, so the new image claims them
 * for its --listen addresses and closes what it no longer asks for;
 * inherited ones under their own names.  What the new image must know to
 * keep counting - the handlers still running with their sources, the old
 * workers' connections, the counters - goes in a memfd named by
 * ACCEPTD_REEXEC.
 *
 * Zero downtime: the listening sockets never close, so a connect during
 * the exec waits in the backlog.  Connections the old image holds half
 * handled (a PROXY header being read, one waiting for a worker) are
 * finished first: accepting pauses until there are none, which takes at
 * most the header timeout.  Old pool workers see their channel
 * close at the exec (cleanly: poolsup_seal) and finish what they hold; their
 * connections count until they exit.
 *
 * Nothing irreversible happens before the exec can succeed: the new
 * command line is checked with the same parser, and if execve itself
 * fails every fd number moved for it is put back, so the old image goes
 * on serving.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core.h"

#define STATE_VERSION "acceptd-reexec 1"

extern char **environ;

static char exe[PATH_MAX];	/* the binary at start: an upgrade replaces it */
static int saved_argc;
static char **saved_argv;
static bool restored;		/* this image came from a reload */

void reload_init(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	const char *del = " (deleted)";

	saved_argc = argc;
	saved_argv = argv;
	exe[n > 0 ? n : 0] = '\0';
	/* Replaced on disk since we started: the path is what we want. */
	n = (ssize_t)strlen(exe);
	if (n > (ssize_t)strlen(del) && strcmp(exe + n - strlen(del), del) == 0)
		exe[n - strlen(del)] = '\0';
}

bool reload_restored(void)
{
	return restored;
}

/* Would the new image start?  The same checks main() makes, without
 * touching anything. */
static int validate(const struct server *s, char *err, size_t errlen)
{
	struct options o;
	struct privs p;
	char path[PATH_MAX];

	if (!exe[0] || access(exe, X_OK) < 0) {
		snprintf(err, errlen, "cannot execute %.200s: %s",
			 exe[0] ? exe : "/proc/self/exe", strerror(errno));
		return -1;
	}
	options_defaults(&o);
	if (options_parse(&o, saved_argc, saved_argv, err, errlen) != OPT_OK)
		goto fail;
	/* The file may name another user now: one that does not exist, or
	 * one this image (no longer root) cannot become, would stop the new
	 * image after the exec (privs_drop's checks, made here first). */
	if (o.user && (privs_resolve(o.user, &p, err, errlen) < 0 ||
		       privs_check(&p, o.user, true, err, errlen) < 0))
		goto fail;
	/* listen_probe then asks whether a socket file it must bind could
	 * be given to them by this image, which may no longer be root. */
	if (privs_socket_owner(&o, err, errlen) < 0)
		goto fail;
	if (listen_probe(s, &o, err, errlen) < 0)
		goto fail;
	if (o.program && spawn_resolve(o.program[0], path, sizeof path) < 0) {
		snprintf(err, errlen, "PROGRAM '%s': not found or not executable", o.program[0]);
		goto fail;
	}
	/* A limit this (dropped) image could not give its children. */
	if (contain_check(&o, err, errlen) < 0 || cgroup_check(&o, err, errlen) < 0)
		goto fail;
	/* A broken rules file keeps this image, and its rules, serving. */
	if (o.rules) {
		struct rules *r = rulesfile_load(&o, err, errlen);

		if (!r)
			goto fail;
		rules_free(r);
	}
	options_free(&o);
	return 0;
fail:
	options_free(&o);
	return -1;
}

/* Connections the old image holds half handled must be done first. */
bool reload_quiet(const struct server *s)
{
	return s->proxying == 0 && !pool_holding(s);
}

/* The state, written here and read by reload_restore: one line a fact.
 *   counters TOTAL REFUSED FAILED TIMEOUTS CGKILLS  (an image before
 *                                       --cgroup wrote the first three)
 *   child PID STARTED_MS STAGE PEER     a running handler
 *   worker PID N                        a pool worker, then its N...
 *   held PEER                           ...connections
 *   dgram PID FDNAME                    the child has that datagram socket
 *   cgroup PID ID                       the child or worker runs in that
 *                                       cgroup (cgroup.c's id)
 *   cgroupnext N                        the next cgroup's number
 *   cgrouppending ID                    killed, still to be removed
 * PEER is FAMILY(4, 6, u) HEX32 PORT. */
static void put_peer(FILE *f, const struct peer *p)
{
	fprintf(f, "%s ", p->family == AF_INET ? "4" : p->family == AF_INET6 ? "6" : "u");
	for (int i = 0; i < 16; i++)
		fprintf(f, "%02x", p->raw[i]);
	fprintf(f, " %u\n", p->port);
}

static void put_child(void *arg, pid_t pid, int64_t started_ms, int stage,
		      const struct peer *remote)
{
	fprintf(arg, "child %d %lld %d ", (int)pid, (long long)started_ms, stage);
	put_peer(arg, remote);
}

static void put_worker(void *arg, pid_t pid, unsigned n_held)
{
	fprintf(arg, "worker %d %u\n", (int)pid, n_held);
}

static void put_held(void *arg, const struct peer *remote)
{
	fputs("held ", arg);
	put_peer(arg, remote);
}

static void put_cgroup(void *arg, pid_t pid, uint32_t id)
{
	fprintf(arg, "cgroup %d %u\n", (int)pid, (unsigned)id);
}

static void fd_name(const struct listener *l, char *out, size_t len);

static void put_dgram(void *arg, pid_t pid, const struct listener *l)
{
	char name[256];

	fd_name(l, name, sizeof name);
	fprintf(arg, "dgram %d %s\n", (int)pid, name);
}

static int write_state(struct server *s)
{
	/* CLOEXEC: only the copy move_to_three puts at 3+n crosses the exec;
	 * this one would otherwise stay open in every later image. */
	int fd = memfd_create("acceptd-reexec", MFD_CLOEXEC), dupfd;
	struct handover h = { .child = put_child, .worker = put_worker, .held = put_held,
		.dgram = put_dgram, .cgroup = put_cgroup };
	FILE *f;

	if (fd < 0)
		return -1;
	dupfd = dup(fd);
	f = dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
	if (!f) {
		if (dupfd >= 0)
			close(dupfd);
		close(fd);
		return -1;
	}
	fprintf(f, "%s\ncounters %llu %llu %llu %llu %llu\n", STATE_VERSION, s->total,
		s->refused, s->failed, s->timeouts, s->cgkills);
	if (cgroup_on()) {
		uint32_t ids[256];
		unsigned n = cgroup_pending_ids(ids, 256);

		fprintf(f, "cgroupnext %u\n", (unsigned)cgroup_next());
		for (unsigned i = 0; i < n; i++)	/* more: the sweep finds them */
			fprintf(f, "cgrouppending %u\n", (unsigned)ids[i]);
	}
	h.arg = f;
	conns_hand_over(s, &h);
	poolsup_hand_over(s, &h);
	if (fclose(f) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void fd_name(const struct listener *l, char *out, size_t len)
{
	if (l->owned)
		listen_store_name(l, out, len);
	else
		snprintf(out, len, "%s", l->fdname[0] ? l->fdname : "unknown");
}

/* Puts src[0..n) at 3..3+n, without close-on-exec, remembering what those
 * numbers held so undo() can give them back.  The copies in waiting go to
 * the lowest free numbers above that range, not to a fixed spare base: a
 * base at or above the soft RLIMIT_NOFILE makes F_DUPFD fail with EINVAL,
 * and systemd starts services at 1024.  So the rearranging needs only
 * 2n free fds beyond what is open, at any limit. */
struct moved {
	int n, placed;		/* fds to move; how many dup2s were done */
	int *tmp, *backup, *backup_flags;
};

/* Puts back what 3..3+placed held and closes every copy made; after it
 * the process holds exactly the fds it held before move_to_three. */
static void undo(struct moved *m)
{
	for (int i = 0; i < m->placed; i++) {
		if (m->backup[i] >= 0) {
			dup2(m->backup[i], 3 + i);
			fcntl(3 + i, F_SETFD, m->backup_flags[i]);
		} else {
			close(3 + i);	/* was free before */
		}
	}
	for (int i = 0; i < m->n; i++) {
		if (m->tmp[i] >= 0)
			close(m->tmp[i]);
		if (m->backup[i] >= 0)
			close(m->backup[i]);
	}
	free(m->tmp);
	m->tmp = NULL;
	m->n = m->placed = 0;
}

static int move_to_three(const int *src, int n, struct moved *m)
{
	m->n = m->placed = 0;
	m->tmp = malloc(sizeof(int) * 3 * (size_t)n);
	if (!m->tmp)
		return -1;
	m->backup = m->tmp + n;
	m->backup_flags = m->tmp + 2 * n;
	for (int i = 0; i < n; i++)
		m->tmp[i] = m->backup[i] = -1;
	m->n = n;
	for (int i = 0; i < n; i++)
		if ((m->tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3 + n)) < 0)
			goto fail;
	for (int i = 0; i < n; i++) {
		int flags = fcntl(3 + i, F_GETFD);

		if (flags < 0)
			continue;	/* free: nothing to keep */
		m->backup_flags[i] = flags;
		if ((m->backup[i] = fcntl(3 + i, F_DUPFD_CLOEXEC, 3 + n)) < 0)
			goto fail;
	}
	for (int i = 0; i < n; i++) {
		if (dup2(m->tmp[i], 3 + i) < 0)
			goto fail;
		m->placed = i + 1;
	}
	return 0;
fail:
	undo(m);
	return -1;
}

/* Called when SIGHUP came and reload_quiet() holds.  Returns only if the
 * reload failed; the old image then goes on as before. */
void reload_exec(struct server *s)
{
	static struct moved m;
	char err[512], num[32], *names = NULL;
	int *src = NULL, n = 0, state;
	size_t nlen = 0;
	bool sealed = false;

	if (validate(s, err, sizeof err) < 0) {
		log_err("reload: %s; still serving with the old configuration", err);
		sdg_notify("READY=1");
		return;
	}
	conns_reap(s);	/* exits so far are counted here, not carried over */
	/* Every listener crosses, however many: one lost here would be a
	 * port that stops answering after the reload. */
	src = malloc(sizeof *src * ((size_t)s->n_lst + 1));
	if (!src)
		goto fail_mem;
	for (int i = 0; i < s->n_lst; i++) {
		struct listener *l = &s->lst[i];
		char name[256];
		char *grown;

		if (l->is_conn || l->fd < 0)
			continue;
		fd_name(l, name, sizeof name);
		grown = realloc(names, nlen + strlen(name) + 2);
		if (!grown)
			goto fail_mem;
		names = grown;
		nlen += (size_t)sprintf(names + nlen, "%s%s", nlen ? ":" : "", name);
		src[n++] = l->fd;
	}
	/* Old workers need no STOP: their channels close with the exec
	 * (close-on-exec), which they take the same way - finish what they
	 * hold, then exit.  Sealed first, so that close is a clean one (see
	 * poolsup_seal); from here a failed exec retires them. */
	poolsup_seal(s);
	sealed = true;
	state = write_state(s);
	if (state < 0) {
		log_err("reload: cannot write the state for the new image: %s", strerror(errno));
		goto fail;
	}
	src[n] = state;
	if (move_to_three(src, n + 1, &m) < 0) {
		log_err("reload: cannot arrange fds: %s", strerror(errno));
		close(state);
		goto fail;
	}
	snprintf(num, sizeof num, "%d", (int)getpid());
	setenv("LISTEN_PID", num, 1);
	snprintf(num, sizeof num, "%d", n);
	setenv("LISTEN_FDS", num, 1);
	setenv("LISTEN_FDNAMES", names ? names : "", 1);
	snprintf(num, sizeof num, "%d", 3 + n);
	setenv("ACCEPTD_REEXEC", num, 1);
	log_notice("reload: executing %.200s", exe);
	execve(exe, saved_argv, environ);
	log_err("reload: cannot execute %.200s: %s; still serving", exe, strerror(errno));
	undo(&m);
	close(state);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("ACCEPTD_REEXEC");
	goto fail;
fail_mem:
	log_err("reload: out of memory; still serving");
fail:
	free(src);
	free(names);
	if (sealed)
		poolsup_unseal(s);
	sdg_notify("READY=1");
}

static int parse_peer(const char *fam, const char *hex, unsigned port, struct peer *p)
{
	memset(p, 0, sizeof *p);
	p->family = strcmp(fam, "4") == 0 ? AF_INET : strcmp(fam, "6") == 0 ? AF_INET6 :
		    strcmp(fam, "u") == 0 ? AF_UNIX : 0;
	if (!p->family || strlen(hex) != 32 || port > 65535)
		return -1;
	for (int i = 0; i < 16; i++) {
		unsigned b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		p->raw[i] = (uint8_t)b;
	}
	p->port = (uint16_t)port;
	if (p->family != AF_UNIX)
		inet_ntop(p->family, p->raw, p->ip, sizeof p->ip);
	return 0;
}


/* Whether fd is the memfd an old image of ours wrote. */
static bool is_state_fd(int fd)
{
	char link[64], target[128];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof target - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return strncmp(target, "/memfd:acceptd-reexec", 21) == 0;
}

/* The state names pids this image will signal (at -t, at the drain) and
 * count: only children of ours are taken.  waitid with WNOWAIT asks
 * without reaping; ECHILD means not ours (or long gone). */
static bool our_child(int pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	return pid > 1 && pid != getpid() &&
	       waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* A running handler of the old image has a datagram socket: until it
 * exits, the socket stays out of this image's poll set too. */
static void adopt_dgram(struct server *s, pid_t pid, const char *name)
{
	char have[256];

	for (int i = 0; i < s->n_lst; i++) {
		fd_name(&s->lst[i], have, sizeof have);
		if (s->lst[i].socktype == SOCK_DGRAM && strcmp(have, name) == 0) {
			conns_adopt_dgram(s, pid, &s->lst[i]);
			return;
		}
	}
}

/* The new image: picks up what the old one handed over. */
void reload_restore(struct server *s)
{
	const char *v = getenv("ACCEPTD_REEXEC");
	char line[512], fam[4], hex[40], name[256];
	unsigned long long a, b, c, d = 0, e = 0;
	int fd, held = 0;
	pid_t worker = 0;
	FILE *f;

	if (!v)
		return;
	fd = atoi(v);
	unsetenv("ACCEPTD_REEXEC");
	if (fd < 3 || !is_state_fd(fd))
		return;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return;
	}
	rewind(f);
	if (!fgets(line, sizeof line, f) || strncmp(line, STATE_VERSION, strlen(STATE_VERSION))) {
		log_warn("reload: state from the old image not understood; counting anew");
		fclose(f);
		return;
	}
	restored = true;
	while (fgets(line, sizeof line, f)) {
		struct peer p;
		long long started;
		unsigned port, stage;
		int pid, n;

		unsigned id;

		if (sscanf(line, "counters %llu %llu %llu %llu %llu", &a, &b, &c, &d, &e) >= 3) {
			s->total = a;
			s->refused = b;
			s->failed = c;
			s->timeouts = d;
			s->cgkills = e;
		} else if (sscanf(line, "child %d %lld %u %3s %39s %u", &pid, &started, &stage,
				  fam, hex, &port) == 6 && parse_peer(fam, hex, port, &p) == 0) {
			if (our_child(pid))
				conns_adopt_child(s, pid, started, stage, &p);
			else
				log_warn("reload: pid %d in the state is no child of ours; ignored", pid);
		} else if (sscanf(line, "worker %d %d", &pid, &n) == 2) {
			worker = 0;
			held = n;
			if (!our_child(pid)) {
				log_warn("reload: pid %d in the state is no child of ours; ignored", pid);
				continue;	/* its "held" lines are skipped: worker 0 */
			}
			worker = pid;
			conns_adopt_worker(s, pid);
		} else if (sscanf(line, "dgram %d %255s", &pid, name) == 2) {
			adopt_dgram(s, pid, name);
		} else if (sscanf(line, "cgroupnext %u", &id) == 1) {
			cgroup_adopt_next(id);
		} else if (sscanf(line, "cgroup %d %u", &pid, &id) == 2 && our_child(pid)) {
			/* Not adopted, the new image's sweep ends it. */
			if (conns_adopt_cgroup(s, pid, id))
				cgroup_adopt(id);
		} else if (sscanf(line, "cgrouppending %u", &id) == 1) {
			cgroup_adopt_pending(id);
		} else if (held > 0 && sscanf(line, "held %3s %39s %u", fam, hex, &port) == 3 &&
			   parse_peer(fam, hex, port, &p) == 0) {
			if (worker)
				conns_adopt_held(s, worker, &p);
			held--;
		}
	}
	fclose(f);
	log_notice("reload: done; %u connection(s) carried over", s->active);
}
