/*
 * sdglue.c - the one place that chooses libsystemd or the in-tree fallback.
 *
 * Both speak the same LISTEN_FDS and NOTIFY_SOCKET protocols; the rest of
 * acceptd calls only these two functions and never asks which one it got.
 */
#include "config.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include <stdlib.h>
#include <unistd.h>

#include "core.h"

/* Returns the number of fds from the service manager (at 3..), 0 for none,
 * or a negative errno when LISTEN_* is garbage.  LISTEN_* leaves the
 * environment either way, so no handler inherits it. */
int sdg_listen_fds(char ***names)
{
#ifdef HAVE_LIBSYSTEMD
	return sd_listen_fds_with_names(1, names);
#else
	return sdc_listen_fds_with_names(names);
#endif
}

void sdg_notify(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
	(void)sd_notify(0, msg);
#else
	(void)sdc_notify(msg);
#endif
}

/* Returns > 0 when sent, 0 without NOTIFY_SOCKET, a negative errno. */
int sdg_notify_fds(const char *msg, const int *fds, unsigned n)
{
#ifdef HAVE_LIBSYSTEMD
	return sd_pid_notify_with_fds(0, 0, msg, fds, n);
#else
	return sdc_notify_with_fds(msg, fds, n);
#endif
}

/* The watchdog interval meant for this process, in microseconds; 0 for
 * none.  The variables stay in the environment (a reload re-executes
 * acceptd, which needs them again); spawn.c keeps them from handlers. */
long long sdg_watchdog_usec(void)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? (long long)usec : 0;
#else
	long long r = sdc_parse_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"),
					 getpid());

	return r > 0 ? r : 0;
#endif
}
