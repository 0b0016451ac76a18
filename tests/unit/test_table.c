/* test_table.c - unit tests of src/table.c: put/get/del over tables of
 * several sizes filled to the number of entries they were made for,
 * deleting every other key so that backward-shift deletion has runs to
 * repair; the capacity limit (table_put gives NULL at half the slots); a
 * long random churn checked against a plain array; table_each visiting
 * each live record exactly once; records aligned for any type. */
#include "config.h"

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core.h"
#include "suites.h"

/* Key number i, written into buf (TABLE_KEY_MAX bytes), which it returns. */
static unsigned char *key_of(unsigned i, unsigned char *buf)
{
	memset(buf, 0, TABLE_KEY_MAX);
	memcpy(buf, &i, sizeof i);
	buf[TABLE_KEY_MAX - 1] = (unsigned char)(i * 31u);	/* the end counts too */
	return buf;
}

static uint32_t rec_u32(const void *rec)
{
	uint32_t v;

	memcpy(&v, rec, sizeof v);
	return v;
}

static uint32_t value_of(unsigned i)
{
	return i * 2654435761u + 1;
}

/* A record: value_of(i) then, to its end, the byte i & 0xff; so records
 * that overlap or move without their key show up. */
static void fill(void *rec, size_t recsize, unsigned i)
{
	uint32_t v = value_of(i);

	memset(rec, (int)(i & 0xff), recsize);
	memcpy(rec, &v, sizeof v);
}

static void check_rec(const void *rec, size_t recsize, unsigned i)
{
	const unsigned char *b = rec;

	ck_assert_msg(rec != NULL, "key %u missing", i);
	ck_assert_msg(rec_u32(rec) == value_of(i), "key %u: wrong value", i);
	for (size_t k = sizeof(uint32_t); k < recsize; k++)
		ck_assert_msg(b[k] == (i & 0xff), "key %u: record byte %zu", i, k);
}

static const struct {
	size_t entries, recsize;
} sizes[] = {
	{ 1, sizeof(uint32_t) }, { 8, sizeof(uint32_t) }, { 100, sizeof(int) },
	{ 100, 37 }, { 1000, sizeof(uint32_t) }, { 64, 200 },
};

START_TEST(test_table_put_get_del)
{
	size_t entries = sizes[_i].entries, recsize = sizes[_i].recsize;
	struct table *t = table_new(entries, recsize);
	unsigned char key[TABLE_KEY_MAX];
	unsigned n = (unsigned)entries;

	ck_assert_ptr_nonnull(t);
	for (unsigned i = 0; i < n; i++) {
		key_of(i, key);
		ck_assert_ptr_null(table_get(t, key));
		fill(table_put(t, key), recsize, i);
	}
	ck_assert_uint_eq(table_count(t), entries);
	for (unsigned i = 0; i < n; i++) {
		key_of(i, key);
		check_rec(table_get(t, key), recsize, i);
		ck_assert_ptr_eq(table_put(t, key), table_get(t, key));	/* no duplicate */
	}
	ck_assert_uint_eq(table_count(t), entries);
	for (unsigned i = 1; i < n; i += 2) {
		key_of(i, key);
		table_del(t, key);
	}
	ck_assert_uint_eq(table_count(t), entries - entries / 2);
	for (unsigned i = 0; i < n; i++) {
		key_of(i, key);
		if (i % 2)
			ck_assert_msg(table_get(t, key) == NULL, "key %u survived", i);
		else
			check_rec(table_get(t, key), recsize, i);
		table_del(t, key);	/* a second del is a no-op */
		table_del(t, key);
	}
	ck_assert_uint_eq(table_count(t), 0);
	key_of(n + 1, key);
	table_del(t, key);	/* never there */
	ck_assert_uint_eq(table_count(t), 0);
	table_free(t);
}
END_TEST

/* A record comes back zeroed after a delete and a new put. */
START_TEST(test_table_reput_zeroed)
{
	struct table *t = table_new(4, 16);
	unsigned char key[TABLE_KEY_MAX], zero[16] = { 0 };
	unsigned char *rec;

	key_of(7, key);
	rec = table_put(t, key);
	ck_assert_mem_eq(rec, zero, sizeof zero);
	memset(rec, 0x5a, 16);
	table_del(t, key);
	ck_assert_mem_eq(table_put(t, key), zero, sizeof zero);
	table_free(t);
}
END_TEST

/* table_new(entries) has a power-of-two capacity of at least 16 and at
 * least 2 * entries; a put of a new key fails once half of it is used. */
static const size_t cap_entries[] = { 0, 1, 8, 9, 100, 128, 129 };

START_TEST(test_table_capacity)
{
	size_t entries = cap_entries[_i], cap = 16;
	struct table *t = table_new(entries, sizeof(uint32_t));
	unsigned char key[TABLE_KEY_MAX];
	unsigned i;

	while (cap < 2 * entries)
		cap *= 2;
	for (i = 0; table_put(t, key_of(i, key)) != NULL; i++)
		ck_assert_uint_le(i, cap);
	ck_assert_uint_eq(i, cap / 2);
	ck_assert_uint_ge(i, entries);
	ck_assert_uint_eq(table_count(t), cap / 2);
	key_of(3 * (unsigned)cap, key);
	ck_assert_ptr_null(table_put(t, key));
	ck_assert_ptr_null(table_get(t, key));	/* the failed put left nothing */
	key_of(0, key);
	ck_assert_ptr_nonnull(table_put(t, key));	/* existing keys still work */
	table_del(t, key);
	key_of(3 * (unsigned)cap, key);
	ck_assert_ptr_nonnull(table_put(t, key));	/* room again */
	table_free(t);
}
END_TEST

#define CHURN_KEYS 300
#define CHURN_ENTRIES 64

/* Random puts and deletes near full load, checked against an array. */
START_TEST(test_table_churn)
{
	struct table *t = table_new(CHURN_ENTRIES, sizeof(uint32_t));
	bool live[CHURN_KEYS] = { false };
	uint32_t val[CHURN_KEYS] = { 0 }, lcg = 12345;
	unsigned char key[TABLE_KEY_MAX];
	size_t count = 0;

	for (int op = 0; op < 40000; op++) {
		unsigned k;

		lcg = lcg * 1103515245u + 12345u;
		k = (lcg >> 8) % CHURN_KEYS;
		key_of(k, key);
		if (live[k] && (lcg >> 30) != 0) {
			table_del(t, key);
			live[k] = false;
			count--;
		} else if (!live[k] && count < CHURN_ENTRIES) {
			void *rec = table_put(t, key);

			ck_assert_ptr_nonnull(rec);
			val[k] = lcg;
			memcpy(rec, &val[k], sizeof val[k]);
			live[k] = true;
			count++;
		}
		ck_assert_uint_eq(table_count(t), count);
		if (op % 1000)
			continue;
		for (unsigned j = 0; j < CHURN_KEYS; j++) {
			void *rec = table_get(t, key_of(j, key));

			ck_assert_msg((rec != NULL) == live[j], "op %d key %u", op, j);
			if (rec)
				ck_assert_msg(rec_u32(rec) == val[j], "op %d key %u: value", op, j);
		}
	}
	table_free(t);
}
END_TEST

struct visits {
	unsigned seen[200];
	unsigned calls;
};

static void visit(void *rec, void *arg)
{
	struct visits *vs = arg;
	uint32_t i = rec_u32(rec);

	vs->calls++;
	if (i < 200)
		vs->seen[i]++;
}

START_TEST(test_table_each)
{
	struct table *t = table_new(200, sizeof(uint32_t));
	struct visits vs = { { 0 }, 0 };
	unsigned char key[TABLE_KEY_MAX];

	table_each(t, visit, &vs);
	ck_assert_uint_eq(vs.calls, 0);
	for (uint32_t i = 0; i < 200; i++)
		memcpy(table_put(t, key_of(i, key)), &i, sizeof i);
	for (unsigned i = 0; i < 200; i += 3)
		table_del(t, key_of(i, key));
	table_each(t, visit, &vs);
	ck_assert_uint_eq(vs.calls, table_count(t));
	for (unsigned i = 0; i < 200; i++)
		ck_assert_msg(vs.seen[i] == (i % 3 ? 1u : 0u), "key %u seen %u times",
			      i, vs.seen[i]);
	table_free(t);
}
END_TEST

/* Callers keep pointers and int64_t in their records: each one starts
 * aligned for any type, whatever the record size. */
static const size_t align_recsizes[] = { 1, 4, 8, 24, 37 };

START_TEST(test_table_records_aligned)
{
	struct table *t = table_new(8, align_recsizes[_i]);
	unsigned char key[TABLE_KEY_MAX];

	for (unsigned i = 0; i < 8; i++) {
		void *rec = table_put(t, key_of(i, key));

		ck_assert_msg((uintptr_t)rec % _Alignof(max_align_t) == 0,
			      "recsize %zu: record %u at %p", align_recsizes[_i], i, rec);
	}
	table_free(t);
}
END_TEST

/* Sweep deletes exactly the records the predicate names, even when
 * deleting shifts later records into the slot just looked at; the rest
 * stay reachable with their contents. */
static bool odd_key(const void *rec)
{
	return (rec_u32(rec) & 1) == 0;	/* value_of(i) is even for odd i */
}

static bool any(const void *rec)
{
	(void)rec;
	return true;
}

START_TEST(test_table_sweep)
{
	static const size_t entries_list[] = { 1, 7, 64, 1000, 5000 };
	size_t entries = entries_list[_i];
	struct table *t = table_new(entries, sizeof(uint32_t));
	unsigned char key[TABLE_KEY_MAX];
	size_t expect_gone = entries / 2, gone;

	ck_assert_ptr_nonnull(t);
	for (unsigned i = 0; i < entries; i++)
		fill(table_put(t, key_of(i, key)), sizeof(uint32_t), i);
	gone = table_sweep(t, odd_key);
	ck_assert_uint_eq(gone, expect_gone);
	ck_assert_uint_eq(table_count(t), entries - expect_gone);
	for (unsigned i = 0; i < entries; i++) {
		void *rec = table_get(t, key_of(i, key));

		if (i % 2)
			ck_assert_msg(rec == NULL, "key %u survived the sweep", i);
		else
			check_rec(rec, sizeof(uint32_t), i);
	}
	/* Nothing left to sweep; and a sweep of everything empties it. */
	ck_assert_uint_eq(table_sweep(t, odd_key), 0);
	ck_assert_uint_eq(table_sweep(t, any), entries - expect_gone);
	ck_assert_uint_eq(table_count(t), 0);
	for (unsigned i = 0; i < entries; i++)
		ck_assert_ptr_null(table_get(t, key_of(i, key)));
	table_free(t);
}
END_TEST

Suite *table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_table_put_get_del, 0, sizeof sizes / sizeof sizes[0]);
	tcase_add_test(tc, test_table_reput_zeroed);
	tcase_add_loop_test(tc, test_table_capacity, 0,
			    sizeof cap_entries / sizeof cap_entries[0]);
	tcase_add_test(tc, test_table_churn);
	tcase_add_test(tc, test_table_each);
	tcase_add_loop_test(tc, test_table_sweep, 0, 5);
	tcase_add_loop_test(tc, test_table_records_aligned, 0,
			    sizeof align_recsizes / sizeof align_recsizes[0]);
	suite_add_tcase(s, tc);
	return s;
}
