/*
 * source.c - who a connection comes from, as -C and --rate see it: its
 * address cut to --source-prefix (a client rotating through its /64 is
 * one source), or on a unix socket the local user it runs as.  One key,
 * and the two counts kept by it: the connections a source has open (-C,
 * and TCPCONNNUM) and its --rate bucket.
 *
 * The open counts are sized from --max-conns at start and never grow:
 * every open connection has one entry at most.
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

#include <string.h>

#include "core.h"

#define RATE_SOURCES_MAX 16384	/* buckets kept at once; see above */
#define SWEEP_EVERY_MS 1000	/* a full table is swept at most this often */
#define UNTRACKED_WARN_MS 60000	/* and said so at most this often */

struct source {
	unsigned open;
};

struct bucket {
	int64_t tat_us;		/* when this source's bucket will be full again */
};

/* The table key of p's source: family, then the address cut to the
 * --source-prefix, or the uid of a unix peer. */
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

int source_init(struct server *s)
{
	/* Inherited single connections may add to the -c bound. */
	size_t n = (size_t)s->opt->max_conns + (size_t)s->n_lst + 1;

	s->sources = table_new(n, sizeof(struct source));
	if (!s->sources)
		return -1;
	if (s->opt->rate_n == 0 && !rulesfile_has_rate(s->rules))
		return 0;
	s->rates = table_new(RATE_SOURCES_MAX, sizeof(struct bucket));
	return s->rates ? 0 : -1;
}

/* One more open connection from p's source; returns how many it has now
 * (0 only if the table is full, which -c makes impossible). */
unsigned source_acquire(struct server *s, const struct peer *p)
{
	unsigned char key[TABLE_KEY_MAX];
	struct source *src;

	source_key(s->opt, p, key);
	src = table_put(s->sources, key);
	return src ? ++src->open : 0;
}

void source_release(struct server *s, const struct peer *p)
{
	unsigned char key[TABLE_KEY_MAX];
	struct source *src;

	source_key(s->opt, p, key);
	src = table_get(s->sources, key);
	if (src && --src->open == 0)
		table_del(s->sources, key);
}

/* GCRA: a bucket of `burst` tokens refilled one per interval_us.  Takes
 * one token for a connection at now_us; false when none is left. */
bool source_gcra(int64_t *tat_us, int64_t now_us, int64_t interval_us, unsigned burst)
{
	int64_t tat = *tat_us > now_us ? *tat_us : now_us;

	if (tat - now_us > interval_us * (int64_t)(burst - 1))
		return false;
	*tat_us = tat + interval_us;
	return true;
}

static int64_t sweep_now_us;

static bool bucket_full(const void *rec)
{
	return ((const struct bucket *)rec)->tat_us <= sweep_now_us;
}

/* p's source's bucket, made if need be; NULL when the table is full
 * even after a sweep of the buckets that are full again. */
static struct bucket *bucket_of(struct server *s, const struct peer *p, int64_t now)
{
	static int64_t last_sweep_ms;
	unsigned char key[TABLE_KEY_MAX];
	struct bucket *b;

	if (!s->rates && !(s->rates = table_new(RATE_SOURCES_MAX, sizeof(struct bucket))))
		return NULL;
	source_key(s->opt, p, key);
	b = table_get(s->rates, key);
	if (b)
		return b;
	if (table_count(s->rates) >= RATE_SOURCES_MAX &&
	    now / 1000 - last_sweep_ms >= SWEEP_EVERY_MS) {
		last_sweep_ms = now / 1000;
		sweep_now_us = now;
		table_sweep(s->rates, bucket_full);
	}
	return table_put(s->rates, key);
}

/* May p's source have one more now, at n per secs?  1 yes, 0 no, -1 no
 * room to count it (RATE_SOURCES_MAX sources within one period). */
int source_rate(struct server *s, const struct peer *p, unsigned n, unsigned secs)
{
	int64_t now = mono_us();
	int64_t interval = (int64_t)secs * 1000000 / n;
	struct bucket *b = bucket_of(s, p, now);

	if (!b)
		return -1;
	return source_gcra(&b->tat_us, now, interval ? interval : 1, n) ? 1 : 0;
}

/* May p's source open one more connection now, at n per secs (--rate,
 * or the client's rule's)?  A connection the table has no room for
 * passes, counted in a warning: refusing every new source during a
 * flood would be the attacker's win. */
bool source_rate_ok(struct server *s, const struct peer *p, unsigned n, unsigned secs)
{
	static unsigned long long untracked;
	static int64_t warned_ms;
	int r = source_rate(s, p, n, secs);
	int64_t now = mono_ms();

	if (r >= 0)
		return r == 1;
	/* One line a minute: the state lasts as long as the flood. */
	untracked++;
	if (now - warned_ms >= UNTRACKED_WARN_MS || !warned_ms) {
		warned_ms = now;
		log_warn("--rate: more than %d sources within one period; %llu "
			 "connection(s) from new sources passed unchecked",
			 RATE_SOURCES_MAX, untracked);
		untracked = 0;
	}
	return true;
}
