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

void notify_send(const char *msg)
{
#ifdef HAVE_LIBSYSTEMD
	(void)sd_notify(0, msg);
#else
	(void)sdc_notify(msg);
#endif
}
