/*
 * sdcompat.c - the sd-daemon protocols without libsystemd.
 *
 * --without-systemd builds use these; libsystemd builds still compile them
 * so the unit tests check the same LISTEN_* rules either way.  The rules are
 * sd_listen_fds(3)'s: the fds are ours only when LISTEN_PID is our pid;
 * they start at 3; LISTEN_FDNAMES, when set, names each of them.
 * Unparsable values are an error (-EINVAL) that callers treat as "no
 * sockets from the service manager", never as a fatal condition.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"

#define SD_FDS_START 3
#define SD_FDS_MAX 4096		/* far above any real unit; guards fd arithmetic */

static void free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static char **split_names(const char *names_s, int n)
{
	char **names = calloc((size_t)n + 1, sizeof *names);
	const char *p = names_s;
	int i = 0;

	if (!names)
		return NULL;
	for (; i < n; i++) {
		const char *end = names_s ? strchr(p, ':') : NULL;
		size_t len = names_s ? (end ? (size_t)(end - p) : strlen(p)) : 0;

		names[i] = names_s ? strndup(p, len) : strdup("unknown");
		if (!names[i])
			break;
		if (names_s) {
			if (!end && i != n - 1)
				break;	/* fewer names than fds */
			if (end && i == n - 1)
				break;	/* more names than fds */
			p = end ? end + 1 : p + len;
		}
	}
	if (i < n) {
		free_names(names, i + 1);
		return NULL;
	}
	return names;
}

/* Pure: no environment, no fds.  On success with n > 0, *names holds n
 * strings (or is left alone if names is NULL). */
int sdc_parse_listen_env(const char *pid_s, const char *fds_s, const char *names_s,
			 pid_t self, int *n, char ***names)
{
	unsigned long long pid, fds;
	char **list;

	*n = 0;
	if (!pid_s || !fds_s)
		return 0;
	if (options_parse_uint(pid_s, 0x7fffffff, &pid) < 0 || pid == 0)
		return -EINVAL;
	if ((pid_t)pid != self)
		return 0;
	if (options_parse_uint(fds_s, SD_FDS_MAX, &fds) < 0)
		return -EINVAL;
	if (fds == 0)
		return 0;
	if (names_s && !*names_s)
		return -EINVAL;	/* as libsystemd: no names for n fds */
	if (names) {
		list = split_names(names_s, (int)fds);
		if (!list)
			return -EINVAL;
		*names = list;
	}
	*n = (int)fds;
	return 0;
}

int sdc_listen_fds_with_names(char ***names)
{
	int n, r;

	r = sdc_parse_listen_env(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
				 getenv("LISTEN_FDNAMES"), getpid(), &n, names);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (r < 0)
		return r;
	for (int fd = SD_FDS_START; fd < SD_FDS_START + n; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
			r = -errno;
			if (names) {
				free_names(*names, n);
				*names = NULL;
			}
			return r;
		}
	}
	return n;
}

/* NOTIFY_SOCKET is a path, or "@name" for the abstract namespace. */
/* WATCHDOG_USEC for us: the interval in microseconds, 0 when there is no
 * watchdog or it is meant for another process (WATCHDOG_PID), -EINVAL
 * for garbage.  Pure, for the unit tests. */
long long sdc_parse_watchdog(const char *usec_s, const char *pid_s, pid_t self)
{
	unsigned long long usec, pid;

	if (!usec_s || !*usec_s)
		return 0;
	if (options_parse_uint(usec_s, (1ULL << 62), &usec) < 0 || usec == 0)
		return -EINVAL;
	if (pid_s && *pid_s) {
		if (options_parse_uint(pid_s, (unsigned long long)INT32_MAX, &pid) < 0 || pid == 0)
			return -EINVAL;
		if ((pid_t)pid != self)
			return 0;
	}
	return (long long)usec;
}

/* sd_pid_notify_with_fds(0, 0, ...): one datagram, the fds as SCM_RIGHTS. */
int sdc_notify_with_fds(const char *state, const int *fds, unsigned n_fds)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr mh;
	size_t len;
	ssize_t w;
	int fd, r;

	if (!path || !*path)
		return 0;
	if (n_fds > 16)
		return -E2BIG;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof sun.sun_path)
		return -EINVAL;
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	memset(&mh, 0, sizeof mh);
	mh.msg_name = &sun;
	mh.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	iov.iov_base = (void *)(uintptr_t)state;
	iov.iov_len = strlen(state);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (n_fds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof ctl);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Never wait on a manager that does not read: a lost STATUS or
	 * WATCHDOG beats a daemon stuck in sendmsg. */
	w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	r = w < 0 ? -errno : 1;
	close(fd);
	return r;
}

int sdc_notify(const char *state)
{
	return sdc_notify_with_fds(state, NULL, 0);
}
