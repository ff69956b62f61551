/* clock.c - see clock.h. */
#include "clock.h"

#include <time.h>

long long clock_ms(void)
{
    struct timespec ts;

    /* Fails only with a bad clock id or pointer: neither is possible here. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void clock_pause_ms(int ms)
{
    const struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&pause, NULL); /* EINTR: sooner, which every caller allows */
}
