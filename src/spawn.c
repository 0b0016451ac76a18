/*
 * spawn.c - start the process that serves one connection.
 *
 * A PROGRAM handler is started with vfork + execve (the master's size never
 * makes it slower; see vfork_exec for why not posix_spawn) and gets:
 *   fds 0 and 1 = the connection, 2 = acceptd's stderr, nothing else
 *     (every fd of ours is CLOEXEC from birth; close_range is the backstop);
 *   an empty signal mask and every signal at SIG_DFL - the ones acceptd
 *     found ignored at start are reset explicitly, since exec keeps SIG_IGN;
 *   a process group of its own, so -t and the drain can signal its children;
 *   --rlimit, --nice and --umask (contain.c);
 *   with --cgroup, a cgroup of its own (cgroup.c), which it is born in
 *     (clone3 CLONE_INTO_CGROUP, at vfork's cost) or moves into before exec;
 *   acceptd's environment minus its plumbing, plus the UCSPI variables.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"

/* Names acceptd sets per connection, or that belong to its own plumbing:
 * none may reach a handler from acceptd's environment. */
static const char *const dropped[] = {
	"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET",
	"WATCHDOG_USEC", "WATCHDOG_PID", "FDSTORE",
	"PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEIP",
	"TCPREMOTEPORT", "TCPREMOTEHOST", "TCPREMOTEINFO", "TCPCONNNUM",
	"UNIXREMOTEEUID", "UNIXREMOTEEGID", "UNIXREMOTEPID", "UNIXLOCALPATH",
	"UNIXREMOTEUID", "UNIXREMOTEGID",	/* names of acceptd 0.1's */
	"UDPLOCALIP", "UDPLOCALPORT", "UDPLOCALADDR", "UDPREMOTEIP", "UDPREMOTEPORT",
	"UDPREMOTEADDR",
	"REMOTE_ADDR", "REMOTE_PORT", "ACCEPTD_LISTENER", "ACCEPTD_WORKER_FD", "ACCEPTD_REEXEC", NULL
};

static bool is_dropped(const char *var)
{
	size_t n = strcspn(var, "=");

	/* PROXY_*: what a PROXY v2 header's TLVs say (proxy.c), set per
	 * connection or not at all - never an inherited value that looks
	 * like one. */
	if (strncmp(var, "PROXY_", 6) == 0)
		return true;

	for (int i = 0; dropped[i]; i++)
		if (strlen(dropped[i]) == n && strncmp(var, dropped[i], n) == 0)
			return true;
	return false;
}

/* The environment every handler starts from, with room at the end for the
 * per-connection variables; built once. */
char **spawn_base_env(char **environ_in)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ_in && environ_in[n])
		n++;
	env = calloc(n + ENV_MAX_VARS + 1, sizeof *env);
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!is_dropped(environ_in[i]))
			env[k++] = environ_in[i];
	return env;
}

/* PATH lookup once at start: a typo fails at once instead of per
 * connection, and each spawn skips the search. */
int spawn_resolve(const char *prog, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	struct stat st;

	if (strchr(prog, '/')) {
		snprintf(out, outlen, "%s", prog);
		return access(out, X_OK) == 0 && stat(out, &st) == 0 &&
		       S_ISREG(st.st_mode) ? 0 : -1;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		if (len == 0)
			snprintf(out, outlen, "./%s", prog);
		else
			snprintf(out, outlen, "%.*s/%s", (int)len, path, prog);
		if (access(out, X_OK) == 0 && stat(out, &st) == 0 && S_ISREG(st.st_mode))
			return 0;
		path += len + (path[len] == ':');
	}
	errno = ENOENT;
	return -1;
}

struct envbuf {
	char s[ENV_MAX_VARS][160];
	int n;
};

static void env_add(struct envbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void env_add(struct envbuf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->n == ENV_MAX_VARS)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s[b->n++], sizeof b->s[0], fmt, ap);
	va_end(ap);
}

static void conn_env(const struct conn_info *c, const char *lname, struct envbuf *b)
{
	b->n = 0;
	if (c->dgram && c->remote.family != AF_UNIX) {
		/* udpsvd's names (ipsvd), and busybox's IP:PORT forms; the
		 * remote is the first datagram's source. */
		char addr[ADDR_STRLEN];

		env_add(b, "PROTO=UDP");
		env_add(b, "UDPLOCALIP=%s", c->local.ip);
		env_add(b, "UDPLOCALPORT=%u", c->local.port);
		addr_peer_format(&c->local, addr, sizeof addr);
		env_add(b, "UDPLOCALADDR=%s", addr);
		env_add(b, "UDPREMOTEIP=%s", c->remote.ip);
		env_add(b, "UDPREMOTEPORT=%u", c->remote.port);
		addr_peer_format(&c->remote, addr, sizeof addr);
		env_add(b, "UDPREMOTEADDR=%s", addr);
		env_add(b, "ACCEPTD_LISTENER=%s", lname);
		return;
	}
	if (c->remote.family == AF_UNIX) {
		/* UCSPI-UNIX's names (ucspi-unix, nosh): SO_PEERCRED gives
		 * the effective ids.  The listener's path is as bound, "@" for
		 * an abstract name; an unnamed socket has none to give.  A
		 * datagram's sender is known when the kernel said
		 * (SCM_CREDENTIALS, dgram.c). */
		env_add(b, "PROTO=UNIX");
		if (!c->dgram || c->uid != (uid_t)-1) {
			env_add(b, "UNIXREMOTEEUID=%u", (unsigned)c->uid);
			env_add(b, "UNIXREMOTEEGID=%u", (unsigned)c->gid);
			env_add(b, "UNIXREMOTEPID=%d", (int)c->pid);
		}
		if (c->local.path[0])
			env_add(b, "UNIXLOCALPATH=%s", c->local.path);
		if (c->dgram) {
			env_add(b, "ACCEPTD_LISTENER=%s", lname);
			return;
		}
	} else {
		env_add(b, "PROTO=TCP");
		env_add(b, "TCPLOCALIP=%s", c->local.ip);
		env_add(b, "TCPLOCALPORT=%u", c->local.port);
		env_add(b, "TCPREMOTEIP=%s", c->remote.ip);
		env_add(b, "TCPREMOTEPORT=%u", c->remote.port);
		env_add(b, "REMOTE_ADDR=%s", c->remote.ip);
		env_add(b, "REMOTE_PORT=%u", c->remote.port);
	}
	env_add(b, "TCPCONNNUM=%u", c->connnum);
	env_add(b, "ACCEPTD_LISTENER=%s", lname);
}

/* Everything the child needs, prepared by the parent: a vfork child
 * shares our memory and must not allocate, lock or return. */
struct exec_plan {
	const char *path;
	char **argv;
	char **envp;
	int src[4], dst[4];	/* fd src[i] becomes fd dst[i] */
	int nfds;
	const sigset_t *reset;	/* to SIG_DFL: exec keeps SIG_IGN */
	const struct options *contain;	/* --rlimit, --nice, --umask */
	int cgroup;		/* --cgroup: its directory, to be born in; -1 none */
	int procs;		/* ...or its cgroup.procs, to move into first */
	volatile int err;	/* set by the child when exec fails */
	volatile bool contained;	/* ...in contain_apply, before the exec */
};

static void child_exec(struct exec_plan *p) __attribute__((noreturn));

static void child_exec(struct exec_plan *p)
{
	static const struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int top = 2;

	/* "0" is the writer: this child, before anything of the handler's
	 * own can run. */
	if (p->procs >= 0 && write(p->procs, "0", 1) != 1)
		goto fail;
	for (int i = 0; i < p->nfds; i++) {
		/* dup2 onto itself would keep CLOEXEC: clear it instead. */
		if (p->src[i] == p->dst[i] ? fcntl(p->dst[i], F_SETFD, 0) < 0 :
		    dup2(p->src[i], p->dst[i]) < 0)
			goto fail;
		if (p->dst[i] > top)
			top = p->dst[i];
	}
	/* The backstop: ours are CLOEXEC from birth and inherited ones from
	 * the start (listen_seal_inherited).  Without close_range (before
	 * 5.9) fd by fd up to the limit: system calls only, as vfork wants. */
#ifdef HAVE_CLOSE_RANGE
	if (close_range((unsigned)top + 1, ~0U, 0) < 0)
#endif
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
			for (rlim_t fd = (rlim_t)top + 1; fd < rl.rlim_cur && fd < 1048576; fd++)
				close((int)fd);
	}
	setpgid(0, 0);
	if ((errno = contain_apply(p->contain)) != 0) {
		p->contained = true;
		goto fail;
	}
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(p->reset, sig) == 1)
			sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(p->path, p->argv, p->envp);
fail:
	p->err = errno ? errno : EINVAL;
	_exit(127);
}

/* vfork, not posix_spawn: glibc's posix_spawn leaves its internal signals
 * (32, 33) at SIG_IGN in the child, and exec keeps them so; and it walks
 * all 64 dispositions with a syscall each.  The parent is suspended until
 * the child execs or exits, so the plan stays valid and setpgid is done
 * before we could signal the group. */
static pid_t vfork_exec(struct exec_plan *p)
{
	pid_t pid = vfork();

	if (pid == 0)
		child_exec(p);
	return pid;
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* clone3's arguments as of Linux 5.7 (cgroup last): defined here so that
 * older headers build it. */
struct clone3_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
		 set_tid, set_tid_size, cgroup;
};

/* Born in its cgroup at vfork's cost: clone3 with CLONE_VM | CLONE_VFORK |
 * CLONE_INTO_CGROUP.  A child sharing our memory cannot return from a C
 * function on our stack (it would overwrite the frame we return through;
 * vfork is written in assembly for that reason): it gets a stack of its
 * own and starts in child_exec from these few instructions.  Without
 * CLONE_VM the child would copy our page tables, measured at +130 to
 * +290 us a connection here (bench/RESULTS.md).  x86-64 only; ASan and
 * valgrind cannot follow a child on a foreign stack, so there, and on
 * other architectures, the vfork child moves itself (move_into). */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__x86_64__) && defined(SYS_clone3) && !defined(__SANITIZE_ADDRESS__) && \
	!defined(__SANITIZE_THREAD__) && !__has_feature(address_sanitizer) && \
	!__has_feature(thread_sanitizer) && !__has_feature(memory_sanitizer)
#define CLONE3_VM 1
#define CHILD_STACK (64 * 1024)

static long clone3_vm(struct clone3_args *a, struct exec_plan *p)
{
	register long rax __asm__("rax") = SYS_clone3;
	register struct clone3_args *rdi __asm__("rdi") = a;
	register long rsi __asm__("rsi") = (long)sizeof *a;
	register struct exec_plan *r12 __asm__("r12") = p;
	register void (*r13)(struct exec_plan *) __asm__("r13") = child_exec;

	/* The child comes back from syscall with rax 0 on the new stack
	 * (16-byte aligned: the call makes it a function's entry); every
	 * other register is ours, r12 and r13 among them. */
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r12, %%rdi\n\t"
			 "call *%%r13\n\t"
			 "ud2\n"
			 "1:"
			 : "+r"(rax)
			 : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
			 : "rcx", "r11", "memory", "cc");
	return rax;
}

static pid_t born_into(struct exec_plan *p)
{
	static char *stack;
	struct clone3_args a = { .flags = CLONE_VM | CLONE_VFORK | CLONE_INTO_CGROUP,
		.exit_signal = SIGCHLD, .stack_size = CHILD_STACK, .cgroup = (uint64_t)p->cgroup };
	long pid;

	if (!stack) {
		/* One for every child: each runs on it only until its exec,
		 * with us suspended meanwhile.  A guard page below it. */
		char *m = mmap(NULL, CHILD_STACK + 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

		if (m == MAP_FAILED)
			return -1;
		if (mprotect(m, 4096, PROT_NONE) < 0) {
			munmap(m, CHILD_STACK + 4096);
			return -1;
		}
		stack = m + 4096;
	}
	a.stack = (uint64_t)(uintptr_t)stack;
	pid = clone3_vm(&a, p);
	if (pid < 0) {
		errno = (int)-pid;
		return -1;
	}
	return (pid_t)pid;
}
#endif

/* The fallback: a vfork child that writes itself into its cgroup before
 * anything else, so the handler still never runs outside it. */
static pid_t move_into(struct exec_plan *p)
{
	pid_t pid;
	int e;

	p->procs = openat(p->cgroup, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (p->procs < 0)
		return -1;
	pid = vfork_exec(p);
	e = errno;
	close(p->procs);
	p->procs = -1;
	errno = e;
	return pid;
}

/* clone3 until its first answer says it cannot (ENOSYS before Linux 5.3
 * or where filtered: systemd's RestrictNamespaces= answers it so, since a
 * filter cannot see the flags; E2BIG before 5.7; EPERM from a seccomp
 * filter); then move_into for good.  ACCEPTD_CGROUP_MOVE=1 asks for
 * move_into from the start (tests and bench/cgroup compare the two). */
static pid_t start_in_cgroup(struct exec_plan *p)
{
#ifdef CLONE3_VM
	static int clone3_ok = -1;	/* unknown */
	pid_t pid;

	if (clone3_ok < 0 && getenv("ACCEPTD_CGROUP_MOVE") &&
	    strcmp(getenv("ACCEPTD_CGROUP_MOVE"), "1") == 0)
		clone3_ok = 0;
	if (clone3_ok) {
		pid = born_into(p);
		/* What says clone3 or its flag is not to be had; any other
		 * error is this start's, not the path's. */
		if (pid >= 0 || clone3_ok > 0 ||
		    (errno != ENOSYS && errno != E2BIG && errno != EPERM && errno != EINVAL)) {
			clone3_ok = pid >= 0 ? 1 : clone3_ok;
			return pid;
		}
		clone3_ok = 0;
		log_info("--cgroup: clone3 with CLONE_INTO_CGROUP failed (%s): handlers move "
			 "into their cgroup before exec instead", strerror(errno));
	}
#endif
	return move_into(p);
}

/* Returns the pid, or -1 with errno set (nothing is left running).  With
 * --cgroup, *cg is its cgroup (cgroup.c). */
static pid_t run_plan(struct exec_plan *p, bool worker, uint32_t *cg)
{
	pid_t pid;
	int e;

	*cg = 0;
	p->err = 0;
	p->contained = false;
	p->cgroup = p->procs = -1;
	if (cgroup_on() && (p->cgroup = cgroup_create(worker, cg)) < 0)
		return -1;
	pid = p->cgroup >= 0 ? start_in_cgroup(p) : vfork_exec(p);
	e = errno;
	if (p->cgroup >= 0)
		close(p->cgroup);
	if (pid >= 0 && p->err) {
		static struct log_limit lim = { .what = "refused --rlimit/--nice/--umask" };

		waitpid(pid, NULL, 0);	/* exited at once: reap it here */
		e = p->err;
		/* The caller's line says only the errno: name the cause. */
		if (p->contained && log_limited(&lim))
			log_err("--rlimit/--nice/--umask: the kernel refused them for a new "
				"process: %s", strerror(e));
		pid = -1;
	}
	if (pid < 0 && *cg) {
		cgroup_discard(*cg);
		*cg = 0;
	}
	errno = e;
	return pid;
}

/* Does the matched rule set or unset the variable var ("NAME=...")? */
static bool rule_names(const struct rule *r, const char *var)
{
	size_t n = strcspn(var, "=");

	for (unsigned i = 0; i < r->n_vars; i++)
		if (strncmp(r->vars[i].name, var, n) == 0 && r->vars[i].name[n] == '\0')
			return true;
	return false;
}

/* Is var i the rule's last word on its name (nothing later sets or
 * unsets it)?  A later one wins, as in tcpserver's environment. */
static bool last_word(const struct rule *r, unsigned i)
{
	for (unsigned j = i + 1; j < r->n_vars; j++)
		if (strcmp(r->vars[j].name, r->vars[i].name) == 0)
			return false;
	return true;
}

/* A handler's environment when a rule or PROXY TLVs add to it, built in
 * memory of our own (the parent's; the vfork child only reads it): the
 * base, the UCSPI variables, the TLVs', then the rule's - a variable the
 * rule sets or unsets is left out of the others, as tcpserver applies a
 * rule after its own variables.  NULL when out of memory. */
static char **full_env(const struct server *s, const struct conn_info *c,
		       struct envbuf *eb)
{
	static char xenv[CONN_XENV_MAX];	/* execve wants them writable */
	static char **env;
	static size_t cap;
	static char *sets;
	static size_t setscap;
	const struct rule *r = c->rule;
	size_t nbase = 0, need, n = 0, setslen = 0;

	while (s->base_env[nbase])
		nbase++;
	need = nbase + (size_t)eb->n + c->xenv_len / 2 + (r ? r->n_vars : 0) + 1;
	if (need > cap) {
		char **e = realloc(env, need * sizeof *e);

		if (!e)
			return NULL;
		env = e;
		cap = need;
	}
	for (unsigned i = 0; r && i < r->n_vars; i++)
		if (r->vars[i].value)
			setslen += strlen(r->vars[i].name) + strlen(r->vars[i].value) + 2;
	if (setslen > setscap) {
		char *b = realloc(sets, setslen);

		if (!b)
			return NULL;
		sets = b;
		setscap = setslen;
	}
	for (size_t i = 0; i < nbase; i++)
		if (!r || !rule_names(r, s->base_env[i]))
			env[n++] = s->base_env[i];
	for (int i = 0; i < eb->n; i++)
		if (!r || !rule_names(r, eb->s[i]))
			env[n++] = eb->s[i];
	memcpy(xenv, c->xenv, c->xenv_len);
	for (size_t i = 0; i < c->xenv_len; i += strlen(xenv + i) + 1)
		if (!r || !rule_names(r, xenv + i))
			env[n++] = xenv + i;
	for (unsigned i = 0, at = 0; r && i < r->n_vars; i++) {
		if (!r->vars[i].value || !last_word(r, i))
			continue;
		env[n++] = sets + at;
		at += (unsigned)sprintf(sets + at, "%s=%s", r->vars[i].name,
					r->vars[i].value) + 1;
	}
	env[n] = NULL;
	return env;
}

static int spawn_program(struct server *s, const struct conn_info *c, pid_t *pid, uint32_t *cg)
{
	static struct envbuf eb;
	struct exec_plan plan = { .path = s->program_path, .argv = s->opt->program,
		.envp = s->base_env, .src = { c->fd, c->fd }, .dst = { 0, 1 }, .nfds = 2,
		.reset = &s->sigs_ignored, .contain = s->opt };
	char lname[ADDR_STRLEN];
	size_t nbase = 0;

	if (c->lst)
		snprintf(lname, sizeof lname, "%s", c->lst->name);
	else
		addr_peer_format(&c->local, lname, sizeof lname);
	conn_env(c, lname, &eb);
	if (c->rule && c->rule->argv) {
		plan.path = c->rule->argv[0];	/* absolute: rules.c */
		plan.argv = c->rule->argv;
	}
	if (c->rule || c->xenv_len) {
		plan.envp = full_env(s, c, &eb);
		if (!plan.envp)
			return ENOMEM;
		*pid = run_plan(&plan, false, cg);
		return *pid < 0 ? errno : 0;
	}
	/* The common case costs no copy: the base has room at its end. */
	while (plan.envp[nbase])
		nbase++;
	for (int i = 0; i < eb.n; i++)
		plan.envp[nbase + (size_t)i] = eb.s[i];
	plan.envp[nbase + (size_t)eb.n] = NULL;	/* not a longer earlier one's */
	*pid = run_plan(&plan, false, cg);
	plan.envp[nbase] = NULL;	/* the base stays reusable */
	return *pid < 0 ? errno : 0;
}

/* Starts a persistent PROGRAM worker (--fd-passing): its channel on fd 3,
 * /dev/null on fds 0 and 1, acceptd's stderr on fd 2; no UCSPI variables
 * (they come with each connection) but ACCEPTD_WORKER_FD=3. */
pid_t spawn_worker(struct server *s, int ch, uint32_t *cg)
{
	static char fdvar[] = "ACCEPTD_WORKER_FD=3";
	struct exec_plan plan = { .path = s->program_path, .argv = s->opt->program,
		.envp = s->base_env, .nfds = 3, .reset = &s->sigs_ignored, .contain = s->opt };
	size_t nbase = 0;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t pid;

	if (null < 0)
		return -1;
	plan.src[0] = null, plan.dst[0] = 0;
	plan.src[1] = null, plan.dst[1] = 1;
	plan.src[2] = ch, plan.dst[2] = 3;
	while (plan.envp[nbase])
		nbase++;
	plan.envp[nbase] = fdvar;
	pid = run_plan(&plan, true, cg);
	plan.envp[nbase] = NULL;
	close(null);
	return pid;
}

/* Returns the handler's pid, or -1 with errno set (nothing was started). */
pid_t spawn_handler(struct server *s, const struct conn_info *c, uint32_t *cg)
{
	pid_t pid = -1;
	int r = spawn_program(s, c, &pid, cg);

	if (r != 0) {
		errno = r;
		return -1;
	}
	return pid;
}
