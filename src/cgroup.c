/*
 * cgroup.c - --cgroup: a cgroup v2 directory of its own for every handler
 * and worker, so that nothing a handler starts outlives it.
 *
 * A process group is not enough: a handler that calls setsid() or
 * double-forks leaves its group, and -t, the drain and the handler's own
 * end never reach what it left running.  A cgroup cannot be left: its
 * children are born in it, and cgroup.kill (Linux 5.14) ends every one.
 *
 * The layout, in the cgroup acceptd was started in (C, delegated to it:
 * systemd's Delegate=yes):
 *   C/acceptd     acceptd itself, moved there at start: cgroup v2 lets
 *                 only leaves hold processes once controllers are enabled
 *   C/conn-N      one per spawned handler
 *   C/worker-N    one per pool worker (a restarted one gets a new one)
 * N counts up for the life of the process, across reloads (the new image
 * goes on above the highest number it adopts).  A cgroup cannot be
 * renamed, so the name cannot be the pid, which is not known before the
 * process is born in it.
 *
 * The directory is made and its --cgroup-limit values written before the
 * process exists; spawn.c starts it inside (clone3 CLONE_INTO_CGROUP, or
 * a vfork child that moves itself before exec).  When the process is
 * reaped, the directory is removed; if that fails it is not empty - what
 * the handler left running - and cgroup.kill ends the rest, the removal
 * being retried until they are gone.
 *
 * cgroup_parse_limit is pure (options.c); the rest does I/O.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core.h"

#define LEAF "acceptd"		/* acceptd's own cgroup under C */
#define CHECK "acceptd-check"	/* where the limits are tried at start */
#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 1000

/* Files of a cgroup that are acceptd's to write, never a limit's. */
static const char *const own_files[] = {
	"cgroup.procs", "cgroup.threads", "cgroup.subtree_control", "cgroup.kill",
	"cgroup.freeze", "cgroup.type", "cgroup.events", "cgroup.controllers",
	"cgroup.stat", NULL
};

static struct {
	bool on;
	int dir;		/* C, O_RDONLY|O_DIRECTORY */
	char path[4096];	/* C in the file system, for messages */
	const struct options *opt;	/* its --cgroup-limit values */
	uint32_t next;		/* the next N */
	/* Handlers' cgroups that were not empty when they were reaped:
	 * killed, and removed once empty. */
	struct pend {
		uint32_t id;
		int64_t since_ms;
	} *pending;
	unsigned n_pending, cap_pending;
	int64_t retry_at_ms;
	unsigned retry_ms;
	/* At a reload's start: the ones the old image handed over, which
	 * the sweep of leftovers must leave alone. */
	uint32_t *adopted;
	unsigned n_adopted;
} cg = { .dir = -1 };

int cgroup_parse_limit(const char *arg_raw, struct cgroup_limit *out, char *err, size_t errlen)
{
	const char *eq = strchr(arg_raw, '=');
	size_t klen = eq ? (size_t)(eq - arg_raw) : 0;
	const char *v = eq ? eq + 1 : "", *arg = arg_raw;
	char shown[160];

	/* Messages are one line: a newline or escape in the value is shown
	 * as \xHH, and a long one cut. */
	log_escape(shown, sizeof shown, arg_raw, strlen(arg_raw));
	arg = shown;

	if (!eq || klen == 0 || klen >= sizeof out->key ||
	    arg_raw[strspn(arg_raw, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")] != '=' ||
	    !memchr(arg_raw, '.', klen) || arg_raw[0] == '.' || arg_raw[klen - 1] == '.') {
		snprintf(err, errlen, "--cgroup-limit '%s': want KEY=VALUE, KEY a cgroup file "
			 "such as memory.max, pids.max or cpu.max", arg);
		return -1;
	}
	memcpy(out->key, arg_raw, klen);
	out->key[klen] = '\0';
	/* A handler shares acceptd's memory until its exec (vfork's way):
	 * moving it across cpuset.mems would move acceptd's pages too. */
	if (strncmp(out->key, "cpuset.mems", 11) == 0) {
		snprintf(err, errlen, "--cgroup-limit '%s': cpuset.mems is not supported (a "
			 "handler starts out sharing acceptd's memory); cpuset.cpus is", arg);
		return -1;
	}
	for (int i = 0; own_files[i]; i++)
		if (strcmp(out->key, own_files[i]) == 0) {
			snprintf(err, errlen, "--cgroup-limit '%s': %s is acceptd's to write, "
				 "not a limit", arg, out->key);
			return -1;
		}
	if (!*v || strlen(v) >= sizeof out->value) {
		snprintf(err, errlen, "--cgroup-limit '%s': the value is empty or longer than "
			 "%zu bytes", arg, sizeof out->value - 1);
		return -1;
	}
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			snprintf(err, errlen, "--cgroup-limit '%s': the value has a control "
				 "or non-ASCII character", arg);
			return -1;
		}
	snprintf(out->value, sizeof out->value, "%s", v);
	return 0;
}

bool cgroup_on(void)
{
	return cg.on;
}

void cgroup_name(uint32_t id, char out[CGROUP_NAME_MAX])
{
	snprintf(out, CGROUP_NAME_MAX, "%s-%u", id & CGROUP_WORKER ? "worker" : "conn",
		 (unsigned)(id & ~CGROUP_WORKER));
}

/* --- finding C ------------------------------------------------------------ */

/* mountinfo escapes blanks and backslashes as \ooo. */
static void unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* Our cgroup v2 path ("0::PATH" of /proc/self/cgroup). */
static int own_cgroup(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	int r = -1;

	if (!f)
		return -1;
	while (r < 0 && fgets(line, sizeof line, f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			if (strlen(line + 3) < len) {
				memcpy(out, line + 3, strlen(line + 3) + 1);
				r = 0;
			}
		}
	fclose(f);
	return r;
}

/* Where the cgroup2 file system is mounted so that own (our path in the
 * hierarchy) is inside it, and which path of the hierarchy that mount's
 * root is (inside a cgroup namespace or a bind mount, not "/"). */
static bool inside(const char *own, const char *root)
{
	size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);

	return strncmp(own, root, rl) == 0 && (own[rl] == '/' || own[rl] == '\0');
}

static int cgroup2_mount(const char *own, char *mnt, size_t mntlen, char *root, size_t rootlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int r = -1;

	if (!f)
		return -1;
	while (r < 0 && fgets(line, sizeof line, f)) {
		char *field[5], *sep = strstr(line, " - "), *save = NULL, *p = line;
		int n = 0;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		while (n < 5 && (field[n] = strtok_r(p, " ", &save)))
			n++, p = NULL;
		if (n < 5)
			continue;
		unescape(field[3]);
		unescape(field[4]);
		if (!inside(own, field[3]) || strlen(field[3]) >= rootlen ||
		    strlen(field[4]) >= mntlen)
			continue;
		memcpy(root, field[3], strlen(field[3]) + 1);
		memcpy(mnt, field[4], strlen(field[4]) + 1);
		r = 0;
	}
	fclose(f);
	return r;
}

/* Is C a systemd unit's cgroup?  Then only Delegate=yes makes it ours:
 * systemd marks it with trusted.delegate (and chowns it to User=); one
 * not delegated is systemd's to manage, and changing it under systemd's
 * feet breaks the unit. */
static bool unit_cgroup(const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	return (n > 8 && strcmp(base + n - 8, ".service") == 0) ||
	       (n > 6 && strcmp(base + n - 6, ".scope") == 0);
}

static bool delegated(const char *dir)
{
	char v[8];
	ssize_t n;
	struct stat st;

	if ((n = getxattr(dir, "trusted.delegate", v, sizeof v - 1)) > 0 ||
	    (n = getxattr(dir, "user.delegate", v, sizeof v - 1)) > 0) {
		v[n] = '\0';
		return strcmp(v, "1") == 0;
	}
	/* trusted.* is out of sight without CAP_SYS_ADMIN: for a User=
	 * service, systemd's chown is the mark. */
	return geteuid() != 0 && stat(dir, &st) == 0 && st.st_uid == geteuid();
}

/* --- small file I/O --------------------------------------------------------- */

static int write_at(int dir, const char *file, const char *text)
{
	int fd = openat(dir, file, O_WRONLY | O_CLOEXEC), e;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The first line of a cgroup file, or "" (an empty one, or unreadable). */
static void read_at(int dir, const char *file, char *out, size_t len)
{
	int fd = openat(dir, file, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, out, len - 1) : -1;

	if (fd >= 0)
		close(fd);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

/* A directory fd of its own to read: a dup would share the position of
 * the one it copies, and a second reading would start at the end. */
static int own_open(int dir)
{
	return openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The name of a directory in fd (a child cgroup), if there is one. */
static bool first_subdir(int fd, char *out, size_t len)
{
	int dup_fd = own_open(fd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *e;
	bool found = false;

	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return false;
	}
	while (!found && (e = readdir(d)))
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0 && strlen(e->d_name) < len) {
			memcpy(out, e->d_name, strlen(e->d_name) + 1);
			found = true;
		}
	closedir(d);
	return found;
}

/* How many processes are in dir/name and the cgroups a handler made in
 * it (for the log: bounded, and only when something was left). */
static unsigned count_procs(int dir, const char *name, int depth)
{
	char buf[4096];
	unsigned n = 0;
	ssize_t got;
	int sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd;
	DIR *d;
	struct dirent *e;

	if (sub < 0)
		return 0;
	fd = openat(sub, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && (got = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < got; i++)
			n += buf[i] == '\n';
	if (fd >= 0)
		close(fd);
	d = depth < 8 ? fdopendir(sub) : NULL;
	if (!d) {
		close(sub);
		return n;
	}
	while ((e = readdir(d)))
		if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 &&
		    strcmp(e->d_name, "..") != 0)
			n += count_procs(dirfd(d), e->d_name, depth + 1);
	closedir(d);
	return n;
}

/* Removes dir/name and, first, the cgroups a handler made inside it (it
 * owns its own, so it may; one cannot be removed while it has children;
 * cgroup.kill ended their processes too).  Each pass walks down to a leaf
 * holding two fds, however deep the tree, and removes it; a budget of
 * passes per call keeps a deep tree from stalling the loop: the rest is
 * tried again later.  0, or -1 (errno EBUSY: processes still in it). */
#define REMOVE_BUDGET 256

static int remove_tree(int dir, const char *name)
{
	for (int pass = 0; pass < REMOVE_BUDGET; pass++) {
		char cur[256], sub[256];
		int parent, fd, r, e;

		if (unlinkat(dir, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY && errno != ENOTEMPTY)
			return -1;
		parent = fcntl(dir, F_DUPFD_CLOEXEC, 0);
		snprintf(cur, sizeof cur, "%s", name);
		while (parent >= 0 && (fd = openat(parent, cur, O_RDONLY | O_DIRECTORY |
						   O_CLOEXEC)) >= 0) {
			bool deeper = first_subdir(fd, sub, sizeof sub);

			if (!deeper) {
				close(fd);
				break;
			}
			close(parent);
			parent = fd;
			memcpy(cur, sub, sizeof cur);
		}
		if (parent < 0)
			return -1;
		r = unlinkat(parent, cur, AT_REMOVEDIR);
		e = errno;
		close(parent);
		if (r < 0 && e != ENOENT) {
			errno = e;	/* a leaf with processes: not yet */
			return -1;
		}
	}
	errno = EBUSY;
	return -1;
}

/* --- limits and controllers ------------------------------------------------- */

static int write_limits(int dir, const struct options *o, char *err, size_t errlen)
{
	for (unsigned i = 0; i < o->n_cg_limits; i++)
		if (write_at(dir, o->cg_limits[i].key, o->cg_limits[i].value) < 0) {
			if (err)
				snprintf(err, errlen, "--cgroup-limit %s=%s: %s", o->cg_limits[i].key,
					 o->cg_limits[i].value, errno == ENOENT ?
					 "no such file in a cgroup here" : strerror(errno));
			return -1;
		}
	return 0;
}

/* The controller a key belongs to ("memory" of memory.max; cgroup.* keys
 * need none). */
static void controller_of(const char *key, char *out, size_t len)
{
	snprintf(out, len, "%.*s", (int)strcspn(key, "."), key);
}

static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/* Every key's controller is offered to C (its cgroup.controllers), and
 * switched on for C's children. */
static int controllers(int dir, const char *path, const struct options *o, char *err,
		       size_t errlen)
{
	char offered[512], on[512], ctl[64], plus[80];

	read_at(dir, "cgroup.controllers", offered, sizeof offered);
	for (unsigned i = 0; i < o->n_cg_limits; i++) {
		controller_of(o->cg_limits[i].key, ctl, sizeof ctl);
		if (strcmp(ctl, "cgroup") == 0)
			continue;
		if (!has_word(offered, ctl)) {
			snprintf(err, errlen, "--cgroup-limit %s: the %s controller is not "
				 "available in %s (its cgroup.controllers: %s)",
				 o->cg_limits[i].key, ctl, path, offered[0] ? offered : "none");
			return -1;
		}
		read_at(dir, "cgroup.subtree_control", on, sizeof on);
		if (has_word(on, ctl))
			continue;
		snprintf(plus, sizeof plus, "+%s", ctl);
		if (write_at(dir, "cgroup.subtree_control", plus) < 0) {
			snprintf(err, errlen, "--cgroup-limit %s: cannot enable the %s controller "
				 "in %s: %s", o->cg_limits[i].key, ctl, path,
				 errno == EBUSY ? "other processes are in that cgroup itself "
				 "(cgroup v2 lets only leaves hold them)" : strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The values, tried once on a scratch cgroup: a typo fails now, not at
 * every connection. */
static int try_limits(int dir, const struct options *o, char *err, size_t errlen)
{
	int sub, r;

	if (o->n_cg_limits == 0)
		return 0;
	if (mkdirat(dir, CHECK, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "--cgroup: cannot make a cgroup in %s: %s", cg.path,
			 strerror(errno));
		return -1;
	}
	sub = openat(dir, CHECK, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = sub >= 0 ? write_limits(sub, o, err, errlen) : -1;
	if (sub >= 0)
		close(sub);
	else
		snprintf(err, errlen, "--cgroup: %s/%s: %s", cg.path, CHECK, strerror(errno));
	unlinkat(dir, CHECK, AT_REMOVEDIR);
	return r;
}

/* --- start ------------------------------------------------------------------ */

/* C's directory: from our own cgroup, or its parent when an earlier
 * image of ours (a reload) already moved into the leaf. */
static int locate(bool restored, char *err, size_t errlen)
{
	char own[2048], mnt[1024], root[1024];
	const char *rel;
	size_t rl;

	if (own_cgroup(own, sizeof own) < 0) {
		snprintf(err, errlen, "--cgroup: no cgroup v2 hierarchy (a cgroup v1 only "
			 "system has no cgroup.kill)");
		return -1;
	}
	/* "/.." (outside our cgroup namespace's root) names nothing we can
	 * reach through the mount. */
	if (strstr(own, "/..") || cgroup2_mount(own, mnt, sizeof mnt, root, sizeof root) < 0) {
		snprintf(err, errlen, "--cgroup: our cgroup %s is under no cgroup v2 mount here",
			 own);
		return -1;
	}
	rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
	rel = own + rl;
	if (restored) {
		size_t n = strlen(rel);

		if (n > strlen("/" LEAF) && strcmp(rel + n - strlen("/" LEAF), "/" LEAF) == 0)
			own[rl + n - strlen("/" LEAF)] = '\0';
	}
	if (!*rel || strcmp(rel, "/") == 0) {
		snprintf(err, errlen, "--cgroup: acceptd runs in the root cgroup, which is "
			 "nobody's to delegate; start it in a cgroup of its own (systemd: "
			 "Delegate=yes)");
		return -1;
	}
	if (strlen(mnt) + strlen(rel) >= sizeof cg.path) {
		snprintf(err, errlen, "--cgroup: the path of our cgroup is too long");
		return -1;
	}
	memcpy(cg.path, mnt, strlen(mnt));
	memcpy(cg.path + strlen(mnt), rel, strlen(rel) + 1);
	return 0;
}

/* Leftovers of an acceptd that died (or, after a reload, cgroups the old
 * image did not hand over): nobody counts them, nobody would end them. */
static bool adopted(uint32_t id)
{
	for (unsigned i = 0; i < cg.n_adopted; i++)
		if (cg.adopted[i] == id)
			return true;
	return false;
}

static void sweep(void)
{
	int fd = own_open(cg.dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		char name[CGROUP_NAME_MAX];
		unsigned long n;
		char *end;
		bool worker = strncmp(e->d_name, "worker-", 7) == 0;
		uint32_t id;

		if (!worker && strncmp(e->d_name, "conn-", 5) != 0)
			continue;
		n = strtoul(e->d_name + (worker ? 7 : 5), &end, 10);
		if (*end || n == 0 || n >= CGROUP_WORKER)
			continue;
		id = (uint32_t)n | (worker ? CGROUP_WORKER : 0);
		cgroup_name(id, name);
		if (strcmp(name, e->d_name) != 0 || adopted(id))
			continue;	/* not a name we give ("conn-05") */
		if (remove_tree(cg.dir, e->d_name) == 0)
			continue;
		log_notice("--cgroup: %s/%s is left from an earlier acceptd with %u process(es) "
			   "in it; killing them", cg.path, e->d_name, count_procs(cg.dir, name, 0));
		cgroup_kill(id);
		cgroup_release(id);
		if ((n & ~CGROUP_WORKER) >= cg.next)
			cg.next = (uint32_t)(n & ~CGROUP_WORKER) + 1;
	}
	closedir(d);
}

/* Is C ours alone, once we are in the leaf?  cgroup v2 asks a process
 * that moves another only for write access to their common ancestor's
 * cgroup.procs - not whose the moved process is.  A handler, which owns
 * its conn-N (or, with -u, finds C given to its user), could pull any
 * other process of C into its own cgroup, and acceptd would kill it
 * with the handler.  So nothing but acceptd's own may be in C: its leaf,
 * its conn-N/worker-N (leftovers, swept next) and systemd's .control
 * (where, with Delegate=yes, ExecStartPost= and ExecReload= run). */
static int dedicated(char *err, size_t errlen)
{
	char busy[64], events[256], path[300];
	int fd = own_open(cg.dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	int r = 0;

	read_at(cg.dir, "cgroup.procs", busy, sizeof busy);
	if (busy[0]) {
		snprintf(err, errlen, "--cgroup: %s holds other processes too (pid %s): a handler "
			 "could move them into its own cgroup, to be killed with it; give acceptd "
			 "a cgroup of its own", cg.path, busy);
		if (d)
			closedir(d);
		else if (fd >= 0)
			close(fd);
		return -1;
	}
	while (d && r == 0 && (e = readdir(d))) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0 || strcmp(e->d_name, ".control") == 0 ||
		    strcmp(e->d_name, LEAF) == 0 ||
		    strcmp(e->d_name, CHECK) == 0 || strncmp(e->d_name, "conn-", 5) == 0 ||
		    strncmp(e->d_name, "worker-", 7) == 0)
			continue;
		snprintf(path, sizeof path, "%s/cgroup.events", e->d_name);
		read_at(cg.dir, path, events, sizeof events);
		if (strstr(events, "populated 1")) {
			snprintf(err, errlen, "--cgroup: %s/%s holds processes that are not "
				 "acceptd's: a handler could move them into its own cgroup, to be "
				 "killed with it; give acceptd a cgroup of its own", cg.path,
				 e->d_name);
			r = -1;
		}
	}
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	return r;
}

/* Ours with -u: the delegation files, as systemd gives them to User=. */
static int hand_to(const struct privs *p)
{
	static const char *const files[] = { "", "cgroup.procs", "cgroup.threads",
		"cgroup.subtree_control", LEAF, LEAF "/cgroup.procs", LEAF "/cgroup.threads",
		LEAF "/cgroup.subtree_control", NULL };

	for (int i = 0; files[i]; i++)
		if (fchownat(cg.dir, files[i], p->uid, p->gid, files[i][0] ? 0 : AT_EMPTY_PATH) < 0)
			return -1;
	return 0;
}

/* Before privileges are dropped: find C, check it is ours and usable,
 * move into the leaf, enable what the limits need, try them.  0, or -1
 * with err set ("--cgroup: ..." or "--cgroup-limit ..."). */
int cgroup_setup(const struct options *o, const struct privs *p, bool restored, char *err,
		 size_t errlen)
{
	char pid[24], busy[64];

	cg.opt = o;
	if (!o->cgroup)
		return 0;
	if (locate(restored, err, errlen) < 0)
		return -1;
	if (unit_cgroup(cg.path) && !delegated(cg.path)) {
		snprintf(err, errlen, "--cgroup: %s is a systemd unit's cgroup not delegated to "
			 "acceptd; the unit needs Delegate=yes (acceptd(8), CONTAINING HANDLERS)",
			 cg.path);
		return -1;
	}
	cg.dir = open(cg.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg.dir < 0 || faccessat(cg.dir, "cgroup.procs", W_OK, AT_EACCESS) < 0 ||
	    faccessat(cg.dir, ".", W_OK, AT_EACCESS) < 0) {
		if (errno == EROFS)
			snprintf(err, errlen, "--cgroup: %s is on a read-only mount (systemd's "
				 "ProtectControlGroups=yes: the unit needs ProtectControlGroups=no "
				 "with Delegate=yes)", cg.path);
		else
			snprintf(err, errlen, "--cgroup: %s is not ours to write (%s); it must be "
				 "delegated to acceptd (systemd: Delegate=yes)", cg.path,
				 strerror(errno));
		return -1;
	}
	if (faccessat(cg.dir, "cgroup.kill", F_OK, 0) < 0) {
		snprintf(err, errlen, "--cgroup: %s has no cgroup.kill: the kernel is older "
			 "than Linux 5.14", cg.path);
		return -1;
	}
	if (!restored) {
		if (mkdirat(cg.dir, LEAF, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "--cgroup: cannot make %s/%s: %s", cg.path, LEAF,
				 strerror(errno));
			return -1;
		}
		read_at(cg.dir, LEAF "/cgroup.procs", busy, sizeof busy);
		if (busy[0]) {
			snprintf(err, errlen, "--cgroup: %s/%s already holds pid %s: another "
				 "acceptd serves from this cgroup", cg.path, LEAF, busy);
			return -1;
		}
		snprintf(pid, sizeof pid, "%d", (int)getpid());
		if (write_at(cg.dir, LEAF "/cgroup.procs", pid) < 0) {
			snprintf(err, errlen, "--cgroup: cannot move into %s/%s: %s", cg.path, LEAF,
				 strerror(errno));
			return -1;
		}
		if (dedicated(err, errlen) < 0)
			return -1;
	}
	if (controllers(cg.dir, cg.path, o, err, errlen) < 0 ||
	    try_limits(cg.dir, o, err, errlen) < 0)
		return -1;
	if (p && p->wanted && geteuid() == 0 && p->uid != 0 && hand_to(p) < 0) {
		snprintf(err, errlen, "--cgroup: cannot give %s to uid %u: %s", cg.path,
			 (unsigned)p->uid, strerror(errno));
		return -1;
	}
	cg.on = true;
	if (!cg.next)
		cg.next = 1;
	if (!restored)
		log_notice("--cgroup: handlers and workers start in cgroups of their own under %s",
			   cg.path);
	sweep();
	free(cg.adopted);
	cg.adopted = NULL;
	cg.n_adopted = 0;
	return 0;
}

/* A reload's check, in the old image: the new options would start. */
int cgroup_check(const struct options *o, char *err, size_t errlen)
{
	if (o->cgroup != cg.on) {
		snprintf(err, errlen, "--cgroup: a reload cannot turn it %s (the handlers running "
			 "now are where they started); restart acceptd for that",
			 o->cgroup ? "on" : "off");
		return -1;
	}
	if (!cg.on)
		return 0;
	/* Enabled now, so the new values can be tried (the new image would
	 * enable them anyway; if it never comes, they only offer running
	 * handlers more files). */
	if (controllers(cg.dir, cg.path, o, err, errlen) < 0 ||
	    try_limits(cg.dir, o, err, errlen) < 0)
		return -1;
	return 0;
}

/* A reload's hand-over: the next N, so that no name is used twice in
 * the life of the process (the logs stay unambiguous). */
uint32_t cgroup_next(void)
{
	return cg.next;
}

void cgroup_adopt_next(uint32_t next)
{
	if (next > cg.next && next < CGROUP_WORKER)
		cg.next = next;
}

/* A reload's hand-over: a handler or worker of the old image is in this
 * one. */
void cgroup_adopt(uint32_t id)
{
	uint32_t *grown;

	if ((id & ~CGROUP_WORKER) >= cg.next)
		cg.next = (id & ~CGROUP_WORKER) + 1;
	grown = realloc(cg.adopted, (cg.n_adopted + 1) * sizeof *grown);
	if (!grown)
		return;
	cg.adopted = grown;
	cg.adopted[cg.n_adopted++] = id;
}

/* --- each handler and worker ---------------------------------------------- */

/* A new cgroup with the limits written: its directory fd (the caller
 * closes it), or -1 with errno. */
int cgroup_create(bool worker, uint32_t *id)
{
	static struct log_limit lim = { .what = "--cgroup-limit failures" };
	char name[CGROUP_NAME_MAX], err[400];
	int fd, e;

	for (;;) {
		*id = cg.next++ | (worker ? CGROUP_WORKER : 0);
		if (cg.next >= CGROUP_WORKER)
			cg.next = 1;
		cgroup_name(*id, name);
		if (mkdirat(cg.dir, name, 0755) == 0)
			break;
		if (errno != EEXIST) {
			*id = 0;
			return -1;
		}
	}
	fd = openat(cg.dir, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && write_limits(fd, cg.opt, err, sizeof err) == 0)
		return fd;
	e = errno;
	if (fd >= 0) {
		if (log_limited(&lim))
			log_err("%s", err);
		close(fd);
	}
	unlinkat(cg.dir, name, AT_REMOVEDIR);
	*id = 0;
	errno = e;
	return -1;
}

/* Nothing was started in it. */
void cgroup_discard(uint32_t id)
{
	char name[CGROUP_NAME_MAX];

	cgroup_name(id, name);
	unlinkat(cg.dir, name, AT_REMOVEDIR);
}

/* cgroup.kill: every process in it, SIGKILL, and no new one born there
 * meanwhile.  0, or -1 (gone already: ENOENT). */
int cgroup_kill(uint32_t id)
{
	char name[CGROUP_NAME_MAX], path[CGROUP_NAME_MAX + 16];

	cgroup_name(id, name);
	snprintf(path, sizeof path, "%s/cgroup.kill", name);
	return write_at(cg.dir, path, "1");
}

static void retry_soon(void)
{
	cg.retry_ms = RETRY_FIRST_MS;
	cg.retry_at_ms = mono_ms() + cg.retry_ms;
}

static void add_pending(uint32_t id)
{
	if (cg.n_pending == cg.cap_pending) {
		unsigned cap = cg.cap_pending ? 2 * cg.cap_pending : 16;
		struct pend *grown = realloc(cg.pending, cap * sizeof *grown);

		if (!grown)
			return;	/* the sweep at the next start finds it */
		cg.pending = grown;
		cg.cap_pending = cap;
	}
	cg.pending[cg.n_pending].id = id;
	cg.pending[cg.n_pending++].since_ms = mono_ms();
	retry_soon();
}

/* Its main process is reaped: remove the cgroup, or, when something is
 * still in it, kill that and remove it once empty.  Returns how many
 * processes were left (0: none, only cgroups a handler made in it). */
unsigned cgroup_release(uint32_t id)
{
	static struct log_limit lim = { .what = "cgroups that could not be removed" };
	char name[CGROUP_NAME_MAX];
	unsigned n;

	cgroup_name(id, name);
	if (unlinkat(cg.dir, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
		return 0;
	if (errno != EBUSY && errno != ENOTEMPTY && log_limited(&lim))	/* not what was left */
		log_warn("--cgroup: cannot remove %s/%s: %s; trying again", cg.path, name,
			 strerror(errno));
	n = count_procs(cg.dir, name, 0);
	if (n)
		cgroup_kill(id);
	if (remove_tree(cg.dir, name) < 0)
		add_pending(id);
	return n;
}

/* A reload's hand-over: the removals still to do. */
unsigned cgroup_pending_ids(uint32_t *out, unsigned max)
{
	unsigned n = 0;

	for (; n < cg.n_pending && n < max; n++)
		out[n] = cg.pending[n].id;
	return n;
}

void cgroup_adopt_pending(uint32_t id)
{
	cgroup_adopt(id);	/* not the sweep's: the retries' */
	add_pending(id);
}

/* Killed cgroups still to remove that acceptd waits for before it exits:
 * those not yet STUCK_MS old.  A process the kernel holds (D state), or a
 * tree too large, must not keep it (or a service's stop) waiting for
 * ever: cgroup_left says which are left behind. */
#define STUCK_MS 10000

unsigned cgroup_pending(void)
{
	int64_t now = mono_ms();
	unsigned n = 0;

	for (unsigned i = 0; i < cg.n_pending; i++)
		n += now - cg.pending[i].since_ms < STUCK_MS;
	return n;
}

void cgroup_left(void)
{
	char name[CGROUP_NAME_MAX];

	for (unsigned i = 0; i < cg.n_pending; i++) {
		cgroup_name(cg.pending[i].id, name);
		log_err("--cgroup: %s/%s is still there after %.0f s (a process in it does not "
			"die, or cgroups made in it); left behind", cg.path, name,
			(double)(mono_ms() - cg.pending[i].since_ms) / 1000.0);
	}
}

/* The timer contract (clock.h): retries the removals that are due. */
int64_t cgroup_tick(void)
{
	char name[CGROUP_NAME_MAX];
	unsigned kept = 0;

	if (!cg.n_pending)
		return -1;
	if (mono_ms() < cg.retry_at_ms)
		return cg.retry_at_ms;
	for (unsigned i = 0; i < cg.n_pending; i++) {
		cgroup_name(cg.pending[i].id, name);
		if (remove_tree(cg.dir, name) == 0)
			continue;
		cgroup_kill(cg.pending[i].id);	/* whatever raced the first one */
		cg.pending[kept++] = cg.pending[i];
	}
	cg.n_pending = kept;
	if (!kept)
		return -1;
	/* A process stuck in the kernel (D state) holds its cgroup: look
	 * less often the longer it takes. */
	cg.retry_ms = cg.retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : cg.retry_ms * 2;
	cg.retry_at_ms = mono_ms() + cg.retry_ms;
	return cg.retry_at_ms;
}
