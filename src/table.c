/*
 * table.c - a fixed-capacity hash table of fixed-size records.
 *
 * Both per-connection tables (children by pid, open connections by source
 * address) are bounded by --max-conns, so the table is sized once at start
 * and never grows or allocates on the accept path.  Open addressing with
 * linear probing; removal shifts the following run back instead of leaving
 * tombstones, so lookups stay short however long the daemon runs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "core.h"

struct table {
	size_t cap;		/* power of two, at least twice the entries */
	size_t recsize;		/* caller's record, after the slot header */
	size_t slotsize;
	size_t used;
	unsigned char *slots;
};

struct slot_hdr {
	unsigned char inuse;
	unsigned char key[TABLE_KEY_MAX];
};

/* Records start 16-aligned, whatever the caller stores in them. */
#define HDR_SIZE ((sizeof(struct slot_hdr) + 15) & ~(size_t)15)

static struct slot_hdr *slot_at(const struct table *t, size_t i)
{
	return (struct slot_hdr *)(void *)(t->slots + i * t->slotsize);
}

static size_t hash(const unsigned char *k)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (size_t i = 0; i < TABLE_KEY_MAX; i++)
		h = (h ^ k[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 29));
}

struct table *table_new(size_t entries, size_t recsize)
{
	struct table *t = calloc(1, sizeof *t);
	size_t cap = 16;

	if (!t)
		return NULL;
	while (cap < entries * 2)
		cap *= 2;
	t->cap = cap;
	t->recsize = recsize;
	t->slotsize = (HDR_SIZE + recsize + 15) & ~(size_t)15;
	t->slots = calloc(cap, t->slotsize);
	if (!t->slots) {
		free(t);
		return NULL;
	}
	return t;
}

void table_free(struct table *t)
{
	if (t)
		free(t->slots);
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

	return found ? (unsigned char *)slot_at(t, i) + HDR_SIZE : NULL;
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
		memset((unsigned char *)s + HDR_SIZE, 0, t->recsize);
		t->used++;
	}
	return (unsigned char *)s + HDR_SIZE;
}

void table_del(struct table *t, const unsigned char *key)
{
	bool found;
	size_t hole = probe(t, key, &found), mask = t->cap - 1;

	if (!found)
		return;
	slot_at(t, hole)->inuse = 0;
	t->used--;
	/* Backward shift: move each later entry of the run into the hole
	 * unless its home slot lies cyclically after the hole. */
	for (size_t j = (hole + 1) & mask; slot_at(t, j)->inuse; j = (j + 1) & mask) {
		size_t home = hash(slot_at(t, j)->key) & mask;

		if (((j - home) & mask) >= ((j - hole) & mask)) {
			memcpy(slot_at(t, hole), slot_at(t, j), t->slotsize);
			slot_at(t, j)->inuse = 0;
			hole = j;
		}
	}
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
			fn((unsigned char *)slot_at(t, i) + HDR_SIZE, arg);
}
