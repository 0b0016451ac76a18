/*
 * notify.c - what the service manager hears: READY=1, STATUS= with the
 * live counters, WATCHDOG=1, STOPPING=1 (sent where they happen, in
 * server.c), and the fd store (listen.c).
 *
 * STATUS follows the counters but at most once a second: under load they
 * change on every connection, and a datagram each time would cost more
 * than the connection.  A change is never lost, only delayed: the loop
 * wakes for the next allowed moment.  WATCHDOG=1 goes at half the
 * interval the manager asked for, from the same loop, so a wedged loop is
 * what the watchdog catches.  Without NOTIFY_SOCKET none of this runs.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "core.h"

#define STATUS_EVERY_MS 1000

struct counts {
	unsigned active, workers;
	unsigned long long total, refused, failed, timeouts, cgkills;
};

static bool enabled;
static int64_t watchdog_ms, watchdog_next_ms;
static struct counts sent;
static bool sent_once;
static int64_t status_sent_ms;

void notify_init(void)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	long long usec;

	enabled = ns && *ns;
	if (!enabled)
		return;
	usec = sdg_watchdog_usec();
	if (usec > 0) {
		watchdog_ms = usec / 2000 > 0 ? usec / 2000 : 1;
		watchdog_next_ms = mono_ms();
	}
}

static void current(const struct server *s, struct counts *c)
{
	c->active = s->active;
	c->workers = poolsup_alive(s);
	c->total = s->total;
	c->refused = s->refused;
	c->failed = s->failed;
	c->timeouts = s->timeouts;
	c->cgkills = s->cgkills;
}

static void send_status(const struct counts *c, int64_t now)
{
	char msg[256];
	int n;

	n = snprintf(msg, sizeof msg, "STATUS=active %u, total %llu, refused %llu, failed %llu, "
		     "workers %u", c->active, c->total, c->refused, c->failed, c->workers);
	/* What containment did, once it did something. */
	if (c->timeouts || c->cgkills)
		snprintf(msg + n, sizeof msg - (size_t)n, ", timeouts %llu, cgroup kills %llu",
			 c->timeouts, c->cgkills);
	sdg_notify(msg);
	sent = *c;
	sent_once = true;
	status_sent_ms = now;
}

/* Sends what is due; returns when the next message may be due, -1 for
 * never (nothing pending and no watchdog). */
int64_t notify_tick(const struct server *s)
{
	int64_t now, next = -1;
	struct counts c;

	if (!enabled)
		return -1;
	now = mono_ms();
	if (watchdog_ms) {
		if (now >= watchdog_next_ms) {
			sdg_notify("WATCHDOG=1");
			watchdog_next_ms = now + watchdog_ms;
		}
		next = watchdog_next_ms;
	}
	current(s, &c);
	if (!sent_once || c.active != sent.active || c.workers != sent.workers ||
	    c.total != sent.total || c.refused != sent.refused || c.failed != sent.failed ||
	    c.timeouts != sent.timeouts || c.cgkills != sent.cgkills) {
		if (now - status_sent_ms >= STATUS_EVERY_MS || !sent_once)
			send_status(&c, now);
		else if (next < 0 || status_sent_ms + STATUS_EVERY_MS < next)
			next = status_sent_ms + STATUS_EVERY_MS;
	}
	return next;
}
