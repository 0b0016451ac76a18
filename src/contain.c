/*
 * contain.c - what every handler and worker starts with beyond its fds:
 * resource limits (--rlimit), a nice value (--nice) and a umask
 * (--umask), as xinetd's rlimit_* and nice and systemd's Limit*=,
 * Nice= and UMask= give them.  Never acceptd's own: they are set in the
 * child, between fork and exec.
 *
 * contain_parse is pure (options.c); contain_apply runs in a vfork
 * child, so it makes system calls only - no allocation, no locks, no
 * stdio; contain_check, once privileges are dropped, says now what the
 * kernel would refuse each child later (a hard limit above acceptd's own,
 * a nice value below it, without the capability to ask for them - root
 * in a container may lack it; nofile above fs.nr_open, even with it).
 */
#include "config.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

static const struct {
	const char *name;
	int resource;
	bool size;		/* takes K, M, G, T (powers of 1024) */
} limits[] = {
	{ "as", RLIMIT_AS, true }, { "cpu", RLIMIT_CPU, false },
	{ "data", RLIMIT_DATA, true }, { "fsize", RLIMIT_FSIZE, true },
	{ "nofile", RLIMIT_NOFILE, false }, { "nproc", RLIMIT_NPROC, false },
	{ "core", RLIMIT_CORE, true }, { "stack", RLIMIT_STACK, true },
	{ "memlock", RLIMIT_MEMLOCK, true },
};

const char *contain_rlimit_name(int resource)
{
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
		if (limits[i].resource == resource)
			return limits[i].name;
	return "?";
}

/* One value: digits (and a size suffix), or unlimited/infinity. */
static int one_value(const char *s, size_t n, bool size, unsigned long long *out)
{
	static const char suffix[] = "KMGT";
	unsigned long long v = 0, mult = 1;
	char digits[24];

	if ((n == 9 && strncmp(s, "unlimited", 9) == 0) || (n == 8 && strncmp(s, "infinity", 8) == 0)) {
		*out = (unsigned long long)RLIM_INFINITY;
		return 0;
	}
	if (n > 0 && size && strchr(suffix, s[n - 1])) {
		for (const char *p = suffix; *p != s[n - 1]; p++)
			mult *= 1024;
		mult *= 1024;
		n--;
	}
	if (n == 0 || n >= sizeof digits)
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (options_parse_uint(digits, ~0ULL / mult, &v) < 0 || v * mult == (unsigned long long)RLIM_INFINITY)
		return -1;
	*out = v * mult;
	return 0;
}

/* NAME=VALUE (soft and hard) or NAME=SOFT:HARD. */
int contain_parse_rlimit(const char *arg, struct rlimit_set *out, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '='), *v, *colon;
	size_t i;

	for (i = 0; eq && i < sizeof limits / sizeof limits[0]; i++)
		if (strlen(limits[i].name) == (size_t)(eq - arg) &&
		    strncmp(arg, limits[i].name, (size_t)(eq - arg)) == 0)
			break;
	if (!eq || i == sizeof limits / sizeof limits[0]) {
		snprintf(err, errlen, "--rlimit '%s': want NAME=VALUE or NAME=SOFT:HARD, NAME one "
			 "of as, cpu, data, fsize, nofile, nproc, core, stack, memlock", arg);
		return -1;
	}
	v = eq + 1;
	colon = strchr(v, ':');
	out->resource = limits[i].resource;
	if (one_value(v, colon ? (size_t)(colon - v) : strlen(v), limits[i].size, &out->soft) < 0 ||
	    one_value(colon ? colon + 1 : v, strlen(colon ? colon + 1 : v), limits[i].size,
		      &out->hard) < 0) {
		snprintf(err, errlen, "--rlimit '%s': a value is a number%s or unlimited", arg,
			 limits[i].size ? " (K, M, G or T after it: powers of 1024)" : "");
		return -1;
	}
	if (out->hard != (unsigned long long)RLIM_INFINITY &&
	    (out->soft == (unsigned long long)RLIM_INFINITY || out->soft > out->hard)) {
		snprintf(err, errlen, "--rlimit '%s': the soft limit is above the hard one", arg);
		return -1;
	}
	if (out->resource == RLIMIT_NOFILE && (out->soft == (unsigned long long)RLIM_INFINITY ||
					       out->hard == (unsigned long long)RLIM_INFINITY)) {
		snprintf(err, errlen, "--rlimit '%s': nofile cannot be unlimited (the kernel "
			 "caps it at fs.nr_open)", arg);
		return -1;
	}
	return 0;
}

/* In the child, before exec: system calls only (vfork).  0, or the errno
 * of the call that failed. */
int contain_apply(const struct options *o)
{
	for (unsigned i = 0; i < o->n_rlimits; i++) {
		struct rlimit rl = { (rlim_t)o->rlimits[i].soft, (rlim_t)o->rlimits[i].hard };

		if (setrlimit(o->rlimits[i].resource, &rl) < 0)
			return errno ? errno : EPERM;
	}
	if (o->nice_set && setpriority(PRIO_PROCESS, 0, o->nice) < 0)
		return errno ? errno : EPERM;
	if (o->umask >= 0)
		umask((mode_t)o->umask);
	return 0;
}

/* Whether this process may do what cap allows.  Not the same as uid 0:
 * root in a container often lacks CAP_SYS_RESOURCE and CAP_SYS_NICE
 * (Docker's default set has neither), and after -u none is left. */
static bool has_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof d);
	if (syscall(SYS_capget, &h, d) < 0)
		return geteuid() == 0;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

/* fs.nr_open: the most open files the kernel lets anyone ask for. */
static unsigned long long nr_open(void)
{
	unsigned long long n = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%llu", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

/* After privileges are dropped (and at a reload, as the new image will
 * be): what the children could not be given.  0, or -1 with err set. */
int contain_check(const struct options *o, char *err, size_t errlen)
{
	bool resource = has_cap(CAP_SYS_RESOURCE);

	for (unsigned i = 0; i < o->n_rlimits; i++) {
		struct rlimit now;
		const struct rlimit_set *r = &o->rlimits[i];
		unsigned long long max;

		if (r->resource == RLIMIT_NOFILE && (max = nr_open()) > 0 && r->hard > max) {
			snprintf(err, errlen, "--rlimit nofile: %llu is above fs.nr_open (%llu), "
				 "which the kernel refuses even to root", r->hard, max);
			return -1;
		}
		if (resource || getrlimit(r->resource, &now) < 0)
			continue;
		if (now.rlim_max != RLIM_INFINITY &&
		    (r->hard == (unsigned long long)RLIM_INFINITY || r->hard > now.rlim_max)) {
			snprintf(err, errlen, "--rlimit %s: a hard limit above acceptd's own (%llu), "
				 "which only root can raise (CAP_SYS_RESOURCE)",
				 contain_rlimit_name(r->resource), (unsigned long long)now.rlim_max);
			return -1;
		}
	}
	if (o->nice_set && !has_cap(CAP_SYS_NICE)) {
		struct rlimit rn = { 0, 0 };
		int now, floor = 20;

		/* Lowering it takes CAP_SYS_NICE, or RLIMIT_NICE's room. */
		errno = 0;
		now = getpriority(PRIO_PROCESS, 0);
		if (getrlimit(RLIMIT_NICE, &rn) == 0)
			floor = rn.rlim_cur == RLIM_INFINITY || rn.rlim_cur >= 40 ? -20 :
				20 - (int)rn.rlim_cur;
		if (errno == 0 && o->nice < now && o->nice < floor) {
			snprintf(err, errlen, "--nice %d: below acceptd's own nice value (%d), "
				 "which only root can ask for (CAP_SYS_NICE)", o->nice, now);
			return -1;
		}
	}
	return 0;
}
