/*
 * fdpass.c - one message, with at most one fd, over a SOCK_SEQPACKET socket.
 *
 * SEQPACKET keeps message boundaries, so a message and its fd arrive
 * together or not at all.  Received fds are close-on-exec from birth
 * (MSG_CMSG_CLOEXEC); if the control data was cut short the fds that did
 * arrive are closed, never leaked.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdpass.h"

ssize_t fdpass_send(int sock, const void *buf, size_t len, int fd)
{
	return fdpass_send_flags(sock, buf, len, fd, MSG_DONTWAIT);
}

ssize_t fdpass_send_flags(int sock, const void *buf, size_t len, int fd, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t r;

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	}
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL | flags);
	while (r < 0 && errno == EINTR);
	return r;
}

/* The fds that came with one received message: the first goes to *fd, any
 * others are closed (one fd per message, by protocol). */
static void take_fds(struct msghdr *mh, int *fd)
{
	*fd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;
		int fds[4];

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (n > 4)
			n = 4;
		memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (*fd < 0)
				*fd = fds[i];
			else
				close(fds[i]);
		}
	}
}

/* Returns the message length (0 at EOF) and *fd = the fd that came with it,
 * -1 if none was sent, or FDPASS_LOST if one was sent but could not be
 * received.  buf is NUL-terminated; len must leave room for that. */
ssize_t fdpass_recv(int sock, char *buf, size_t len, int *fd, int flags)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof u.buf };
	ssize_t r;

	*fd = -1;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return r;
	buf[r] = '\0';
	take_fds(&mh, fd);
	if (mh.msg_flags & MSG_TRUNC) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		errno = EMSGSIZE;
		return -1;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		/* The text arrived, its fd did not (the receiver is out of
		 * fds): the caller must account for that connection. */
		if (*fd >= 0)
			close(*fd);
		*fd = FDPASS_LOST;
	}
	return r;
}

#define RECV_MANY_MAX 64

int fdpass_recv_many(int sock, struct fdpass_msg *m, unsigned n, int flags)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u[RECV_MANY_MAX];
	struct mmsghdr mm[RECV_MANY_MAX];
	struct iovec iov[RECV_MANY_MAX];
	int r;

	if (n > RECV_MANY_MAX)
		n = RECV_MANY_MAX;
	for (unsigned i = 0; i < n; i++) {
		iov[i].iov_base = m[i].buf;
		iov[i].iov_len = m[i].cap - 1;
		memset(&mm[i], 0, sizeof mm[i]);
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = u[i].buf;
		mm[i].msg_hdr.msg_controllen = sizeof u[i].buf;
	}
	do
		r = recvmmsg(sock, mm, n, MSG_CMSG_CLOEXEC | flags, NULL);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	for (int i = 0; i < r; i++) {
		struct msghdr *mh = &mm[i].msg_hdr;

		m[i].len = (ssize_t)mm[i].msg_len;
		m[i].err = 0;
		m[i].buf[m[i].len] = '\0';
		take_fds(mh, &m[i].fd);
		if (mh->msg_flags & MSG_TRUNC) {
			if (m[i].fd >= 0)
				close(m[i].fd);
			m[i].fd = -1;
			m[i].len = -1;
			m[i].err = EMSGSIZE;
		} else if (mh->msg_flags & MSG_CTRUNC) {
			if (m[i].fd >= 0)
				close(m[i].fd);
			m[i].fd = FDPASS_LOST;
		}
	}
	return r;
}
