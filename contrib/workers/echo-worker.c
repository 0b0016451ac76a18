/*
 * echo-worker.c - a persistent acceptd worker in C, with libacceptd.
 *
 *   acceptd --fd-passing -w 4 -l 7000 -- ./echo-worker
 *
 * For each connection it first writes one line saying who it is and who
 * the client is, then echoes everything back until the client closes.
 * It serves one connection at a time (it says max=1 in its HELLO), so
 * acceptd never queues a second one behind a slow client here.
 *
 * Build: cc -o echo-worker echo-worker.c $(pkg-config --cflags --libs acceptd)
 */
#include <acceptd.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void serve(const struct acceptd_conn *c)
{
	char buf[16384];
	ssize_t n;
	int len;

	len = snprintf(buf, sizeof buf, "worker %d: %s %s %u via %s, connnum %u\n",
		       (int)getpid(), c->unix_peer ? "unix" : "tcp", c->remote_ip,
		       c->remote_port, c->listener, c->connnum);
	if (write(c->fd, buf, (size_t)len) != len)
		return;
	while ((n = read(c->fd, buf, sizeof buf)) > 0)
		if (write(c->fd, buf, (size_t)n) != n)
			return;
}

int main(void)
{
	acceptd_worker *w = acceptd_worker_open(1);
	struct acceptd_conn c;
	int r;

	if (!w) {
		fprintf(stderr, "echo-worker: not started by acceptd --fd-passing: %s\n",
			strerror(errno));
		return 1;
	}
	/* acceptd starts workers with every signal at its default: without
	 * this, a client that closes before reading everything kills the
	 * worker (and the connections it holds) at its next write. */
	signal(SIGPIPE, SIG_IGN);
	while ((r = acceptd_accept(w, &c, 0)) == 1) {
		serve(&c);
		close(c.fd);
		acceptd_done(w, &c);
	}
	acceptd_worker_close(w);
	return r < 0 ? 1 : 0;
}
