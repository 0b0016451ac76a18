/*
 * signals.c - signals arrive as reads on a signalfd, in the event loop.
 *
 * The signals acceptd acts on are blocked for good and read from one fd,
 * so no handler ever runs asynchronously and reaping happens in the loop.
 * Handlers must not inherit any of this: spawn.c gives them an empty mask
 * and resets to SIG_DFL every signal that was ignored when acceptd started
 * (exec keeps SIG_IGN), which is recorded here before anything changes.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

static const int watched[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };

/* glibc reserves the first real-time signals (32, 33) and its sigaction
 * refuses them, yet a parent may have left them at SIG_IGN - glibc's own
 * posix_spawn does - and exec would pass that on to every handler.  The
 * raw syscall can look and reset.  An all-zero kernel sigaction is SIG_DFL
 * with no flags and an empty mask on every architecture. */
static void reset_reserved_signals(void)
{
	for (int sig = 32; sig < SIGRTMIN; sig++) {
		unsigned long old[8] = { 0 }, dfl[8] = { 0 };

		if (syscall(SYS_rt_sigaction, sig, NULL, old, (size_t)(NSIG / 8)) == 0 &&
		    old[0] == (unsigned long)(uintptr_t)SIG_IGN)
			syscall(SYS_rt_sigaction, sig, dfl, NULL, (size_t)(NSIG / 8));
	}
}

int signals_init(sigset_t *reset_in_children)
{
	sigset_t set;

	reset_reserved_signals();

	sigemptyset(reset_in_children);
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			sigaddset(reset_in_children, sig);
	}
	/* A closed stderr pipe must not kill the daemon; writes to sockets
	 * use MSG_NOSIGNAL anyway.  Handlers get SIGPIPE back. */
	signal(SIGPIPE, SIG_IGN);
	sigaddset(reset_in_children, SIGPIPE);
	/* SIGCHLD left at SIG_IGN by a parent (exec keeps it so) makes the
	 * kernel reap our children itself: no SIGCHLD, waitpid finds nothing,
	 * and every handler would count as running forever.  Handlers get the
	 * default anyway (it is in reset_in_children when it was ignored). */
	signal(SIGCHLD, SIG_DFL);

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++)
		sigaddset(&set, watched[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The next pending signal, or 0 when none is left. */
int signals_read(int sigfd)
{
	struct signalfd_siginfo si;
	ssize_t n;

	do
		n = read(sigfd, &si, sizeof si);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof si ? (int)si.ssi_signo : 0;
}

/* "TERM" for SIGTERM, for log lines.  sigabbrev_np is glibc 2.32 and
 * later; elsewhere the signals acceptd itself names, else "?". */
const char *signals_abbrev(int sig)
{
#ifdef HAVE_SIGABBREV_NP
	const char *a = sigabbrev_np(sig);

	return a ? a : "?";
#else
	switch (sig) {
	case SIGHUP: return "HUP";
	case SIGINT: return "INT";
	case SIGQUIT: return "QUIT";
	case SIGKILL: return "KILL";
	case SIGUSR1: return "USR1";
	case SIGTERM: return "TERM";
	default: return "?";
	}
#endif
}
