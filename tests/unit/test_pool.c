/* test_pool.c - unit tests of pool.c's restart back-off, pool_backoff_ms:
 * nothing after a healthy run, 100 ms after the first early death,
 * doubling with each one after, and then 30 s exactly for every count
 * however large (the shift must not overflow).  A live crash loop would
 * take over a minute to show the cap; pool.py shows the reset after a
 * healthy run with a real worker. */
#include "config.h"

#include <check.h>
#include <limits.h>

#include "core.h"
#include "suites.h"

static const struct {
	unsigned fails, ms;
} delays[] = {
	{ 0, 0 },
	{ 1, 100 },
	{ 2, 200 },
	{ 3, 400 },
	{ 4, 800 },
	{ 5, 1600 },
	{ 6, 3200 },
	{ 7, 6400 },
	{ 8, 12800 },
	{ 9, 25600 },
	/* 51200 uncapped: the cap, exactly */
	{ 10, 30000 },
	{ 11, 30000 },
	/* where an unbounded 100 << (fails - 1) would overflow or be undefined */
	{ 26, 30000 },
	{ 32, 30000 },
	{ 33, 30000 },
	{ 64, 30000 },
	{ 1000, 30000 },
	{ UINT_MAX, 30000 },
};

START_TEST(test_pool_backoff_table)
{
	unsigned got = poolsup_backoff_ms(delays[_i].fails);

	ck_assert_msg(got == delays[_i].ms, "poolsup_backoff_ms(%u) = %u, want %u",
		      delays[_i].fails, got, delays[_i].ms);
}
END_TEST

/* Never shorter than the one before, never over the cap: a crash loop
 * slows down and stays slow, however long it goes on. */
START_TEST(test_pool_backoff_monotonic_and_capped)
{
	unsigned prev = 0;

	for (unsigned fails = 1; fails <= 100000; fails++) {
		unsigned ms = poolsup_backoff_ms(fails);

		ck_assert_msg(ms >= prev && ms <= 30000, "poolsup_backoff_ms(%u) = %u after %u",
			      fails, ms, prev);
		prev = ms;
	}
	ck_assert_uint_eq(prev, 30000);
}
END_TEST

Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("backoff");

	tcase_add_loop_test(tc, test_pool_backoff_table, 0, sizeof delays / sizeof delays[0]);
	tcase_add_test(tc, test_pool_backoff_monotonic_and_capped);
	suite_add_tcase(s, tc);
	return s;
}
