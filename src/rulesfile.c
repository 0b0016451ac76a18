/*
 * rulesfile.c - the --rules file as the daemon uses it: read at start
 * (before privileges are dropped, so a root-only file works) and by the
 * reload check, compiled by rules.c, then checked against how this
 * acceptd serves: what a rule asks must be something it can do for every
 * connection the rule matches, or the file is refused now - never a
 * surprise per connection.
 *
 * The rules are never re-read in place: a SIGHUP re-executes acceptd
 * (reload.c), whose new image loads the file like any start, and
 * reload.c's check loads it first - so a broken file leaves the old image
 * serving with the old rules, and says FILE:LINE.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "wire.h"

#define RULES_FILE_MAX (256u << 20)	/* 2,000,000 networks fit with room */

/* The whole file, NUL-terminated; NULL with err set. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "--rules %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--rules %s: not a regular file", path);
		goto fail;
	}
	if ((unsigned long long)st.st_size > RULES_FILE_MAX) {
		snprintf(err, errlen, "--rules %s: larger than %u MiB", path, RULES_FILE_MAX >> 20);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "--rules %s: out of memory", path);
		goto fail;
	}
	/* Read to the end, not to st_size: the file may grow while we read
	 * (an editor), and a short file is then still read whole. */
	for (;;) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "--rules %s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0 || got + (size_t)n == (size_t)st.st_size) {
			got += (size_t)n;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
fail:
	free(buf);
	close(fd);
	return NULL;
}

/* What one rule's variables take in a worker's CONN message, encoded
 * the worst way (every byte as %XX). */
static size_t wire_cost(const struct rule *r)
{
	size_t n = 0;

	for (unsigned i = 0; i < r->n_vars; i++)
		n += 8 + 3 * (strlen(r->vars[i].name) + 1 +
			      (r->vars[i].value ? strlen(r->vars[i].value) : 0));
	return n;
}

/* Can this acceptd do what rule r asks?  "" when it can. */
static const char *unfit(const struct options *o, const struct rule *r)
{
	static char why[160];

	if (r->argv && !o->program)
		return "exec: this acceptd serves a built-in, not a PROGRAM per connection";
	if (r->argv && o->fd_passing)
		return "exec: with --fd-passing, PROGRAM runs as persistent workers, "
		       "not once per connection";
	if (r->argv && access(r->argv[0], X_OK) < 0) {
		snprintf(why, sizeof why, "exec: %.80s: %s", r->argv[0], strerror(errno));
		return why;
	}
	if (o->fd_passing && wire_cost(r) > RULES_WIRE_ENV_MAX)
		return "its variables do not fit in a worker's connection message "
		       "(acceptd-workers(7): at most 2048 bytes, encoded)";
	return "";
}

struct rules *rulesfile_load(const struct options *o, char *err, size_t errlen)
{
	char why[256];
	size_t len;
	char *text = slurp(o->rules, &len, err, errlen);
	struct rules *r;

	if (!text)
		return NULL;
	r = rules_parse(text, len, why, sizeof why);
	free(text);
	if (!r) {
		snprintf(err, errlen, "--rules %s:%s", o->rules, why);
		return NULL;
	}
	for (size_t i = 0; i < rules_count(r); i++) {
		const struct rule *ru = rules_at(r, i);
		const char *bad = unfit(o, ru);

		if (*bad) {
			snprintf(err, errlen, "--rules %s:%u: %s", o->rules, ru->line, bad);
			rules_free(r);
			return NULL;
		}
	}
	return r;
}

/* Does any rule set its own --rate (source.c needs its table then)? */
bool rulesfile_has_rate(const struct rules *r)
{
	for (size_t i = 0; r && i < rules_count(r); i++)
		if (rules_at(r, i)->rate_n)
			return true;
	return false;
}

/* After -u: the new image of a reload reads the file as that user. */
void rulesfile_check_after_drop(const struct options *o)
{
	if (o->rules && o->user && access(o->rules, R_OK) < 0)
		log_warn("--rules %s: not readable as --user %s (%s): a reload would fail",
			 o->rules, o->user, strerror(errno));
}
