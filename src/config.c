/*
 * config.c - --config FILE: the file's lines applied as long options.
 *
 * The file is read whole, once, and kept: option values point into it, as
 * they point into argv for the command line.  Each line is cut by
 * confline_parse and its KEY applied as --KEY would be, through the same
 * checks, so a value means the same in both places.  What the command line
 * already gave is skipped: it replaces the file's values - all of them for
 * a repeatable option, so an ACL is never half from each.  A key the file
 * gives twice that cannot repeat is an error, not "last one wins": in a
 * file that is a mistake (a stale line left above an edited one), and
 * saying so with both line numbers costs nothing.
 *
 * SIGHUP re-reads the file through the same path (reload.c validates the
 * new image's options before it executes).
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

#define CONFIG_MAX_BYTES (1 << 20)	/* far beyond any real one: a wrong path */
#define EXEC_MAX_WORDS 256

/* The whole file, NUL-terminated; NULL with err set. */
static char *slurp(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	/* O_NONBLOCK: a FIFO would block open() (at a reload, the whole
	 * daemon) until a writer came; it is refused below as not regular.
	 * For a regular file the flag changes nothing. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "--config '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--config '%s': not a regular file", path);
		goto fail;
	}
	if (st.st_size > CONFIG_MAX_BYTES) {
		snprintf(err, errlen, "--config '%s': larger than %d bytes", path,
			 CONFIG_MAX_BYTES);
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "--config '%s': out of memory", path);
		goto fail;
	}
	/* Read to the end, not to st_size: the file may change meanwhile. */
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "--config '%s': %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0 || (len += (size_t)n) == (size_t)st.st_size)
			break;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		snprintf(err, errlen, "--config '%s': contains a NUL byte (not a text file?)",
			 path);
		goto fail;
	}
	close(fd);
	return buf;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* "FILE:LINE: " before why, and the option's name as the file spells it
 * (the messages from options.c say --max-conns; the file says max-conns). */
static enum opt_result line_err(const char *path, unsigned line, const char *why,
				char *err, size_t errlen)
{
	if (strncmp(why, "--", 2) == 0)
		why += 2;
	snprintf(err, errlen, "%s:%u: %s", path, line, why);
	return OPT_USAGE;
}

/* Splits the exec words; they become PROGRAM unless the command line
 * named one (checked all the same: a broken line is found now, not the
 * day the command line changes). */
static enum opt_result set_exec(struct options *o, char *value, bool use, const char *path,
				unsigned line, char *err, size_t errlen)
{
	char why[160];
	char **argv = malloc(EXEC_MAX_WORDS * sizeof *argv);
	int n;

	if (!argv)
		return line_err(path, line, "out of memory", err, errlen);
	n = confline_split_words(value, argv, EXEC_MAX_WORDS, why, sizeof why);
	if (n <= 0) {
		free(argv);
		char msg[200];

		snprintf(msg, sizeof msg, "exec: %s", n == 0 ? "no program named" : why);
		return line_err(path, line, msg, err, errlen);
	}
	if (!use) {
		free(argv);
		return OPT_OK;
	}
	o->conf_argv = argv;
	o->program = argv;
	return OPT_OK;
}

/* One KEY = VALUE line.  first/first_key: by key group, the line and key
 * that set it.  Returns OPT_OK or OPT_USAGE with why set. */
static enum opt_result one_line(struct options *o, struct options *scratch,
				const struct conf_pair *kv, unsigned line, unsigned *first,
				const char **first_key, char *why, size_t whylen)
{
	int key = options_key(kv->key), group;

	if (key < 0) {
		snprintf(why, whylen, "unknown key '%.100s' (keys are the long options "
			 "and exec; see acceptd.conf(5))", kv->key);
		return OPT_USAGE;
	}
	if (!options_key_settable(key)) {
		snprintf(why, whylen, "'%s' cannot be set in a config file", kv->key);
		return OPT_USAGE;
	}
	group = options_key_group(key);
	/* Repeating a list (allow, deny) is no mistake; anything else
	 * twice in a group is, in either order (rules, then allow). */
	if (first[group] && (!options_key_repeatable(key) ||
			     !options_key_repeatable(options_key(first_key[group])))) {
		if (strcmp(first_key[group], kv->key) == 0)
			snprintf(why, whylen, "%s: given twice (first on line %u)", kv->key,
				 first[group]);
		else
			snprintf(why, whylen, "%s: excludes %s (line %u)", kv->key,
				 first_key[group], first[group]);
		return OPT_USAGE;
	}
	if (!first[group]) {
		first[group] = line;
		first_key[group] = kv->key;
	}
	/* Replaced by the command line: checked all the same, not used. */
	return options_key_apply(options_key_on_cmdline(o, key) ? scratch : o, key, kv->key,
				 kv->value, why, whylen);
}

enum opt_result config_load(struct options *o, const char *path, char *err, size_t errlen)
{
	unsigned first[OPTIONS_MAX_KEYS] = { 0 }, exec_line = 0, line = 0;
	const char *first_key[OPTIONS_MAX_KEYS] = { NULL };
	char *text = slurp(path, err, errlen), *next;
	char why[400];
	struct options scratch;
	enum opt_result r = OPT_OK;
	int builtin = options_key("builtin");

	if (!text)
		return OPT_USAGE;
	o->conf_text = text;
	options_defaults(&scratch);
	for (char *cur = text; cur && r == OPT_OK; cur = next) {
		struct conf_pair kv;
		int kind;

		next = strchr(cur, '\n');
		if (next)
			*next++ = '\0';
		line++;
		kind = confline_parse(cur, &kv, why, sizeof why);
		if (kind == CONF_SKIP)
			continue;
		if (kind == CONF_ERROR) {
			r = line_err(path, line, why, err, errlen);
		} else if (strcmp(kv.key, "exec") != 0) {
			if (one_line(o, &scratch, &kv, line, first, first_key, why, sizeof why))
				r = line_err(path, line, why, err, errlen);
		} else if (exec_line) {
			snprintf(why, sizeof why, "exec: given twice (first on line %u)", exec_line);
			r = line_err(path, line, why, err, errlen);
		} else {
			exec_line = line;
			r = set_exec(o, kv.value, !options_handler_on_cmdline(o), path, line,
				     err, errlen);
		}
	}
	options_free(&scratch);
	/* Caught here rather than later, where neither line is known. */
	if (r == OPT_OK && exec_line && first[builtin] && !options_handler_on_cmdline(o)) {
		snprintf(why, sizeof why, "exec and builtin (line %u) exclude each other",
			 first[builtin]);
		r = line_err(path, exec_line, why, err, errlen);
	}
	return r;
}

/* After --user the file is read again, on SIGHUP, as that user (the new
 * image never is root): one only root may read would fail every reload.
 * Said at start, so it is found before the first reload needs it. */
void config_check_after_drop(const struct options *o)
{
	if (o->config && o->user && access(o->config, R_OK) < 0)
		log_warn("--config %s: not readable as --user %s (%s): a reload would fail",
			 o->config, o->user, strerror(errno));
}
