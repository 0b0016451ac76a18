/* test_fdpass.c - unit tests of src/fdpass.c over a real AF_UNIX
 * SOCK_SEQPACKET socketpair: a pipe's and a TCP socket's fd travel with a
 * message and arrive as another number for the same open file (st_dev and
 * st_ino, and it still works), close-on-exec, with the text NUL-terminated;
 * a message without an fd gives -1; end of file gives 0; fdpass_send never
 * blocks on a full queue (-1/EAGAIN), nor fdpass_send_flags on a
 * non-blocking socket, and the queue keeps message boundaries and fds; a message too long for the buffer is -1/EMSGSIZE and its fd
 * is closed, not leaked; a receiver out of file descriptors still gets the
 * text with FDPASS_LOST and no fd leaks; a second fd in one message is
 * closed.  The fd-limit case changes RLIMIT_NOFILE, so it runs in a child
 * of its own and reports by exit status. */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core.h"
#include "fdpass.h"
#include "suites.h"

/* Open fds of this process, not counting the one used to list them. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A TCP listener on 127.0.0.1 and an ephemeral port; *port gets it. */
static int tcp_listener(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	return fd;
}

/* _i = 0: the write end of a pipe; 1: a listening TCP socket. */
START_TEST(test_fdpass_fd_travels)
{
	static const char text[] = "CONN id=1 proto=TCP listener=x";
	char buf[256];
	int sv[2], p[2] = { -1, -1 }, obj, got = 1234, base;
	uint16_t port = 0;
	ssize_t n;

	pair(sv);
	if (_i == 0) {
		ck_assert_int_eq(pipe(p), 0);
		obj = p[1];
	} else {
		obj = tcp_listener(&port);
	}
	/* The sender's copy is not close-on-exec: the flag must come from
	 * the receiving side. */
	ck_assert_int_eq(fcntl(obj, F_GETFD) & FD_CLOEXEC, 0);
	base = count_fds();
	ck_assert_int_eq(fdpass_send(sv[0], text, sizeof text - 1, obj), (ssize_t)sizeof text - 1);
	memset(buf, 'X', sizeof buf);
	n = fdpass_recv(sv[1], buf, sizeof buf, &got, 0);
	ck_assert_int_eq(n, (ssize_t)sizeof text - 1);
	ck_assert_msg(buf[n] == '\0', "not NUL-terminated");
	ck_assert_str_eq(buf, text);
	ck_assert_int_ge(got, 0);
	ck_assert_int_ne(got, obj);
	ck_assert_int_eq(count_fds(), base + 1);
	ck_assert_msg(same_file(got, obj), "received fd %d is not the sent file", got);
	ck_assert_msg(fcntl(got, F_GETFD) & FD_CLOEXEC, "received fd not close-on-exec");
	/* The sender closes its copy (as the master does): what arrived still
	 * works as the same object. */
	close(obj);
	if (_i == 0) {
		char c = 0;

		ck_assert_int_eq(write(got, "z", 1), 1);
		ck_assert_int_eq(read(p[0], &c, 1), 1);
		ck_assert_int_eq(c, 'z');
		close(p[0]);
	} else {
		struct sockaddr_in sin;
		socklen_t len = sizeof sin;
		int cl, acc;

		ck_assert_int_eq(getsockname(got, (struct sockaddr *)&sin, &len), 0);
		ck_assert_uint_eq(ntohs(sin.sin_port), port);
		cl = tcp_connect(port);
		acc = accept(got, NULL, NULL);
		ck_assert_int_ge(acc, 0);
		close(acc);
		close(cl);
	}
	close(got);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_fdpass_no_fd)
{
	char buf[64];
	int sv[2], got = 1234, base;

	pair(sv);
	base = count_fds();
	ck_assert_int_eq(fdpass_send(sv[0], "STOP", 4, -1), 4);
	memset(buf, 'X', sizeof buf);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, 0), 4);
	ck_assert_str_eq(buf, "STOP");
	ck_assert_int_eq(got, -1);
	ck_assert_int_eq(count_fds(), base);
	/* nothing waiting: -1/EAGAIN with MSG_DONTWAIT, and *fd is -1 */
	got = 1234;
	errno = 0;
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(got, -1);
	/* a bad fd is refused by the sender, nothing is sent */
	errno = 0;
	ck_assert_int_eq(fdpass_send(sv[0], "CONN id=1", 9, 9999), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(test_fdpass_eof)
{
	char buf[64];
	int sv[2], got = 1234;

	pair(sv);
	ck_assert_int_eq(fdpass_send(sv[0], "DONE 1", 6, -1), 6);
	close(sv[0]);
	/* what was sent before the close still arrives, then end of file */
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, 0), 6);
	ck_assert_str_eq(buf, "DONE 1");
	got = 1234;
	memset(buf, 'X', sizeof buf);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, 0), 0);
	ck_assert_int_eq(got, -1);
	ck_assert_int_eq(buf[0], '\0');
	close(sv[1]);
}
END_TEST

/* The sending end is a blocking socket, as the master's channel ends are
 * not: fdpass_send must not block on it all the same. */
START_TEST(test_fdpass_full_queue)
{
	char buf[64];
	int sv[2], got, p[2], base;
	long sent = 0, n;

	pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	base = count_fds();
	for (;;) {
		char msg[32];
		int len = snprintf(msg, sizeof msg, "DONE %ld", sent);

		if (fdpass_send(sv[0], msg, (size_t)len, -1) < 0)
			break;
		sent++;
		ck_assert_int_lt(sent, 1000000);
	}
	ck_assert_msg(errno == EAGAIN || errno == EWOULDBLOCK, "errno %d", errno);
	ck_assert_int_gt(sent, 10);
	/* with an fd too: refused, and nothing leaks on either side */
	errno = 0;
	ck_assert_int_eq(fdpass_send(sv[0], "CONN id=1", 9, p[0]), -1);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	ck_assert_int_eq(count_fds(), base);
	/* every message is there, whole and in order, and nothing else */
	for (n = 0; n < sent; n++) {
		char want[32];
		ssize_t r = fdpass_recv(sv[1], buf, sizeof buf, &got, MSG_DONTWAIT);

		snprintf(want, sizeof want, "DONE %ld", n);
		ck_assert_int_eq(r, (ssize_t)strlen(want));
		ck_assert_str_eq(buf, want);
		ck_assert_int_eq(got, -1);
	}
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* drained: it sends again */
	ck_assert_int_eq(fdpass_send(sv[0], "STOP", 4, -1), 4);
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, 0), 4);
	/* a socket in non-blocking mode, the caller's flags: the same */
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
	for (n = 0; fdpass_send_flags(sv[0], "x", 1, p[0], 0) == 1; n++)
		ck_assert_int_lt(n, 1000000);
	ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
	ck_assert_int_gt(n, 10);
	for (long i = 0; i < n; i++) {
		ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, MSG_DONTWAIT), 1);
		ck_assert(same_file(got, p[0]));
		close(got);
	}
	ck_assert_int_eq(count_fds(), base);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* The buffer must hold the message and a NUL; if it does not, the message
 * (consumed: SEQPACKET does not keep the rest) is an error and its fd is
 * closed.  The next message is unaffected. */
static const struct {
	size_t msglen, buflen;
	bool fits;
} sizes[] = {
	{ 10, 11, true }, { 11, 11, false }, { 100, 10, false }, { 1, 1, false },
	{ 4096, 4097, true }, { 4096, 4096, false }, { 4096, 64, false },
};

START_TEST(test_fdpass_too_small)
{
	size_t msglen = sizes[_i].msglen, buflen = sizes[_i].buflen;
	char *msg = malloc(msglen), *buf = malloc(buflen), next[16];
	int sv[2], p[2], got = 1234, base;
	ssize_t r;

	ck_assert(msg && buf);
	memset(msg, 'm', msglen);
	pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	base = count_fds();
	ck_assert_int_eq(fdpass_send(sv[0], msg, msglen, p[1]), (ssize_t)msglen);
	ck_assert_int_eq(fdpass_send(sv[0], "STOP", 4, -1), 4);
	errno = 0;
	r = fdpass_recv(sv[1], buf, buflen, &got, 0);
	if (sizes[_i].fits) {
		ck_assert_int_eq(r, (ssize_t)msglen);
		ck_assert_int_eq(buf[msglen], '\0');
		ck_assert(same_file(got, p[1]));
		ck_assert_int_eq(count_fds(), base + 1);
		close(got);
	} else {
		ck_assert_int_eq(r, -1);
		ck_assert_int_eq(errno, EMSGSIZE);
		ck_assert_int_eq(got, -1);
		ck_assert_msg(count_fds() == base, "fd leaked: %d open, %d before",
			      count_fds(), base);
	}
	ck_assert_int_eq(fdpass_recv(sv[1], next, sizeof next, &got, 0), 4);
	ck_assert_str_eq(next, "STOP");
	ck_assert_int_eq(got, -1);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	free(msg);
	free(buf);
}
END_TEST

/* Two fds in one message (never sent by a correct peer): the first is
 * kept, the second closed. */
START_TEST(test_fdpass_second_fd_closed)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} u;
	char text[] = "CONN id=2", buf[64];
	struct iovec iov = { .iov_base = text, .iov_len = sizeof text - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = sizeof u.buf };
	struct cmsghdr *cm;
	int sv[2], p[2], fds[2], got, base;

	pair(sv);
	ck_assert_int_eq(pipe(p), 0);
	fds[0] = p[0];
	fds[1] = p[1];
	memset(&u, 0, sizeof u);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof fds);
	memcpy(CMSG_DATA(cm), fds, sizeof fds);
	ck_assert_int_eq(sendmsg(sv[0], &mh, 0), (ssize_t)sizeof text - 1);
	base = count_fds();
	ck_assert_int_eq(fdpass_recv(sv[1], buf, sizeof buf, &got, 0), (ssize_t)sizeof text - 1);
	ck_assert_str_eq(buf, text);
	ck_assert(same_file(got, p[0]));
	ck_assert_msg(count_fds() == base + 1, "%d fds open, want %d", count_fds(), base + 1);
	close(got);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* The receiver is out of file descriptors.  Runs in a child (it lowers
 * RLIMIT_NOFILE); the exit status names the step that failed. */
static int lost_child(void)
{
	static const char text[] = "CONN id=77 proto=TCP";
	struct rlimit rl, low;
	char buf[64];
	int sv[2], p[2], probe, got = 1234, before, after;
	ssize_t r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0 || pipe(p) < 0)
		return 10;
	if (fdpass_send(sv[0], text, sizeof text - 1, p[1]) != (ssize_t)sizeof text - 1)
		return 11;
	before = count_fds();
	/* the lowest free fd number: with the soft limit there, no new fd
	 * can be made */
	probe = dup(0);
	if (probe < 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 12;
	close(probe);
	low = rl;
	low.rlim_cur = (rlim_t)probe;
	if (setrlimit(RLIMIT_NOFILE, &low) < 0)
		return 13;
	if (dup(0) != -1 || errno != EMFILE)
		return 14;	/* the precondition: really out of fds */
	memset(buf, 'X', sizeof buf);
	r = fdpass_recv(sv[1], buf, sizeof buf, &got, 0);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 15;
	if (r != (ssize_t)sizeof text - 1)
		return 16;	/* the text must still arrive */
	if (strcmp(buf, text) != 0)
		return 17;
	if (got != FDPASS_LOST)
		return 18;
	after = count_fds();
	if (after != before)
		return 19;	/* nothing leaked */
	/* with fds to spare again, the next one arrives */
	if (fdpass_send(sv[0], text, sizeof text - 1, p[1]) != (ssize_t)sizeof text - 1)
		return 20;
	if (fdpass_recv(sv[1], buf, sizeof buf, &got, 0) != (ssize_t)sizeof text - 1 ||
	    got < 0 || !same_file(got, p[1]))
		return 21;
	return 0;
}

START_TEST(test_fdpass_receiver_out_of_fds)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(lost_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child died, status 0x%x", status);
	ck_assert_msg(WEXITSTATUS(status) == 0, "child failed at step %d "
		      "(see lost_child)", WEXITSTATUS(status));
}
END_TEST

Suite *fdpass_suite(void)
{
	Suite *s = suite_create("fdpass");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, test_fdpass_fd_travels, 0, 2);
	tcase_add_test(tc, test_fdpass_no_fd);
	tcase_add_test(tc, test_fdpass_eof);
	tcase_add_test(tc, test_fdpass_full_queue);
	tcase_add_loop_test(tc, test_fdpass_too_small, 0, sizeof sizes / sizeof sizes[0]);
	tcase_add_test(tc, test_fdpass_second_fd_closed);
	tcase_add_test(tc, test_fdpass_receiver_out_of_fds);
	suite_add_tcase(s, tc);
	return s;
}
