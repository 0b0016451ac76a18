/*
 * acceptd.h - libacceptd: write a persistent acceptd worker in C.
 *
 * Run your program as `acceptd --fd-passing -w N -- PROGRAM`: acceptd starts
 * N copies and hands each accepted connection to one of them over fd 3.
 * This library speaks that protocol (acceptd-workers(7)), version 1:
 *
 *	acceptd_worker *w = acceptd_worker_open(0);
 *	struct acceptd_conn c;
 *	while (acceptd_accept(w, &c, 0) == 1) {
 *		serve(c.fd);
 *		close(c.fd);
 *		acceptd_done(w, &c);
 *	}
 *	acceptd_worker_close(w);
 *
 * Link with `pkg-config --cflags --libs acceptd`.
 */
#ifndef LIBACCEPTD_H
#define LIBACCEPTD_H

#ifdef __cplusplus
extern "C" {
#endif

#define ACCEPTD_PROTOCOL_VERSION 1

/* One connection, as acceptd accepted it. */
struct acceptd_conn {
	int fd;			/* the connection, blocking; yours to close */
	unsigned long long id;	/* give it back in acceptd_done() */
	int unix_peer;		/* 1: a unix socket; uid/gid/pid are set */
	char local_ip[64];	/* TCP: the address the client connected to */
	unsigned local_port;
	char remote_ip[64];	/* TCP: the client (IPv4 clients as a.b.c.d) */
	unsigned remote_port;
	unsigned uid, gid;	/* unix: the client's credentials */
	int pid;
	unsigned connnum;	/* connections now open from this client */
	char listener[256];	/* the listener's name (ACCEPTD_LISTENER) */
};

typedef struct acceptd_worker acceptd_worker;

/* Greets acceptd on fd 3 ($ACCEPTD_WORKER_FD) and says how many connections
 * this worker takes at once (0: no limit).  NULL with errno set when fd 3 is
 * not acceptd's channel (ENOTSOCK, EBADF) or acceptd speaks no version this
 * library knows (EPROTO). */
acceptd_worker *acceptd_worker_open(unsigned max_conns);

/* The channel's fd, to watch for readability in your own event loop. */
int acceptd_worker_fd(const acceptd_worker *w);

/* Waits for the next connection (nonblock: does not wait).  Returns 1 with
 * *c filled in; 0 when acceptd asks the worker to stop or has gone away -
 * finish the open connections, then exit; -1 with errno set (EAGAIN when
 * nonblock and nothing is waiting). */
int acceptd_accept(acceptd_worker *w, struct acceptd_conn *c, int nonblock);

/* Tells acceptd a connection is over.  Close c->fd first. */
int acceptd_done(acceptd_worker *w, const struct acceptd_conn *c);

/* The variables acceptd adds to a connection beyond the fields above: a
 * --rules rule's (acceptd.rules(5)) and the PROXY v2 header's (PROXY_*,
 * acceptd(8)).  acceptd_conn_env gives the i-th, from 0, as "NAME=value",
 * or "NAME" alone for a variable the rule unsets, NULL past the last; a
 * later one for the same NAME wins.  acceptd_conn_getenv gives NAME's
 * value, NULL when it is not set.  Valid until acceptd_done(c). */
const char *acceptd_conn_env(const acceptd_worker *w, const struct acceptd_conn *c,
			     unsigned i);
const char *acceptd_conn_getenv(const acceptd_worker *w, const struct acceptd_conn *c,
				const char *name);

void acceptd_worker_close(acceptd_worker *w);

#ifdef __cplusplus
}
#endif
#endif
