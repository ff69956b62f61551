/* clock.h - the one clock the servers read: milliseconds since some fixed
 * point (CLOCK_MONOTONIC), for pauses and timeouts. Not the time of day: it
 * never jumps when someone sets the clock, so a pause cannot last an hour.
 */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

/* Milliseconds on CLOCK_MONOTONIC. Cannot fail. */
long long clock_ms(void);

/* Sleeps about ms milliseconds; a signal may end it sooner (the caller's
 * loop re-checks whatever it waits for). Win32: Sleep(ms). */
void clock_pause_ms(int ms);

#endif
