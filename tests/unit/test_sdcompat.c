/* test_sdcompat.c - unit tests of src/sdcompat.c: the LISTEN_PID /
 * LISTEN_FDS / LISTEN_FDNAMES rules of sdc_parse_listen_env as a table;
 * sdc_listen_fds_with_names against the real environment and fd 3 (in a
 * child process, so check's own fds stay untouched); sdc_notify to a
 * datagram socket on a path and in the abstract namespace. */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "suites.h"

#define SELF 123

static const struct {
	const char *pid, *fds, *names;
	int rc, n;
	const char *want[4];
} envs[] = {
	{ NULL, "2", NULL, 0, 0, { NULL } },
	{ "123", NULL, NULL, 0, 0, { NULL } },
	{ NULL, NULL, "a", 0, 0, { NULL } },
	{ "124", "2", NULL, 0, 0, { NULL } },		/* not for us */
	{ "124", "x", "a:b:c", 0, 0, { NULL } },	/* not for us: not looked at */
	{ "123", "2", NULL, 0, 2, { "unknown", "unknown" } },
	{ "123", "1", NULL, 0, 1, { "unknown" } },
	{ "123", "2", "a:b", 0, 2, { "a", "b" } },
	{ "123", "1", "", -EINVAL, 0, { NULL } },	/* as libsystemd */
	{ "123", "3", "a::c", 0, 3, { "a", "", "c" } },
	{ "123", "2", ":", 0, 2, { "", "" } },
	{ "123", "0", NULL, 0, 0, { NULL } },
	{ "123", "0", "a", 0, 0, { NULL } },
	{ "123", "2", "a", -EINVAL, 0, { NULL } },
	{ "123", "2", "a:b:c", -EINVAL, 0, { NULL } },
	{ "123", "1", "a:", -EINVAL, 0, { NULL } },
	{ "123", "2", "", -EINVAL, 0, { NULL } },
	{ "x", "2", NULL, -EINVAL, 0, { NULL } },
	{ "0", "2", NULL, -EINVAL, 0, { NULL } },
	{ "", "2", NULL, -EINVAL, 0, { NULL } },
	{ "-123", "2", NULL, -EINVAL, 0, { NULL } },
	{ "123 ", "2", NULL, -EINVAL, 0, { NULL } },
	{ "99999999999", "2", NULL, -EINVAL, 0, { NULL } },
	{ "123", "-1", NULL, -EINVAL, 0, { NULL } },
	{ "123", "abc", NULL, -EINVAL, 0, { NULL } },
	{ "123", "1x", NULL, -EINVAL, 0, { NULL } },
	{ "123", "", NULL, -EINVAL, 0, { NULL } },
	{ "123", "99999", NULL, -EINVAL, 0, { NULL } },
	{ "123", "4097", NULL, -EINVAL, 0, { NULL } },
};

static const char *shown(const char *s)
{
	return s ? s : "(unset)";
}

START_TEST(test_sdcompat_parse)
{
	for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
		char **names = NULL;
		int n = -1, rc;

		rc = sdc_parse_listen_env(envs[i].pid, envs[i].fds, envs[i].names,
					  SELF, &n, &names);
		ck_assert_msg(rc == envs[i].rc && n == envs[i].n,
			      "row %zu (%s/%s/%s): rc %d n %d", i, shown(envs[i].pid),
			      shown(envs[i].fds), shown(envs[i].names), rc, n);
		if (n == 0) {
			ck_assert_msg(names == NULL, "row %zu: names set", i);
			continue;
		}
		ck_assert_ptr_nonnull(names);
		for (int k = 0; k < n; k++) {
			ck_assert_str_eq(names[k], envs[i].want[k]);
			free(names[k]);
		}
		free(names);
	}
}
END_TEST

START_TEST(test_sdcompat_parse_no_names)
{
	int n = -1;

	/* A caller that does not want names gets the count alone. */
	ck_assert_int_eq(sdc_parse_listen_env("7", "3", "a:b:c", 7, &n, NULL), 0);
	ck_assert_int_eq(n, 3);
}
END_TEST

/* Environment cases run in a child: fd 3 may be check's own, and the
 * child can then take it.  Each returns 0, or the number of the step that
 * went wrong. */
static bool listen_env_gone(void)
{
	return !getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES");
}

static int case_one_fd(void)
{
	char pid[32], **names = NULL;
	int p[2];

	if (pipe(p) < 0 || dup2(p[0], 3) != 3)
		return 1;
	if (fcntl(3, F_SETFD, 0) < 0)
		return 2;
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", "web", 1);
	if (sdc_listen_fds_with_names(&names) != 1)
		return 3;
	if (!(fcntl(3, F_GETFD) & FD_CLOEXEC))
		return 4;
	if (!listen_env_gone())
		return 5;
	if (!names || strcmp(names[0], "web") != 0)
		return 6;
	free(names[0]);
	free(names);
	return 0;
}

static int case_garbage(void)
{
	char **names = NULL;

	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "x", 1);
	if (sdc_listen_fds_with_names(&names) != 0)	/* LISTEN_PID 1: not us */
		return 1;
	if (!listen_env_gone())
		return 2;
	setenv("LISTEN_PID", "x", 1);
	setenv("LISTEN_FDS", "1", 1);
	if (sdc_listen_fds_with_names(&names) >= 0 || !listen_env_gone())
		return 3;
	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "1", 1);
	return sdc_listen_fds_with_names(NULL) == 0 && listen_env_gone() ? 0 : 4;
}

static int case_garbage_fds(void)
{
	char pid[32], **names = NULL;

	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "x", 1);
	setenv("LISTEN_FDNAMES", "a", 1);
	if (sdc_listen_fds_with_names(&names) >= 0)
		return 1;
	return listen_env_gone() && names == NULL ? 0 : 2;
}

static int (*const env_cases[])(void) = { case_one_fd, case_garbage, case_garbage_fds };

START_TEST(test_sdcompat_listen_env)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(env_cases[_i]());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "case %d failed at step %d", _i, WEXITSTATUS(status));
}
END_TEST

/* A datagram socket for sdc_notify to reach: a path in a fresh temporary
 * directory, or (abstract) a name in the abstract namespace.  *env gets
 * what NOTIFY_SOCKET must say. */
static int notify_sink(bool abstract, char *env, size_t envlen, char *dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (abstract) {
		snprintf(env, envlen, "@acceptd-unit-%ld", (long)getpid());
	} else {
		ck_assert_ptr_nonnull(mkdtemp(dir));
		snprintf(env, envlen, "%s/notify", dir);
	}
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", env);
	if (abstract)
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(env) +
			  (abstract ? 0 : 1));
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

static const char *const states[] = { "READY=1", "STATUS=active 3, total 10\nWATCHDOG=1" };

START_TEST(test_sdcompat_notify)
{
	char dir[] = "/tmp/acceptd-unit-XXXXXX", env[108], got[256];
	bool abstract = _i == 1;
	int fd = notify_sink(abstract, env, sizeof env, dir);

	setenv("NOTIFY_SOCKET", env, 1);
	for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
		ssize_t n;

		ck_assert_int_eq(sdc_notify(states[k]), 1);
		n = recv(fd, got, sizeof got, MSG_DONTWAIT);
		ck_assert_int_eq(n, (ssize_t)strlen(states[k]));
		ck_assert_mem_eq(got, states[k], (size_t)n);
	}
	close(fd);
	if (!abstract) {
		unlink(env);
		rmdir(dir);
		/* Nobody there any more: an error, not a crash or a hang. */
		ck_assert_int_lt(sdc_notify("READY=1"), 0);
	}
}
END_TEST

static const struct {
	const char *env;	/* NULL: unset */
	int rc;
} notify_bad[] = {
	{ NULL, 0 }, { "", 0 }, { "x", -EINVAL }, { "run/notify", -EINVAL },
	{ "/" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", -EINVAL },
};

START_TEST(test_sdcompat_notify_nowhere)
{
	for (size_t i = 0; i < sizeof notify_bad / sizeof notify_bad[0]; i++) {
		if (notify_bad[i].env)
			setenv("NOTIFY_SOCKET", notify_bad[i].env, 1);
		else
			unsetenv("NOTIFY_SOCKET");
		ck_assert_msg(sdc_notify("READY=1") == notify_bad[i].rc, "NOTIFY_SOCKET=%s",
			      shown(notify_bad[i].env));
	}
}
END_TEST

/* An fd rides along with the message, as FDSTORE=1 needs: the receiver
 * gets a working copy of the same socket. */
START_TEST(test_sdcompat_notify_with_fd)
{
	char dir[] = "/tmp/acceptd-unit-XXXXXX", env[108], got[64];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	int fd = notify_sink(false, env, sizeof env, dir), pair[2], passed;
	struct iovec iov = { .iov_base = got, .iov_len = sizeof got };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof ctl.buf };
	struct cmsghdr *c;
	ssize_t n;
	static const char msg[] = "FDSTORE=1\nFDNAME=acceptd-own-x";

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	setenv("NOTIFY_SOCKET", env, 1);
	ck_assert_int_eq(sdc_notify_with_fds(msg, &pair[0], 1), 1);
	n = recvmsg(fd, &mh, MSG_DONTWAIT);
	ck_assert_int_eq(n, (ssize_t)strlen(msg));
	ck_assert_mem_eq(got, msg, (size_t)n);
	c = CMSG_FIRSTHDR(&mh);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->cmsg_type, SCM_RIGHTS);
	memcpy(&passed, CMSG_DATA(c), sizeof passed);
	ck_assert_int_eq(write(passed, "x", 1), 1);
	ck_assert_int_eq(read(pair[1], got, 1), 1);
	close(passed);
	close(pair[0]);
	close(pair[1]);
	close(fd);
	unlink(env);
	rmdir(dir);
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

/* WATCHDOG_USEC is ours unless WATCHDOG_PID names another process. */
START_TEST(test_sdcompat_watchdog)
{
	ck_assert_int_eq(sdc_parse_watchdog(NULL, NULL, 42), 0);
	ck_assert_int_eq(sdc_parse_watchdog("", NULL, 42), 0);
	ck_assert_int_eq(sdc_parse_watchdog("400000", NULL, 42), 400000);
	ck_assert_int_eq(sdc_parse_watchdog("400000", "", 42), 400000);
	ck_assert_int_eq(sdc_parse_watchdog("400000", "42", 42), 400000);
	ck_assert_int_eq(sdc_parse_watchdog("400000", "43", 42), 0);
	ck_assert_int_eq(sdc_parse_watchdog("0", NULL, 42), -EINVAL);
	ck_assert_int_eq(sdc_parse_watchdog("-5", NULL, 42), -EINVAL);
	ck_assert_int_eq(sdc_parse_watchdog("12x", NULL, 42), -EINVAL);
	ck_assert_int_eq(sdc_parse_watchdog("400000", "x", 42), -EINVAL);
	ck_assert_int_eq(sdc_parse_watchdog("400000", "0", 42), -EINVAL);
	ck_assert_int_eq(sdc_parse_watchdog("99999999999999999999999", NULL, 42), -EINVAL);
}
END_TEST

Suite *sdcompat_suite(void)
{
	Suite *s = suite_create("sdcompat");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_sdcompat_parse);
	tcase_add_test(tc, test_sdcompat_parse_no_names);
	tcase_add_loop_test(tc, test_sdcompat_listen_env, 0,
			    sizeof env_cases / sizeof env_cases[0]);
	tcase_add_loop_test(tc, test_sdcompat_notify, 0, 2);
	tcase_add_test(tc, test_sdcompat_notify_nowhere);
	tcase_add_test(tc, test_sdcompat_notify_with_fd);
	tcase_add_test(tc, test_sdcompat_watchdog);
	suite_add_tcase(s, tc);
	return s;
}
