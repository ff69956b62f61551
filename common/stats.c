/* stats.c - counters for the shutdown summary (see stats.h). */
#include "stats.h"

#include "log.h"

void stats_init(struct stats *s)
{
    atomic_init(&s->served, 0);
    atomic_init(&s->bytes_echoed, 0);
    atomic_init(&s->current, 0);
    atomic_init(&s->peak, 0);
    atomic_init(&s->closed_idle, 0);
}

int stats_client_opened(struct stats *s)
{
    atomic_fetch_add(&s->served, 1);
    int now = atomic_fetch_add(&s->current, 1) + 1;
    int peak = atomic_load(&s->peak);
    /* Raise peak to now unless another thread already raised it further. */
    while (now > peak && !atomic_compare_exchange_weak(&s->peak, &peak, now))
        ;
    return now;
}

int stats_client_closed(struct stats *s)
{
    return atomic_fetch_sub(&s->current, 1) - 1;
}

void stats_closed_idle(struct stats *s)
{
    atomic_fetch_add(&s->closed_idle, 1);
}

void stats_echoed(struct stats *s, unsigned long long bytes)
{
    atomic_fetch_add(&s->bytes_echoed, bytes);
}

int stats_current(struct stats *s) { return atomic_load(&s->current); }

void stats_print_summary(struct stats *s)
{
    log_info("shutdown: %lu clients served, %llu bytes echoed, "
             "peak %d concurrent, %lu closed idle",
             atomic_load(&s->served), atomic_load(&s->bytes_echoed),
             atomic_load(&s->peak), atomic_load(&s->closed_idle));
}
