/* fdpass.h - messages with an fd over SOCK_SEQPACKET (daemon and libacceptd). */
#ifndef ACCEPTD_FDPASS_H
#define ACCEPTD_FDPASS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FDPASS_LOST (-2)	/* an fd was sent but did not arrive */

/* Non-blocking (MSG_DONTWAIT); _flags: the caller chooses. */
ssize_t fdpass_send(int sock, const void *buf, size_t len, int fd);
ssize_t fdpass_send_flags(int sock, const void *buf, size_t len, int fd, int flags);
ssize_t fdpass_recv(int sock, char *buf, size_t len, int *fd, int flags);

#endif
