/*
 * libacceptd.c - the worker's side of acceptd-workers(7), for C programs.
 *
 * A thin layer over the same message code the daemon uses (wire.c,
 * fdpass.c): the handshake, turning CONN messages into struct
 * acceptd_conn, and DONE.  It keeps no state beyond the channel fd and
 * the variables of connections not yet DONE, so a worker may mix it with
 * its own event loop.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acceptd.h"
#include "fdpass.h"
#include "wire.h"

/* The variables of a connection the worker holds, until its DONE. */
struct conn_env {
	unsigned long long id;
	size_t len;
	struct conn_env *next;
	char data[];		/* wire_conn's env: "NAME=value" / "NAME", NUL after each */
};

struct acceptd_worker {
	int ch;
	struct conn_env *envs;	/* only connections that came with variables */
};

static int channel_fd(void)
{
	const char *s = getenv("ACCEPTD_WORKER_FD");
	int fd = 3, type = 0;
	socklen_t len = sizeof type;

	if (s && *s) {
		char *end;
		long v = strtol(s, &end, 10);

		if (*end || v < 0 || v > 65535)
			return errno = EBADF, -1;
		fd = (int)v;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -1;
	if (type != SOCK_SEQPACKET)
		return errno = ENOTSOCK, -1;
	return fd;
}

/* acceptd's HELLO lists the versions it speaks; ours must be among them. */
static int offers_ours(const char *msg, size_t len)
{
	const char *p = msg + 5, *end = msg + len;

	if (len < 5 || memcmp(msg, "HELLO", 5) != 0)
		return 0;
	while (p < end) {
		char *e;
		long v;

		while (p < end && *p == ' ')
			p++;
		v = strtol(p, &e, 10);
		if (e == p)
			break;
		if (v == ACCEPTD_PROTOCOL_VERSION)
			return 1;
		p = e;
	}
	return 0;
}

acceptd_worker *acceptd_worker_open(unsigned max_conns)
{
	char msg[WIRE_MSG_MAX];
	acceptd_worker *w;
	int ch = channel_fd(), fd, n;
	ssize_t r;

	if (ch < 0)
		return NULL;
	r = fdpass_recv(ch, msg, sizeof msg, &fd, 0);
	if (fd >= 0)
		close(fd);
	if (r <= 0)
		return errno = r == 0 ? EPIPE : errno, NULL;
	if (!offers_ours(msg, (size_t)r)) {
		/* Say which version we speak, so acceptd's log names both. */
		n = wire_format_hello(msg, sizeof msg, ACCEPTD_PROTOCOL_VERSION, max_conns);
		fdpass_send_flags(ch, msg, (size_t)n, -1, 0);
		return errno = EPROTO, NULL;
	}
	n = wire_format_hello(msg, sizeof msg, ACCEPTD_PROTOCOL_VERSION, max_conns);
	if (fdpass_send_flags(ch, msg, (size_t)n, -1, 0) < 0)
		return NULL;
	w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->ch = ch;
	return w;
}

int acceptd_worker_fd(const acceptd_worker *w)
{
	return w->ch;
}

static void copy_conn(struct acceptd_conn *c, const struct wire_conn *m, int fd)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	c->id = m->id;
	c->unix_peer = m->unix_peer;
	memcpy(c->local_ip, m->local_ip, sizeof c->local_ip);
	c->local_port = m->local_port;
	memcpy(c->remote_ip, m->remote_ip, sizeof c->remote_ip);
	c->remote_port = m->remote_port;
	c->uid = m->uid;
	c->gid = m->gid;
	c->pid = m->pid;
	c->connnum = m->connnum;
	memcpy(c->listener, m->listener, sizeof c->listener);
}

int acceptd_accept(acceptd_worker *w, struct acceptd_conn *c, int nonblock)
{
	char msg[WIRE_MSG_MAX];
	struct wire_conn m;

	for (;;) {
		int fd;
		ssize_t r = fdpass_recv(w->ch, msg, sizeof msg, &fd, nonblock ? MSG_DONTWAIT : 0);

		/* Reported once when acceptd closed with our DONEs unread;
		 * connections may still be queued behind it. */
		if (r < 0 && errno == ECONNRESET)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 || wire_verb(msg, (size_t)r) == WIRE_STOP)
			return 0;
		if (wire_verb(msg, (size_t)r) != WIRE_CONN || wire_parse_conn(msg, (size_t)r, &m) < 0) {
			if (fd >= 0)
				close(fd);
			continue;	/* unknown messages are for later versions */
		}
		if (fd < 0) {
			/* The fd did not reach us (out of fds): report the
			 * connection over and wait for the next. */
			struct acceptd_conn lost = { .id = m.id, .fd = -1 };

			acceptd_done(w, &lost);
			continue;
		}
		if (m.env_len) {
			struct conn_env *e = malloc(sizeof *e + m.env_len);

			if (!e) {
				struct acceptd_conn lost = { .id = m.id, .fd = -1 };

				close(fd);
				acceptd_done(w, &lost);
				return errno = ENOMEM, -1;
			}
			e->id = m.id;
			e->len = m.env_len;
			memcpy(e->data, m.env, m.env_len);
			e->next = w->envs;
			w->envs = e;
		}
		copy_conn(c, &m, fd);
		return 1;
	}
}

static const struct conn_env *env_of(const acceptd_worker *w, const struct acceptd_conn *c)
{
	for (const struct conn_env *e = w->envs; e; e = e->next)
		if (e->id == c->id)
			return e;
	return NULL;
}

const char *acceptd_conn_env(const acceptd_worker *w, const struct acceptd_conn *c,
			     unsigned i)
{
	const struct conn_env *e = env_of(w, c);

	for (size_t at = 0; e && at < e->len; at += strlen(e->data + at) + 1)
		if (i-- == 0)
			return e->data + at;
	return NULL;
}

const char *acceptd_conn_getenv(const acceptd_worker *w, const struct acceptd_conn *c,
				const char *name)
{
	const char *v, *found = NULL;
	size_t n = strlen(name);

	/* The last word for a name wins (a rule's over a TLV's). */
	for (unsigned i = 0; (v = acceptd_conn_env(w, c, i)) != NULL; i++)
		if (strncmp(v, name, n) == 0 && (v[n] == '=' || v[n] == '\0'))
			found = v[n] == '=' ? v + n + 1 : NULL;
	return found;
}

int acceptd_done(acceptd_worker *w, const struct acceptd_conn *c)
{
	char msg[64];
	uint64_t id = c->id;
	int n = wire_format_done(msg, sizeof msg, &id, 1);

	for (struct conn_env **p = &w->envs; *p; p = &(*p)->next)
		if ((*p)->id == c->id) {
			struct conn_env *e = *p;

			*p = e->next;
			free(e);
			break;
		}

	return fdpass_send_flags(w->ch, msg, (size_t)n, -1, 0) < 0 ? -1 : 0;
}

void acceptd_worker_close(acceptd_worker *w)
{
	if (!w)
		return;
	close(w->ch);
	while (w->envs) {
		struct conn_env *e = w->envs;

		w->envs = e->next;
		free(e);
	}
	free(w);
}
