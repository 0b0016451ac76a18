/*
 * table.c - a fixed-capacity hash table of fixed-size records.
 *
 * Every table is bounded by something fixed at start (--max-conns, or the
 * rate limiter's source count), so it is sized once and never grows or
 * allocates on the accept path.  Open addressing with linear probing;
 * removal shifts the following run back instead of leaving tombstones, so
 * lookups stay short however long the daemon runs; table_sweep drops
 * whatever a predicate calls expired.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

/* The hash slots hold only the key and the index of the record; the
 * records live in a dense array of cap / 2 (the most the table holds),
 * handed out lowest-first and reused last-freed-first.  The arrays are
 * calloc'd once at their full size, so untouched pages cost no memory:
 * what is resident follows the most records ever held at once, not the
 * capacity (with the records inside the slots, hashing spread them over
 * every page, and a table sized for -c 1000 was resident in full, 1.1 MB,
 * after a few thousand short connections). */
struct table {
	size_t cap;		/* power of two, at least twice the entries */
	size_t recsize;		/* caller's record, rounded up to 16 bytes */
	size_t used;
	size_t fresh;		/* records never handed out start here */
	size_t nfree;		/* freed records, on the stack below */
	struct slot_hdr *slots;
	unsigned char *recs;
	uint32_t *freelist;
};

struct slot_hdr {
	unsigned char inuse;
	unsigned char key[TABLE_KEY_MAX];
	uint32_t rec;
};

static struct slot_hdr *slot_at(const struct table *t, size_t i)
{
	return &t->slots[i];
}

static void *rec_at(const struct table *t, uint32_t r)
{
	return t->recs + (size_t)r * t->recsize;
}

/* SipHash-2-4 under a key drawn at start: the keys are client addresses,
 * and an IPv6 client picks 64 bits of its own.  With a public hash it
 * could pick addresses that all land in one run and turn every lookup
 * into a scan of the table; a keyed hash leaves it nothing to aim at. */
static uint64_t sip_k0, sip_k1;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND						\
	do {							\
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0;		\
		v0 = ROTL(v0, 32);				\
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;		\
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;		\
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2;		\
		v2 = ROTL(v2, 32);				\
	} while (0)

static uint64_t le64(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static size_t hash(const unsigned char *k)
{
	uint64_t v0 = sip_k0 ^ 0x736f6d6570736575ULL, v1 = sip_k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = sip_k0 ^ 0x6c7967656e657261ULL, v3 = sip_k1 ^ 0x7465646279746573ULL;
	size_t i;
	uint64_t m;

	for (i = 0; i + 8 <= TABLE_KEY_MAX; i += 8) {
		m = le64(k + i, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	m = le64(k + i, TABLE_KEY_MAX - i) | ((uint64_t)TABLE_KEY_MAX << 56);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (size_t)(v0 ^ v1 ^ v2 ^ v3);
}

static void hash_seed(void)
{
	unsigned char k[16];

	if (sip_k0 || sip_k1)
		return;
	/* getrandom() blocks only before the pool is initialised at boot;
	 * falling back to a time/pid mix there still beats a fixed key. */
	if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		memcpy(k, &ts, sizeof ts < sizeof k ? sizeof ts : sizeof k);
		k[0] ^= (unsigned char)getpid();
	}
	sip_k0 = le64(k, 8);
	sip_k1 = le64(k + 8, 8) | 1;
}

struct table *table_new(size_t entries, size_t recsize)
{
	struct table *t = calloc(1, sizeof *t);
	size_t cap = 16;

	if (!t)
		return NULL;
	hash_seed();
	while (cap < entries * 2)
		cap *= 2;
	t->cap = cap;
	t->recsize = (recsize + 15) & ~(size_t)15;	/* records 16-aligned */
	t->slots = calloc(cap, sizeof *t->slots);
	t->recs = calloc(cap / 2, t->recsize);
	t->freelist = calloc(cap / 2, sizeof *t->freelist);
	if (!t->slots || !t->recs || !t->freelist) {
		table_free(t);
		return NULL;
	}
	return t;
}

void table_free(struct table *t)
{
	if (t) {
		free(t->slots);
		free(t->recs);
		free(t->freelist);
	}
	free(t);
}

static size_t probe(const struct table *t, const unsigned char *key, bool *found)
{
	size_t i = hash(key) & (t->cap - 1);

	for (;; i = (i + 1) & (t->cap - 1)) {
		struct slot_hdr *s = slot_at(t, i);

		if (!s->inuse) {
			*found = false;
			return i;
		}
		if (memcmp(s->key, key, TABLE_KEY_MAX) == 0) {
			*found = true;
			return i;
		}
	}
}

void *table_get(struct table *t, const unsigned char *key)
{
	bool found;
	size_t i = probe(t, key, &found);

	return found ? rec_at(t, slot_at(t, i)->rec) : NULL;
}

/* Returns the record for key, creating a zeroed one if needed; NULL only
 * when the table is at half its capacity (the caller's bound was wrong). */
void *table_put(struct table *t, const unsigned char *key)
{
	bool found;
	size_t i = probe(t, key, &found);
	struct slot_hdr *s = slot_at(t, i);

	if (!found) {
		if (t->used * 2 >= t->cap)
			return NULL;
		s->inuse = 1;
		memcpy(s->key, key, TABLE_KEY_MAX);
		s->rec = t->nfree ? t->freelist[--t->nfree] : (uint32_t)t->fresh++;
		memset(rec_at(t, s->rec), 0, t->recsize);
		t->used++;
	}
	return rec_at(t, s->rec);
}

static void del_at(struct table *t, size_t hole)
{
	size_t mask = t->cap - 1;

	slot_at(t, hole)->inuse = 0;
	t->freelist[t->nfree++] = slot_at(t, hole)->rec;
	t->used--;
	/* Backward shift: move each later entry of the run into the hole
	 * unless its home slot lies cyclically after the hole. */
	for (size_t j = (hole + 1) & mask; slot_at(t, j)->inuse; j = (j + 1) & mask) {
		size_t home = hash(slot_at(t, j)->key) & mask;

		if (((j - home) & mask) >= ((j - hole) & mask)) {
			*slot_at(t, hole) = *slot_at(t, j);
			slot_at(t, j)->inuse = 0;
			hole = j;
		}
	}
}

void table_del(struct table *t, const unsigned char *key)
{
	bool found;
	size_t i = probe(t, key, &found);

	if (found)
		del_at(t, i);
}

/* Deletes every record for which expired() is true; returns how many.
 * A deletion may shift a later record into the slot just freed, so the
 * slot is looked at again before moving on; a record shifted from the
 * wrapped-around start is at worst looked at twice. */
size_t table_sweep(struct table *t, bool (*expired)(const void *rec))
{
	size_t n = 0;

	for (size_t i = 0; i < t->cap; i++)
		while (slot_at(t, i)->inuse && expired(rec_at(t, slot_at(t, i)->rec))) {
			del_at(t, i);
			n++;
		}
	return n;
}

size_t table_count(const struct table *t)
{
	return t->used;
}

/* Visits every record; fn must not insert or delete. */
void table_each(struct table *t, void (*fn)(void *rec, void *arg), void *arg)
{
	for (size_t i = 0; i < t->cap; i++)
		if (slot_at(t, i)->inuse)
			fn(rec_at(t, slot_at(t, i)->rec), arg);
}
