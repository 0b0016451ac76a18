/*
 * listen.c - where the listening sockets come from, in the order acceptd(8)
 * gives: the service manager (LISTEN_FDS), else a socket on fd 0 (inetd),
 * else sockets acceptd binds itself.
 *
 * Whatever the source, the rest of acceptd only ever sees struct listener:
 * a non-blocking, close-on-exec listening fd and the name handlers get as
 * ACCEPTD_LISTENER.  An inherited *connected* socket (systemd Accept=yes,
 * inetd nowait) becomes an entry with is_conn set: one connection to serve,
 * after which acceptd exits.  Only sockets we created are closed and
 * unlinked on stop; inherited ones belong to whoever passed them.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"

enum sock_class { SC_LISTENING, SC_CONNECTED, SC_DGRAM, SC_NOT_SOCKET, SC_NOT_STREAM };

static enum sock_class classify(int fd, int *family)
{
	int type = 0, acc = 0, dom = 0;
	socklen_t l = sizeof type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0)
		return SC_NOT_SOCKET;
	l = sizeof dom;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0)
		dom = AF_UNSPEC;
	*family = dom;
	if (type == SOCK_DGRAM)
		return SC_DGRAM;	/* connected or not: served as a listener */
	if (type != SOCK_STREAM)
		return SC_NOT_STREAM;
	l = sizeof acc;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) == 0 && acc)
		return SC_LISTENING;
	return SC_CONNECTED;
}

static struct listener *add_listener(struct server *s)
{
	struct listener *n = realloc(s->lst, sizeof *n * (size_t)(s->n_lst + 1));

	if (!n)
		return NULL;
	s->lst = n;
	n = &s->lst[s->n_lst++];
	memset(n, 0, sizeof *n);
	n->kind = EV_LISTENER;
	n->fd = -1;
	return n;
}

/* Fills l->local and l->name from the socket itself, so port 0 is shown as
 * the port the kernel picked; a datagram socket's name says so, as -l
 * spells it (udp:127.0.0.1:69, unix-dgram:/run/x). */
static void describe(struct listener *l, const char *fdname)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int type = SOCK_STREAM;

	len = sizeof type;
	if (getsockopt(l->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_DGRAM)
		l->socktype = SOCK_DGRAM;
	else
		l->socktype = SOCK_STREAM;
	len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0)
		addr_peer_from(&l->local, (struct sockaddr *)&ss, len);
	l->fixed_local = l->local.family == AF_UNIX ||
			 ((l->local.family == AF_INET || l->local.family == AF_INET6) &&
			  !addr_is_wildcard((struct sockaddr *)&ss));
	if (fdname && *fdname && strcmp(fdname, "unknown") != 0) {
		log_escape(l->name, sizeof l->name, fdname, strlen(fdname));
	} else if (l->socktype == SOCK_DGRAM) {
		char addr[ADDR_STRLEN - 16];	/* the prefix must fit too */

		addr_peer_format(&l->local, addr, sizeof addr);
		if (l->local.family == AF_UNIX)
			snprintf(l->name, sizeof l->name, "unix-dgram:%s", addr + 5);
		else
			snprintf(l->name, sizeof l->name, "udp:%s", addr);
	} else {
		addr_peer_format(&l->local, l->name, sizeof l->name);
	}
	if (l->socktype == SOCK_DGRAM)
		dgram_prepare(l);
}

static const char *class_why(enum sock_class c)
{
	return c == SC_NOT_SOCKET ? "not a socket" : "neither a stream nor a datagram socket";
}

/* Datagrams are read by the PROGRAM they start (wait mode, dgram.c) or
 * answered by a built-in's worker (wdgram.c); --fd-passing workers take
 * connections only.  options.c says the same of -l udp:.  fd: the number
 * as it came (inetd's is 0). */
static int refuse_dgram(const struct server *s, int fd, const char *fdname, char *err,
			size_t errlen)
{
	if (fdname && (!*fdname || strcmp(fdname, "unknown") == 0))
		fdname = NULL;	/* systemd's name for no name */
	if (s->opt->per_peer) {
		/* The socket goes to the first peer's handler, and another
		 * is bound in its place: only acceptd's own can be. */
		snprintf(err, errlen, "fd %d%s%s%s: --datagram per-peer binds a new socket for "
			 "each peer, which it can do only for sockets it binds itself (-l udp:)",
			 fd, fdname ? " (" : "", fdname ? fdname : "", fdname ? ")" : "");
		return -1;
	}
	if (!s->opt->fd_passing)
		return 0;
	snprintf(err, errlen, "fd %d%s%s%s: a datagram socket: --fd-passing workers take "
		 "connections, not datagrams", fd, fdname ? " (" : "", fdname ? fdname : "",
		 fdname ? ")" : "");
	return -1;
}

static int take_inherited(struct server *s, int fd, enum sock_class c,
			  const char *fdname, char *err, size_t errlen)
{
	struct listener *l;

	if (c == SC_DGRAM && refuse_dgram(s, fd, fdname, err, errlen) < 0)
		return -1;
	l = add_listener(s);
	if (!l) {
		snprintf(err, errlen, "fd %d: out of memory", fd);
		return -1;
	}
	l->fd = fd;
	l->is_conn = c == SC_CONNECTED;
	fcntl(fd, F_SETFD, FD_CLOEXEC);	/* handlers and a reload's exec: not theirs */
	if (fdname && *fdname && strcmp(fdname, "unknown") != 0 && !strchr(fdname, ':') &&
	    strlen(fdname) < sizeof l->fdname)
		snprintf(l->fdname, sizeof l->fdname, "%s", fdname);
	/* A datagram socket goes to its handlers as it is (wait mode): it
	 * stays blocking, as inetd's handlers expect; dgram.c's own reads
	 * say MSG_DONTWAIT. */
	if (!l->is_conn && fcntl(fd, F_SETFL, c == SC_DGRAM ? fcntl(fd, F_GETFL) & ~O_NONBLOCK :
				 fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "fd %d: cannot set O_NONBLOCK: %s", fd, strerror(errno));
		return -1;
	}
	describe(l, fdname);
	if (l->is_conn)
		log_info("serving one connection on fd %d (%s)", fd, l->name);
	else
		log_notice("listening on %s (fd %d)", l->name, fd);
	return 0;
}

/* Listeners acquired from our own fd store (FDNAME=acceptd-own-...):
 * not the manager's sockets but ours from a previous run, claimed by
 * for_each_listen for the --listen addresses they still match. */
#define STORE_PREFIX "acceptd-own-"
static struct stored {
	int fd;
	char name[256];
} *stored;			/* as many as came; none after listen_acquire */
static int n_stored;

static bool is_stored_name(const char *name)
{
	return name && strncmp(name, STORE_PREFIX, strlen(STORE_PREFIX)) == 0;
}

static int from_systemd(struct server *s, char *err, size_t errlen)
{
	char **names = NULL;
	int n = sdg_listen_fds(&names), rc = 0, theirs = 0;

	if (n < 0) {
		log_warn("ignoring LISTEN_FDS/LISTEN_PID: not valid (%s)", strerror(-n));
		return 0;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		int fd = 3 + i, fam;
		enum sock_class c = classify(fd, &fam);

		if (names && is_stored_name(names[i]) && (c == SC_LISTENING || c == SC_DGRAM)) {
			struct stored *more = realloc(stored, sizeof *stored * (size_t)(n_stored + 1));

			if (!more) {
				snprintf(err, errlen, "out of memory");
				rc = -1;
				break;
			}
			stored = more;
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			stored[n_stored].fd = fd;
			snprintf(stored[n_stored].name, sizeof stored[0].name, "%s", names[i]);
			n_stored++;
			continue;
		}
		theirs++;
		if (c == SC_NOT_SOCKET || c == SC_NOT_STREAM) {
			snprintf(err, errlen, "fd %d (%s) from the service manager: %s",
				 fd, names ? names[i] : "unknown", class_why(c));
			rc = -1;
		} else {
			rc = take_inherited(s, fd, c, names ? names[i] : NULL, err, errlen);
		}
	}
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	if (rc == 0 && theirs > 0 && s->opt->n_listen)
		log_warn("--listen ignored: sockets came from the service manager");
	return rc < 0 ? -1 : theirs;
}

void listen_store_name(const struct listener *l, char *out, size_t len)
{
	size_t o = (size_t)snprintf(out, len, "%s", STORE_PREFIX);

	/* FDNAME: printable ASCII without ':', at most 255 bytes. */
	for (const char *p = l->name; *p && o + 1 < len && o < 255; p++)
		out[o++] = *p == ':' || *p < 0x21 || *p > 0x7e ? '_' : *p;
	out[o] = '\0';
}

static int socktype_of(int fd)
{
	int type = -1;
	socklen_t len = sizeof type;

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 ? type : -1;
}

/* A stored listener bound where spec asks (port 0 asks for any port), or
 * -1.  Claimed entries leave the list. */
static int claim_stored(const struct addr_spec *a)
{
	for (int i = 0; i < n_stored; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		struct peer have, want;
		int fd = stored[i].fd;

		memset(&ss, 0, sizeof ss);
		if (socktype_of(fd) != a->socktype ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			continue;
		if (a->socktype == SOCK_DGRAM) {
			struct sockaddr_storage peer;
			socklen_t plen = sizeof peer;

			/* Connected to one peer (per-peer mode gave it away): no
			 * listener any more. */
			if (getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
				continue;
		}
		addr_peer_from(&have, (struct sockaddr *)&ss, len);
		addr_peer_from(&want, (const struct sockaddr *)&a->ss, a->sslen);
		if (have.family != want.family || ss.ss_family != a->ss.ss_family)
			continue;
		if (want.family == AF_UNIX) {
			struct stat st;

			/* A file since removed would leave a socket nobody can
			 * reach: bind a new one instead. */
			if (strcmp(have.path, want.path) != 0 ||
			    (want.path[0] != '@' && stat(want.path, &st) < 0))
				continue;
		} else if (memcmp(have.raw, want.raw, 16) != 0 ||
			   (want.port != 0 && have.port != want.port)) {
			continue;
		}
		stored[i] = stored[--n_stored];
		return fd;
	}
	return -1;
}

static int clear_stale_unix(const struct sockaddr_un *sun, socklen_t len);

/* Stored listeners no --listen wants any more: closed, and out of the
 * manager's store too. */
static void release_stored(void)
{
	char msg[300];

	for (int i = 0; i < n_stored; i++) {
		struct sockaddr_un sun;
		socklen_t len = sizeof sun;
		bool unix_file = getsockname(stored[i].fd, (struct sockaddr *)&sun, &len) == 0 &&
				 sun.sun_family == AF_UNIX && len > sizeof sun.sun_family &&
				 sun.sun_path[0] != '\0';

		log_notice("fd store: %s is no longer asked for; removing it", stored[i].name);
		close(stored[i].fd);
		/* Out of the store first: the manager's copy would keep the
		 * socket alive, and the probe below must see it gone. */
		snprintf(msg, sizeof msg, "FDSTOREREMOVE=1\nFDNAME=%s", stored[i].name);
		sdg_notify(msg);
		/* Its file too, if it still is a socket nobody listens on. */
		if (unix_file)
			clear_stale_unix(&sun, len);
	}
	free(stored);
	stored = NULL;
	n_stored = 0;
}

/* Hands our own listeners to the service manager's fd store, so a restart
 * of the service gets them back (and connections made meanwhile wait in
 * their backlog instead of being refused).  $FDSTORE (systemd 254 and
 * later) says how many it keeps; 0 means none.  Without it the message is
 * sent anyway: an older manager keeps the fds if the unit allows it and
 * ignores the message otherwise. */
static void store_owned(struct server *s)
{
	const char *max = getenv("FDSTORE"), *ns = getenv("NOTIFY_SOCKET");
	bool known = max != NULL;
	unsigned long long n;
	char msg[300], name[256];

	/* Unset: a manager older than systemd 254, which may keep them.  Set,
	 * it says how many it keeps: 0 (or garbage) means none. */
	if (!ns || !*ns || (known && (options_parse_uint(max, ~0ULL, &n) < 0 || n == 0)))
		return;
	for (int i = 0; i < s->n_lst; i++) {
		struct listener *l = &s->lst[i];

		/* per-peer: the socket goes to a handler at the first
		 * datagram; the stored copy would come back connected. */
		if (!l->owned || l->fd < 0 || (l->socktype == SOCK_DGRAM && s->opt->per_peer))
			continue;
		listen_store_name(l, name, sizeof name);
		snprintf(msg, sizeof msg, "FDSTORE=1\nFDNAME=%s", name);
		if (sdg_notify_fds(msg, &l->fd, 1) > 0 && known)
			l->stored = true;
		else if (known)
			log_warn("fd store: could not store %s", l->name);
	}
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* inetd passes the socket as fds 0, 1 and 2.  acceptd keeps a close-on-exec
 * copy and points its own stdio at /dev/null: a handler must not find the
 * listening socket on fd 2, and a connection must see EOF when its handler
 * closes it, not when acceptd exits. */
static int from_fd0(struct server *s, char *err, size_t errlen)
{
	int fam, fd, null;
	enum sock_class c = classify(0, &fam);
	bool forced = s->opt->inetd;

	if (c == SC_NOT_SOCKET) {
		if (!forced)
			return 0;
		snprintf(err, errlen, "fd 0 (--inetd): not a socket");
		return -1;
	}
	if (c == SC_NOT_STREAM) {
		snprintf(err, errlen, "fd 0: %s", class_why(c));
		return -1;
	}
	if ((c == SC_CONNECTED || c == SC_DGRAM) && !forced && fam != AF_INET &&
	    fam != AF_INET6)
		return 0;	/* e.g. a socketpair from a supervisor: not inetd */
	if (c == SC_DGRAM && refuse_dgram(s, 0, NULL, err, errlen) < 0)
		return -1;
	fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0 || null < 0) {
		snprintf(err, errlen, "fd 0: %s", strerror(errno));
		return -1;
	}
	for (int i = 2; i >= 0; i--)
		if (i == 0 || same_file(i, fd))
			dup2(null, i);
	close(null);
	return take_inherited(s, fd, c, NULL, err, errlen) < 0 ? -1 : 1;
}

static int set_int(int fd, int level, int opt, int v)
{
	return setsockopt(fd, level, opt, &v, sizeof v);
}

/* A unix socket file nobody listens on is left over from a crash: replace
 * it.  Anything else at that path (a live socket, a regular file) is not
 * ours to remove.  The probe never blocks: a live listener with a full
 * backlog answers EAGAIN, and that is "in use" too (a blocking connect
 * would wait for ever, with SIGTERM already blocked).  The file is
 * unlinked only if it is still the one probed, so a path swapped
 * meanwhile is left alone. */
static int clear_stale_unix(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat st, again;
	int fd, r;

	if (sun->sun_path[0] == '\0' || lstat(sun->sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	r = connect(fd, (const struct sockaddr *)sun, len);
	close(fd);
	if (r == 0 || errno != ECONNREFUSED)
		return -1;
	if (lstat(sun->sun_path, &again) < 0 || again.st_dev != st.st_dev ||
	    again.st_ino != st.st_ino)
		return -1;
	return unlink(sun->sun_path);
}

static bool owner_wanted(const struct options *o)
{
	return o->socket_uid != (uid_t)-1 || o->socket_gid != (gid_t)-1;
}

/* *mode: what the file must end with, for own_unix_file. */
static int bind_unix(int fd, const struct addr_spec *a, const struct options *o, mode_t *mode)
{
	const struct sockaddr_un *sun = (const struct sockaddr_un *)&a->ss;
	mode_t old = umask(0), mask = old;
	int r, e;

	/* The mode is made by bind itself, through the umask (the kernel
	 * creates the file 0777 & ~umask): the socket never exists with
	 * wider permissions than asked, and no chmod by path follows, which
	 * a symlink put in its place would redirect - as root.  With an
	 * owner to give, the file is born 0200 instead - no one but our
	 * own uid (and root) can connect - and own_unix_file sets the mode
	 * after the owner, on the proven file. */
	if (o->socket_mode >= 0)
		mask = (mode_t)(~o->socket_mode & 0777);
	*mode = 0777 & ~mask;
	if (owner_wanted(o))
		mask = 0577;
	umask(mask);
	r = bind(fd, (const struct sockaddr *)&a->ss, a->sslen);
	if (r < 0 && errno == EADDRINUSE) {
		if (clear_stale_unix(sun, a->sslen) == 0)
			r = bind(fd, (const struct sockaddr *)&a->ss, a->sslen);
		else
			errno = EADDRINUSE;	/* not the probe's EAGAIN */
	}
	e = errno;
	umask(old);
	errno = e;
	return r;
}

/* Unlinks path if it still is the file st describes. */
static void unlink_if_same(const char *path, const struct stat *st)
{
	struct stat now;

	if (lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino)
		unlink(path);
}

/* "--socket-user nobody": the option err names, as given; opt NULL: the
 * first of the two given. */
static void owner_named(const struct options *o, const char *opt, char *out, size_t len)
{
	if (!opt)
		opt = o->socket_user ? "--socket-user" : "--socket-group";
	snprintf(out, len, "%s %s", opt,
		 strcmp(opt, "--socket-user") == 0 ? o->socket_user : o->socket_group);
}

/* The directory a unix socket's file is made in. */
static void dir_of(const char *path, char *dir, size_t len)
{
	char *slash;

	snprintf(dir, len, "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else
		slash[slash == dir] = '\0';	/* "/x.sock": the root itself */
}

/* The directory of a socket file with an owner to give must not let
 * others replace the file: writable by group or others without the
 * sticky bit (which lets only a file's owner move it), anyone could
 * rename our socket away and bind their own in its place, and the owner
 * asked for would protect nothing.  Refused rather than pretended.  The
 * directory's owner, and the directories above it, are trusted. */
static int check_socket_dir(const struct options *o, const char *path, char *err,
			    size_t errlen)
{
	char dir[108], who[300];
	struct stat st;

	dir_of(path, dir, sizeof dir);
	if (stat(dir, &st) < 0 || !(st.st_mode & (S_IWGRP | S_IWOTH)) ||
	    (st.st_mode & S_ISVTX))
		return 0;	/* gone (bind says why), or safe */
	owner_named(o, NULL, who, sizeof who);
	snprintf(err, errlen, "%s: unix:%s: its directory %s is writable by others (mode "
		 "%04o, not sticky), who could replace the socket; use a directory only "
		 "root and acceptd can write", who, path, dir, (unsigned)(st.st_mode & 07777));
	return -1;
}

/* Whether a connection through the inode pathfd holds reaches our
 * listener lfd: the proof that the file is the socket we bound.  It must
 * come out of lfd as our own (SO_PEERCRED's pid): root and our uid may
 * connect to the 0200 file meanwhile, and a client of theirs is no
 * proof.  0, or -1 with errno (ESTALE: someone else's socket). */
/* A datagram socket (unix-dgram:): a nonce sent through the file must
 * arrive at lfd.  Only root and acceptd's uid can send to the file yet
 * (bind_unix), so nothing else is queued there; a few are read anyway. */
static int dgram_reaches_us(int lfd, const struct sockaddr_un *via)
{
	int64_t nonce = mono_us() ^ ((int64_t)getpid() << 32), got;
	int c = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r = -1, e;

	if (c < 0)
		return -1;
	if (sendto(c, &nonce, sizeof nonce, 0, (const struct sockaddr *)via, sizeof *via) ==
	    (ssize_t)sizeof nonce) {
		for (int i = 0; i < 8 && r < 0; i++)
			if (recv(lfd, &got, sizeof got, MSG_DONTWAIT) != (ssize_t)sizeof got)
				break;
			else if (got == nonce)
				r = 0;
		if (r < 0)
			errno = ESTALE;
	} else if (errno == ECONNREFUSED || errno == EPROTOTYPE || errno == EAGAIN) {
		errno = ESTALE;		/* a socket, but not ours */
	}
	e = errno;
	close(c);
	errno = e;
	return r;
}

static int reaches_us(int lfd, int pathfd)
{
	struct sockaddr_un via = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof cred;
	int c, a, r = -1, e;

	snprintf(via.sun_path, sizeof via.sun_path, "/proc/self/fd/%d", pathfd);
	if (socktype_of(lfd) == SOCK_DGRAM)
		return dgram_reaches_us(lfd, &via);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c < 0)
		return -1;
	if (connect(c, (struct sockaddr *)&via, sizeof via) == 0) {
		a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (a >= 0) {
			if (getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
			    cred.pid == getpid())
				r = 0;
			close(a);
		}
		if (r < 0)
			errno = ESTALE;
	} else if (errno == ECONNREFUSED || errno == EAGAIN) {
		errno = ESTALE;		/* a socket, but not our listener */
	}
	e = errno;
	close(c);
	errno = e;
	return r;
}

/* --socket-user/--socket-group: the file bind just made, now listening
 * on lfd, gets its owner, then its mode, while acceptd is still root
 * (before -u) - and nothing else does, whoever else can write the
 * directory.  The path is looked up once, without following a final
 * symlink (O_PATH | O_NOFOLLOW); what it names must be a socket, and a
 * connection through that very inode (/proc/self/fd/N) must arrive at
 * our listener: a symlink to /etc/shadow, a hard link to another
 * daemon's socket, anything swapped in after the bind fails this proof.
 * Then fchownat(AT_EMPTY_PATH) and a chmod through /proc/self/fd (an
 * O_PATH fd has no fchmod) change that inode and no path.  A chown by
 * path (or lchown, or a check then a chown) could be redirected between
 * the two; a chmod by path was removed from bind_unix for that reason.
 * (bind_one checked the directory first: check_socket_dir.)  *st: the
 * file's identity, for the unlink at exit. */
static int own_unix_file(int lfd, const char *path, const struct options *o, mode_t mode,
			 struct stat *st, char *err, size_t errlen)
{
	char via[32], who[300];
	const char *what = "chown";
	int pfd, e = 0;

	pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0 || fstat(pfd, st) < 0)
		e = errno;
	else if (!S_ISSOCK(st->st_mode))
		e = ESTALE;
	else if (reaches_us(lfd, pfd) < 0)
		e = errno;
	if (e) {
		owner_named(o, NULL, who, sizeof who);
		if (e == ESTALE)
			snprintf(err, errlen, "%s: unix:%s is no longer the socket acceptd bound "
				 "(replaced since); left as it is", who, path);
		else	/* ENOENT: gone, or no /proc */
			snprintf(err, errlen, "%s: unix:%s: cannot tell it is the socket acceptd "
				 "bound (%s; is /proc mounted?); left as it is", who, path,
				 strerror(e));
		if (pfd >= 0)
			close(pfd);
		return -1;
	}
	snprintf(via, sizeof via, "/proc/self/fd/%d", pfd);
	if (fchownat(pfd, "", o->socket_uid, o->socket_gid, AT_EMPTY_PATH) == 0) {
		what = "chmod";
		if (chmod(via, mode) == 0) {
			close(pfd);
			return 0;
		}
	}
	e = errno;
	owner_named(o, e == EPERM ? privs_owner_denied(o) : NULL, who, sizeof who);
	if (e == EPERM && geteuid() != 0)
		snprintf(err, errlen, "%s: cannot give unix:%s away: acceptd runs as uid %u, "
			 "not root (%s)", who, path, (unsigned)geteuid(), strerror(e));
	else
		snprintf(err, errlen, "%s: unix:%s: %s: %s", who, path, what, strerror(e));
	/* Ours, proven: not left behind half made. */
	close(pfd);
	unlink_if_same(path, st);
	return -1;
}

/* known: the file's identity as own_unix_file proved it; NULL: as the
 * path names it now. */
static void remember_unix_file(struct listener *l, const struct peer *want,
			       const struct stat *known)
{
	struct stat st;

	if (want->family != AF_UNIX || want->path[0] == '@' || !want->path[0])
		return;
	snprintf(l->unix_path, sizeof l->unix_path, "%s", want->path);
	if (known || stat(l->unix_path, &st) == 0) {
		l->unix_dev = known ? known->st_dev : st.st_dev;
		l->unix_ino = known ? known->st_ino : st.st_ino;
	}
}

/* A listener from our fd store, for this spec: already bound and
 * listening, with connections perhaps waiting in it. */
static int reuse_stored(int fd, const struct options *o, struct listener *l,
			const struct peer *want)
{
	if (socktype_of(fd) == SOCK_STREAM) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		listen(fd, (int)o->backlog);	/* the backlog may have changed */
	}
	l->fd = fd;
	l->owned = true;
	describe(l, NULL);
	remember_unix_file(l, want, NULL);
	log_notice("listening on %s (%s)", l->name, getenv("ACCEPTD_REEXEC") ?
		   "kept across the reload" : "from the fd store");
	return 0;
}

/* A TCP or UDP socket bound to sa with the options every listener gets;
 * -1 with errno set.  Shared by bind_one and listen_probe, so a probe
 * tries exactly what the bind will do.  A UDP socket stays blocking: it
 * goes to handlers as it is (take_inherited says why). */
static int bind_inet(const struct sockaddr *sa, socklen_t salen, int type,
		     const struct options *o)
{
	int fd = socket(sa->sa_family, type | SOCK_CLOEXEC |
			(type == SOCK_STREAM ? SOCK_NONBLOCK : 0), 0), e;

	if (fd < 0)
		return -1;
	/* UDP: SO_REUSEADDR would let anyone's socket bind our port too
	 * (and take its datagrams).  per-peer binds a second one of ours:
	 * SO_REUSEPORT, which the kernel allows only for the same uid, and
	 * which gives a peer's datagrams to the socket connected to it. */
	if ((type == SOCK_STREAM && set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) ||
	    (type == SOCK_DGRAM && o->per_peer && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) ||
	    (o->reuseport && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) ||
	    /* Explicit either way: net.ipv6.bindv6only must not decide
	     * whether "[::]" also serves IPv4. */
	    (sa->sa_family == AF_INET6 &&
	     set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, !addr_is_wildcard(sa)) < 0) ||
	    bind(fd, sa, salen) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int bind_one(const struct addr_spec *a, const struct options *o,
		    struct listener *l, char *err, size_t errlen)
{
	int fam = a->ss.ss_family;
	char shown[ADDR_STRLEN];
	struct peer want;
	struct stat made;
	bool own;
	mode_t mode = 0;
	int e, fd;

	addr_peer_from(&want, (const struct sockaddr *)&a->ss, a->sslen);
	addr_peer_format(&want, shown, sizeof shown);
	/* Kept (a reload, the fd store): its file has its owner already. */
	if ((fd = claim_stored(a)) >= 0)
		return reuse_stored(fd, o, l, &want);
	own = fam == AF_UNIX && want.path[0] && want.path[0] != '@' && owner_wanted(o);
	if (own && check_socket_dir(o, want.path, err, errlen) < 0)
		return errno = EPERM, -1;
	if (fam == AF_UNIX) {
		fd = socket(fam, a->socktype | SOCK_CLOEXEC |
			    (a->socktype == SOCK_STREAM ? SOCK_NONBLOCK : 0), 0);
		if (fd < 0 || bind_unix(fd, a, o, &mode) < 0)
			goto fail;
	} else if ((fd = bind_inet((const struct sockaddr *)&a->ss, a->sslen, a->socktype,
				   o)) < 0) {
		goto fail;
	}
	if (a->socktype == SOCK_STREAM && listen(fd, (int)o->backlog) < 0)
		goto fail;
	if (own && own_unix_file(fd, want.path, o, mode, &made, err, errlen) < 0) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	l->fd = fd;
	l->owned = true;
	describe(l, NULL);
	remember_unix_file(l, &want, own ? &made : NULL);
	log_notice("listening on %s", l->name);
	return 0;
fail:
	e = errno;
	snprintf(err, errlen, "cannot listen on %s: %s", shown, strerror(e));
	if (fd >= 0)
		close(fd);
	errno = e;	/* each_any looks at it to decide on IPv4 */
	return -1;
}

/* per-peer (dgram.c): a fresh socket bound where l is, as bind_inet made
 * l (SO_REUSEADDR lets both be bound; the kernel gives a peer's
 * datagrams to the socket connected to it).  -1 with errno set. */
int listen_rebind(const struct server *s, const struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int fd, e;

	memset(&ss, 0, sizeof ss);
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	fd = bind_inet((struct sockaddr *)&ss, len, SOCK_DGRAM, s->opt);
	if (fd < 0)
		return -1;
	if (ss.ss_family == AF_INET6 && !l->fixed_local) {
		e = 1;
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &e, sizeof e);
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &e, sizeof e);
	} else if (!l->fixed_local) {
		e = 1;
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &e, sizeof e);
	}
	return fd;
}

/* Each --listen address comes to one or more concrete addresses (PORT:
 * dual-stack or IPv4; HOST: each address it resolves to); for_each_listen
 * hands every one to fn, so binding them and, before a reload, trying
 * them (listen_probe) walk the same list the same way. */
typedef int (*spec_fn)(void *ctx, const struct addr_spec *a, char *err, size_t errlen);

static int bind_spec_at(void *ctx, const struct addr_spec *a, char *err, size_t errlen)
{
	struct server *s = ctx;
	struct listener *l = add_listener(s);

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (bind_one(a, s->opt, l, err, errlen) < 0) {
		s->n_lst--;
		return -1;
	}
	return 0;
}

/* PORT alone: one dual-stack socket, or IPv4 where the host has no IPv6. */
static int each_any(uint16_t port, int type, spec_fn fn, void *ctx, char *err, size_t errlen)
{
	struct addr_spec a = { .kind = ADDR_IPV6, .socktype = type };
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	sin6->sin6_addr = in6addr_any;
	a.sslen = sizeof *sin6;
	if (fn(ctx, &a, err, errlen) == 0)
		return 0;
	if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL && errno != EPROTONOSUPPORT)
		return -1;
	memset(&a.ss, 0, sizeof a.ss);
	a.kind = ADDR_IPV4;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_ANY);
	a.sslen = sizeof *sin;
	return fn(ctx, &a, err, errlen);
}

static int each_host(const struct addr_spec *a, spec_fn fn, void *ctx, char *err,
		     size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = a->socktype, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	char port[8];
	int r;

	snprintf(port, sizeof port, "%u", a->port);
	r = getaddrinfo(a->host, port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", a->host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct addr_spec one = { .kind = ADDR_IPV4, .socktype = a->socktype };
		bool dup = false;

		/* getaddrinfo repeats addresses (once per /etc/hosts line). */
		for (struct addrinfo *p = res; p != ai && !dup; p = p->ai_next)
			dup = p->ai_addrlen == ai->ai_addrlen &&
			      memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0;
		if (dup || ai->ai_addrlen > sizeof one.ss)
			continue;
		memcpy(&one.ss, ai->ai_addr, ai->ai_addrlen);
		one.sslen = ai->ai_addrlen;
		if (fn(ctx, &one, err, errlen) < 0)
			break;
	}
	freeaddrinfo(res);
	return ai ? -1 : 0;
}

static int for_each_listen(const struct options *o, spec_fn fn, void *ctx, char *err,
			   size_t errlen)
{
	static const char *const dflt[] = { "8080" };
	const char *const *list = o->n_listen ? o->listen : dflt;
	int n = o->n_listen ? o->n_listen : 1;

	for (int i = 0; i < n; i++) {
		struct addr_spec a;
		int r;

		if (addr_parse(list[i], &a, err, errlen) < 0)
			return -1;	/* options.c checked it already */
		if (a.kind == ADDR_ANY)
			r = each_any(a.port, a.socktype, fn, ctx, err, errlen);
		else if (a.kind == ADDR_HOST)
			r = each_host(&a, fn, ctx, err, errlen);
		else
			r = fn(ctx, &a, err, errlen);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* Whether one of our own listeners is bound where sa asks (port 0: any
 * port), so a new image would take it over: claim_stored's rule. */
static bool held_by_us(const struct server *s, const struct sockaddr *sa, socklen_t salen,
		       int type)
{
	struct peer want;

	addr_peer_from(&want, sa, salen);
	for (int i = 0; i < s->n_lst; i++) {
		const struct listener *l = &s->lst[i];
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		struct peer have;

		memset(&ss, 0, sizeof ss);
		if (!l->owned || l->is_conn || l->fd < 0 || l->socktype != type ||
		    getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
			continue;
		addr_peer_from(&have, (struct sockaddr *)&ss, len);
		if (have.family != want.family || ss.ss_family != sa->sa_family)
			continue;
		if (want.family == AF_UNIX ? strcmp(have.path, want.path) == 0 :
		    memcmp(have.raw, want.raw, 16) == 0 &&
		    (want.port == 0 || have.port == want.port))
			return true;
	}
	return false;
}

struct probe_ctx {
	const struct server *s;
	const struct options *o;
};

/* A unix path the new image must bind (not one it keeps: held by us and
 * its file still there): can it?  This image may have dropped root with
 * -u, and so will the new one: a directory it cannot write, or an owner
 * (--socket-user/--socket-group) it cannot give, would stop the new image
 * after the exec.  Nothing is bound here (a bind makes the file); the
 * directory is checked as bind_one will. */
static int probe_unix(const struct probe_ctx *p, const struct addr_spec *a, char *err,
		      size_t errlen)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	const char *denied;
	char who[300], dir[108];
	struct peer want;
	struct stat st;

	addr_peer_from(&want, sa, a->sslen);
	if (!want.path[0] || want.path[0] == '@' ||
	    (held_by_us(p->s, sa, a->sslen, a->socktype) && stat(want.path, &st) == 0))
		return 0;
	dir_of(want.path, dir, sizeof dir);
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "cannot listen on unix:%s: %s", want.path, strerror(errno));
		return -1;
	}
	if (!owner_wanted(p->o))
		return 0;
	if ((denied = privs_owner_denied(p->o))) {
		owner_named(p->o, denied, who, sizeof who);
		snprintf(err, errlen, "%s: cannot give unix:%s away: acceptd runs as uid %u, "
			 "not root", who, want.path, (unsigned)geteuid());
		return -1;
	}
	return check_socket_dir(p->o, want.path, err, errlen);
}

/* Binds a throwaway socket where a asks, as bind_one would, and closes
 * it.  Unix paths are left to the new image (a bind makes the file). */
static int probe_one(void *ctx, const struct addr_spec *a, char *err, size_t errlen)
{
	const struct probe_ctx *p = ctx;
	const struct sockaddr *sa = (const struct sockaddr *)&a->ss;
	struct peer want;
	char shown[ADDR_STRLEN];
	int fd, e;

	if (sa->sa_family == AF_UNIX)
		return probe_unix(p, a, err, errlen);
	if (held_by_us(p->s, sa, a->sslen, a->socktype))
		return 0;
	fd = bind_inet(sa, a->sslen, a->socktype, p->o);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	e = errno;
	addr_peer_from(&want, sa, a->sslen);
	addr_peer_format(&want, shown, sizeof shown);
	snprintf(err, errlen, "cannot listen on %s: %s", shown, strerror(e));
	errno = e;	/* each_any looks at it to decide on IPv4 */
	return -1;
}

/* reload.c, before the exec: would the new image get every --listen
 * address of o?  What we listen on already it takes over; the rest is
 * bound once here, so an address that cannot be had is found while this
 * image still serves.  Sockets that came from a service manager or fd 0
 * are what the new image uses, whatever --listen says: nothing to try. */
int listen_probe(const struct server *s, const struct options *o, char *err, size_t errlen)
{
	struct probe_ctx p = { .s = s, .o = o };

	if (o->inetd)
		return 0;
	for (int i = 0; i < s->n_lst; i++)
		if (!s->lst[i].owned)
			return 0;
	return for_each_listen(o, probe_one, &p, err, errlen);
}

/* fds 0-2 must be open before acceptd creates any fd of its own, or a
 * listener could land on fd 2 and receive log lines.  A closed fd 0 so
 * becomes /dev/null, which is simply "not a socket" below. */
void listen_fix_stdio(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			_exit(1);
}

/* Every fd >= 3 that we inherit becomes close-on-exec before we open any
 * of our own: the LISTEN_FDS sockets and the reload's state are taken (and
 * marked) later anyway, and whatever else a careless parent left open must
 * never reach a handler, even where the spawn path's close_range is
 * missing.  CLOSE_RANGE_CLOEXEC (5.11) in one call; else fd by fd. */
void listen_seal_inherited(void)
{
	struct rlimit rl;
	DIR *d;

#ifdef HAVE_CLOSE_RANGE
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *e;

		while ((e = readdir(d)))
			if (atoi(e->d_name) >= 3 && atoi(e->d_name) != dirfd(d))
				fcntl(atoi(e->d_name), F_SETFD, FD_CLOEXEC);
		closedir(d);
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		for (rlim_t fd = 3; fd < rl.rlim_cur && fd < 1048576; fd++)
			fcntl((int)fd, F_SETFD, FD_CLOEXEC);
}

int listen_acquire(struct server *s, char *err, size_t errlen)
{
	int r = 0;

	/* After a reload the sockets come back through LISTEN_FDS whatever
	 * their first source was, -i included. */
	if (!s->opt->inetd || getenv("ACCEPTD_REEXEC"))
		r = from_systemd(s, err, errlen);
	if (r == 0)
		r = from_fd0(s, err, errlen);
	if (r > 0 && owner_wanted(s->opt))
		log_warn("--socket-user/--socket-group ignored: the sockets were passed to "
			 "acceptd, and their owner is the passer's to set (systemd's "
			 "SocketUser=, SocketGroup=)");
	if (r == 0)
		r = for_each_listen(s->opt, bind_spec_at, s, err, errlen);
	release_stored();
	if (r == 0)
		store_owned(s);
	return r < 0 ? -1 : 0;
}

void listen_close_owned(struct server *s)
{
	for (int i = 0; i < s->n_lst; i++) {
		struct listener *l = &s->lst[i];
		struct stat st;

		if (!l->owned || l->fd < 0)
			continue;
		close(l->fd);
		l->fd = -1;
		/* Unlink only the file we made: a newer instance may have
		 * replaced it meanwhile. */
		if (l->unix_path[0] && !l->stored && stat(l->unix_path, &st) == 0 &&
		    st.st_dev == l->unix_dev && st.st_ino == l->unix_ino)
			unlink(l->unix_path);
	}
}
