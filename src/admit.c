/*
 * admit.c - whether a connection may reach a handler: the ACL, the
 * per-source rate and the per-source connection cap, in that order.
 *
 * The order is the cheapest and most final first: a denied address never
 * costs a rate token, and a connection over the rate never counts as open.
 * Every refusal closes the connection at once and is logged, but through a
 * limiter per reason, so a flood costs a few lines a second, not a disk.
 *
 * The rate limit is GCRA (a token bucket kept as one timestamp per source:
 * the "theoretical arrival time").  A source whose time has passed has a
 * full bucket, which is the same as no entry at all, so entries expire by
 * being swept when the table is full.  The table never grows: a flood from
 * more sources than it holds within one rate period makes the newcomers
 * pass untracked (logged) rather than refused - an address flood is not
 * something a per-source limit can stop, and failing closed would let it
 * lock out every legitimate client.  Nothing here ever disables the
 * service for longer than one source's own bucket takes to refill.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define RATE_SOURCES_MAX 16384	/* buckets kept at once; see above */
#define SWEEP_EVERY_MS 1000	/* a full table is swept at most this often */
#define UNTRACKED_WARN_MS 60000	/* and said so at most this often */

struct bucket {
	int64_t tat_us;		/* when this source's bucket will be full again */
};

/* The index of the first rule that matches p, or -1 (allowed). */
int acl_first_match(const struct acl_rule *rules, unsigned n, const struct peer *p)
{
	for (unsigned i = 0; i < n; i++)
		if (cidr_match(&rules[i].net, p))
			return (int)i;
	return -1;
}

/* GCRA: a bucket of `burst` tokens refilled one per interval_us.  Takes
 * one token for a connection at now_us; false when none is left. */
bool rate_take(int64_t *tat_us, int64_t now_us, int64_t interval_us, unsigned burst)
{
	int64_t tat = *tat_us > now_us ? *tat_us : now_us;

	if (tat - now_us > interval_us * (int64_t)(burst - 1))
		return false;
	*tat_us = tat + interval_us;
	return true;
}

/* The table key of p's source: family, then the address cut to the
 * --source-prefix (so a client rotating through its /64 is one source). */
void source_key(const struct options *o, const struct peer *p,
		unsigned char key[TABLE_KEY_MAX])
{
	unsigned bits = p->family == AF_INET ? o->prefix4 : o->prefix6;
	unsigned n = p->family == AF_INET ? 4 : 16;

	memset(key, 0, TABLE_KEY_MAX);
	key[0] = (unsigned char)p->family;
	if (p->family == AF_UNIX) {
		memcpy(key + 1, p->raw, 4);	/* the uid */
		return;
	}
	if (p->family != AF_INET && p->family != AF_INET6)
		return;
	for (unsigned i = 0; i < n && bits > 0; i++, bits = bits > 8 ? bits - 8 : 0)
		key[1 + i] = bits >= 8 ? p->raw[i] : (uint8_t)(p->raw[i] & (0xff00 >> bits));
}

int admit_init(struct server *s)
{
	if (s->opt->rate_n == 0)
		return 0;
	s->rates = table_new(RATE_SOURCES_MAX, sizeof(struct bucket));
	return s->rates ? 0 : -1;
}

static int64_t sweep_now_us;

static bool bucket_full(const void *rec)
{
	return ((const struct bucket *)rec)->tat_us <= sweep_now_us;
}

static bool rate_ok(struct server *s, const struct peer *p)
{
	static unsigned long long untracked;
	static int64_t last_sweep_ms, warned_ms;
	unsigned char key[TABLE_KEY_MAX];
	int64_t now = mono_us();
	int64_t interval = (int64_t)s->opt->rate_secs * 1000000 / s->opt->rate_n;
	struct bucket *b;

	source_key(s->opt, p, key);
	b = table_get(s->rates, key);
	if (!b) {
		if (table_count(s->rates) >= RATE_SOURCES_MAX &&
		    now / 1000 - last_sweep_ms >= SWEEP_EVERY_MS) {
			last_sweep_ms = now / 1000;
			sweep_now_us = now;
			table_sweep(s->rates, bucket_full);
		}
		b = table_put(s->rates, key);
		if (!b) {
			/* One line a minute: the state lasts as long as the flood. */
			untracked++;
			if (now / 1000 - warned_ms >= UNTRACKED_WARN_MS || !warned_ms) {
				warned_ms = now / 1000;
				log_warn("--rate: more than %d sources within one period; %llu "
					 "connection(s) from new sources passed unchecked",
					 RATE_SOURCES_MAX, untracked);
				untracked = 0;
			}
			return true;
		}
	}
	return rate_take(&b->tat_us, now, interval ? interval : 1, s->opt->rate_n);
}

static void refuse(struct server *s, struct conn_info *c, struct log_limit *lim,
		   const char *why)
{
	char who[ADDR_STRLEN];

	s->refused++;
	if (log_limited(lim)) {
		peer_format(&c->remote, who, sizeof who);
		log_notice("%s: %s; closed", who, why);
	}
	close(c->fd);
	c->fd = -1;
}

/* Decides for a described connection.  Admitted: true, the connection
 * counts against its source (c->connnum set).  Refused: false, the
 * connection is closed, counted and logged. */
bool admit(struct server *s, struct conn_info *c)
{
	static struct log_limit denied = { .what = "denied connections" };
	static struct log_limit rated = { .what = "connections over --rate" };
	static struct log_limit capped = { .what = "connections over --max-per-ip" };
	const struct options *o = s->opt;
	char why[96];

	if (o->n_acl) {
		int i = acl_first_match(o->acl, o->n_acl, &c->remote);

		if (i >= 0 && !o->acl[i].allow) {
			char rule[64];

			cidr_format(&o->acl[i].net, rule, sizeof rule);
			snprintf(why, sizeof why, "denied by --deny %s", rule);
			refuse(s, c, &denied, why);
			return false;
		}
	}
	if (o->rate_n && !rate_ok(s, &c->remote)) {
		snprintf(why, sizeof why, "over --rate %u/%u", o->rate_n, o->rate_secs);
		refuse(s, c, &rated, why);
		return false;
	}
	c->connnum = conns_source_acquire(s, &c->remote);
	if (o->max_per_ip && c->connnum > o->max_per_ip) {
		conns_source_release(s, &c->remote);
		snprintf(why, sizeof why, "source already holds --max-per-ip %u", o->max_per_ip);
		refuse(s, c, &capped, why);
		return false;
	}
	return true;
}
