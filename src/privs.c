/*
 * privs.c - -u/--user: give up root once the listeners exist.
 *
 * The name is looked up before any socket is made, so an unknown user is
 * a usage error (exit 2) and not a half-started daemon.  The drop happens
 * after the listeners are bound (a privileged port needs root) and before
 * any handler or worker exists, so nothing acceptd starts ever runs with
 * more than the master keeps.  Each step is checked, and then the result
 * is proved: the ids read back as asked and setuid(0) must fail.  Capability
 * sets are emptied too: after setuid() the kernel clears the permitted and
 * effective sets, but an inheritable or ambient set left by whoever started
 * us would survive into handlers.
 *
 * --socket-user/--socket-group are looked up here too, as early, and
 * privs_owner_denied says whether this process may give a file that
 * owner (listen.c gives it; reload.c asks first).
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

/* A name, or a number that no name shadows. */
static int lookup_user(const char *name, struct privs *p)
{
	struct passwd *pw;
	unsigned long long n;

	errno = 0;
	pw = getpwnam(name);
	if (!pw && options_parse_uint(name, (unsigned long long)(uid_t)-2, &n) == 0) {
		pw = getpwuid((uid_t)n);
		if (!pw) {	/* a bare uid without a passwd entry */
			p->uid = (uid_t)n;
			p->gid = (gid_t)n;
			p->name[0] = '\0';
			return 0;
		}
	}
	if (!pw)
		return -1;
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->name, sizeof p->name, "%s", pw->pw_name);
	return 0;
}

static int lookup_group(const char *name, gid_t *gid)
{
	struct group *gr = getgrnam(name);
	unsigned long long n;

	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	if (options_parse_uint(name, (unsigned long long)(gid_t)-2, &n) == 0) {
		*gid = (gid_t)n;
		return 0;
	}
	return -1;
}

/* USER[:GROUP] to ids; the daemon has not touched anything yet. */
int privs_resolve(const char *spec, struct privs *p, char *err, size_t errlen)
{
	char user[256];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);

	memset(p, 0, sizeof *p);
	if (ulen == 0 || ulen >= sizeof user || (colon && !colon[1])) {
		snprintf(err, errlen, "--user '%s': want USER or USER:GROUP", spec);
		return -1;
	}
	memcpy(user, spec, ulen);
	user[ulen] = '\0';
	if (lookup_user(user, p) < 0) {
		snprintf(err, errlen, "--user '%s': no such user", spec);
		return -1;
	}
	if (colon) {
		if (lookup_group(colon + 1, &p->gid) < 0) {
			snprintf(err, errlen, "--user '%s': no such group '%s'", spec, colon + 1);
			return -1;
		}
		p->group_given = true;
	}
	p->wanted = true;
	return 0;
}

/* --socket-user and --socket-group to ids, before any socket exists, so a
 * name that does not resolve is a usage error like --user's.  A user
 * brings its primary group unless --socket-group names another (as
 * systemd's SocketUser= does); a bare uid without a passwd entry has no
 * group to bring. */
int privs_socket_owner(struct options *o, char *err, size_t errlen)
{
	struct privs p;

	o->socket_uid = (uid_t)-1;
	o->socket_gid = (gid_t)-1;
	if (o->socket_user) {
		if (lookup_user(o->socket_user, &p) < 0) {
			snprintf(err, errlen, "--socket-user '%s': no such user", o->socket_user);
			return -1;
		}
		o->socket_uid = p.uid;
		if (p.name[0])
			o->socket_gid = p.gid;
	}
	if (o->socket_group && lookup_group(o->socket_group, &o->socket_gid) < 0) {
		snprintf(err, errlen, "--socket-group '%s': no such group", o->socket_group);
		return -1;
	}
	return 0;
}

static bool in_groups(gid_t gid)
{
	int n = getgroups(0, NULL);
	gid_t *list = n > 0 ? calloc((size_t)n, sizeof *list) : NULL;
	bool found = false;

	if (list && (n = getgroups(n, list)) > 0)
		for (int i = 0; i < n && !found; i++)
			found = list[i] == gid;
	free(list);
	return found;
}

/* Which option a chown by this process could not honour, or NULL: the
 * kernel lets a process without CAP_CHOWN keep its own uid on a file and
 * pick one of its own groups, nothing more.  Root is taken to hold
 * CAP_CHOWN; where it does not, the chown's EPERM says so at start.
 * reload.c asks this before a new image (no longer root after -u) would
 * have to bind and chown a socket it cannot. */
const char *privs_owner_denied(const struct options *o)
{
	if (geteuid() == 0)
		return NULL;
	if (o->socket_uid != (uid_t)-1 && o->socket_uid != geteuid())
		return "--socket-user";
	if (o->socket_gid == (gid_t)-1 || o->socket_gid == getegid() ||
	    in_groups(o->socket_gid))
		return NULL;
	return o->socket_group ? "--socket-group" : "--socket-user";
}

static int clear_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof d);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return (int)syscall(SYS_capset, &h, d);
}

/* The supplementary groups: GROUP alone when given, else the user's
 * groups from the group database without its primary group (that is the
 * gid already), so a user like nobody ends with none at all. */
static int set_groups(const struct privs *p)
{
	gid_t list[256], keep[256];
	int n = 256, k = 0;

	if (p->group_given)
		return setgroups(1, &p->gid);
	if (!p->name[0])
		return setgroups(0, NULL);
	if (getgrouplist(p->name, p->gid, list, &n) < 0)
		return errno = E2BIG, -1;
	for (int i = 0; i < n; i++)
		if (list[i] != p->gid)
			keep[k++] = list[i];
	return setgroups((size_t)k, keep);
}

/* Whether privs_drop can get there from here: as root, or - reloaded,
 * executed by an image that dropped already - being that user and group.
 * reload.c asks before it executes, so a new image never fails on it. */
int privs_check(const struct privs *p, const char *spec, bool reloaded, char *err,
		size_t errlen)
{
	if (geteuid() == 0 || (reloaded && geteuid() == p->uid && getegid() == p->gid))
		return 0;
	snprintf(err, errlen, "--user %s: acceptd runs as uid %u, not root; "
		 "it cannot change user", spec, (unsigned)geteuid());
	return -1;
}

/* reloaded: this image was executed by one that dropped already; it only
 * proves the drop again. */
int privs_drop(const struct privs *p, const char *spec, bool reloaded, char *err,
	       size_t errlen)
{
	uid_t r, e, su;
	gid_t rg, eg, sg;

	if (!p->wanted)
		return 0;
	if (privs_check(p, spec, reloaded, err, errlen) < 0)
		return -1;
	if (geteuid() != 0)
		goto verify;	/* reloaded, and that user already */
	if (set_groups(p) < 0) {
		snprintf(err, errlen, "--user %s: setting groups: %s", spec, strerror(errno));
		return -1;
	}
	if (setresgid(p->gid, p->gid, p->gid) < 0) {
		snprintf(err, errlen, "--user %s: setgid(%u): %s", spec, (unsigned)p->gid,
			 strerror(errno));
		return -1;
	}
	if (setresuid(p->uid, p->uid, p->uid) < 0) {
		snprintf(err, errlen, "--user %s: setuid(%u): %s", spec, (unsigned)p->uid,
			 strerror(errno));
		return -1;
	}
	if (clear_caps() < 0) {
		snprintf(err, errlen, "--user %s: clearing capabilities: %s", spec,
			 strerror(errno));
		return -1;
	}
verify:
	/* Prove it: the ids are what was asked, and root is out of reach. */
	if (getresuid(&r, &e, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    r != p->uid || e != p->uid || su != p->uid ||
	    rg != p->gid || eg != p->gid || sg != p->gid ||
	    (p->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))) {
		snprintf(err, errlen, "--user %s: the drop did not hold (root can be regained)",
			 spec);
		return -1;
	}
	/* The setuid made us non-dumpable, but an exec (every reload) makes
	 * us dumpable again, and then the handlers - the same uid - could
	 * ptrace the master or pidfd_getfd its listeners.  Every image. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "--user %s: PR_SET_DUMPABLE: %s", spec, strerror(errno));
		return -1;
	}
	log_notice("running as %s (uid %u, gid %u)", p->name[0] ? p->name : spec,
		   (unsigned)p->uid, (unsigned)p->gid);
	return 0;
}
