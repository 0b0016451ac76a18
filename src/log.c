/*
 * log.c - one line per event, to wherever acceptd's stderr really goes.
 *
 * Three sinks, chosen once at start:
 *   - the journal (JOURNAL_STREAM names our fd 2): "<N>text", sd-daemon style;
 *   - syslog, when fd 2 is some other socket: under inetd fds 0-2 are the
 *     client's connection, and a log line there would corrupt its stream;
 *   - plain stderr otherwise: "acceptd: text".
 * Each line leaves in one write() so lines from concurrent writers do not
 * interleave.  Bytes from the network must pass through log_escape first.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "core.h"

enum sink { SINK_STDERR, SINK_JOURNAL, SINK_SYSLOG };

static enum sink sink = SINK_STDERR;
static enum log_level threshold = LOG_LVL_NOTICE;

static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char extra;

	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static bool stderr_is_socket(void)
{
	struct stat st;

	return fstat(STDERR_FILENO, &st) == 0 && S_ISSOCK(st.st_mode);
}

void log_init(int verbosity)
{
	threshold = verbosity < 0 ? LOG_LVL_WARN :
		    verbosity > 0 ? LOG_LVL_INFO : LOG_LVL_NOTICE;
	if (stderr_is_journal()) {
		sink = SINK_JOURNAL;
	} else if (stderr_is_socket()) {
		sink = SINK_SYSLOG;
		/* glibc opens the /dev/log socket with SOCK_CLOEXEC. */
		openlog(PACKAGE_NAME, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	} else {
		sink = SINK_STDERR;
	}
}

/* For callers that would format an argument only to have it dropped. */
bool log_enabled(enum log_level lvl)
{
	return lvl <= threshold;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char line[1024];
	int saved = errno, n = 0;
	va_list ap;

	if (lvl > threshold)
		return;
	if (sink == SINK_JOURNAL)
		n = snprintf(line, sizeof line, "<%d>", (int)lvl);
	else if (sink == SINK_STDERR)
		n = snprintf(line, sizeof line, "%s: %s", PACKAGE_NAME,
			     lvl == LOG_LVL_WARN ? "warning: " : "");
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	if (sink == SINK_SYSLOG) {
		syslog((int)lvl, "%s", line);
	} else {
		line[n++] = '\n';
		/* A lost log line must never take the daemon down with it. */
		if (write(STDERR_FILENO, line, (size_t)n) < 0)
			(void)0;
	}
	errno = saved;
}

/* Printable ASCII stays; everything else, and the backslash itself, becomes
 * \xHH, so a log line can neither be split nor carry terminal escapes.
 * Always NUL-terminates; returns the length written. */
size_t log_escape(char *dst, size_t dstlen, const void *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0;

	if (dstlen == 0)
		return 0;
	for (size_t i = 0; i < srclen; i++) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return o;
}

/* A flood of refusals must not become a flood of lines: LOG_BURST lines a
 * second per limiter, then one line saying how many were left out - from
 * the next line's call, or from log_limits_flush when the flood has
 * stopped, so the count is never lost. */
#define LOG_BURST 5

static struct log_limit *limiters;	/* every limiter used so far */

static void report_dropped(struct log_limit *l, int64_t now)
{
	if (l->dropped)
		log_notice("%llu more %s not logged in the last %.1f s", l->dropped,
			   l->what, (double)(now - l->window_ms) / 1000.0);
	l->window_ms = now;
	l->n = 0;
	l->dropped = 0;
}

bool log_limited(struct log_limit *l)
{
	int64_t now = mono_ms();

	if (!l->listed) {
		l->listed = true;
		l->next = limiters;
		limiters = l;
	}
	if (now - l->window_ms >= 1000)
		report_dropped(l, now);
	if (l->n < LOG_BURST) {
		l->n++;
		return true;
	}
	l->dropped++;
	return false;
}

/* Reports what a finished window left out (all of it when final).
 * Returns when the next report is due, or -1 if none is pending. */
int64_t log_limits_flush(bool final)
{
	int64_t now = mono_ms(), next = -1;

	for (struct log_limit *l = limiters; l; l = l->next) {
		if (!l->dropped)
			continue;
		if (final || now - l->window_ms >= 1000)
			report_dropped(l, now);
		else if (next < 0 || l->window_ms + 1000 < next)
			next = l->window_ms + 1000;
	}
	return next;
}
