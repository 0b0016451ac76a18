/*
 * clock.h - the one clock, and the timer contract of the event loop.
 *
 * Every module with deadlines has one X_tick(struct server *) that does
 * what is due now and returns its next deadline in mono_ms() time, or -1
 * for none.  server_run calls each tick once per turn of the loop, after
 * the turn's events, and sleeps in epoll_wait until the earliest answer;
 * deadline_earlier() is the fold.  (log.c knows no server: its tick is
 * log_limits_flush(false).)
 */
#ifndef ACCEPTD_CLOCK_H
#define ACCEPTD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC: never jumps with the wall clock, so -t, --rate and
 * the drain measure real elapsed time. */
static inline int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t mono_ms(void)
{
	return mono_us() / 1000;
}

/* The earlier of two deadlines, -1 meaning none. */
static inline int64_t deadline_earlier(int64_t a, int64_t b)
{
	return b >= 0 && (a < 0 || b < a) ? b : a;
}

#endif
