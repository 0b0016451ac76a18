/* fdpass.h - messages with an fd over SOCK_SEQPACKET (daemon and libacceptd). */
#ifndef ACCEPTD_FDPASS_H
#define ACCEPTD_FDPASS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FDPASS_LOST (-2)	/* an fd was sent but did not arrive */
#define FDPASS_BATCH 32		/* messages one fdpass_recv_many takes at most */

/* Non-blocking (MSG_DONTWAIT); _flags: the caller chooses. */
ssize_t fdpass_send(int sock, const void *buf, size_t len, int fd);
ssize_t fdpass_send_flags(int sock, const void *buf, size_t len, int fd, int flags);
ssize_t fdpass_recv(int sock, char *buf, size_t len, int *fd, int flags);

/* Several messages in one recvmmsg(2).  Fill buf and cap of each; each
 * comes back as fdpass_recv would return it: len (0 at EOF, -1 with err
 * set for a truncated message), buf NUL-terminated, fd.  Returns how many
 * arrived (>= 1), or -1 with errno.  MSG_WAITFORONE: block for the first. */
struct fdpass_msg {
	char *buf;
	size_t cap;
	ssize_t len;
	int fd;
	int err;
};
int fdpass_recv_many(int sock, struct fdpass_msg *m, unsigned n, int flags);

#endif
