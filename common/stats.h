/* stats.h - the counters behind the shutdown summary line:
 *     [select] shutdown: 12 clients served, 4194304 bytes echoed, peak 8 concurrent,
 *              3 closed idle
 * Atomic, so threaded models share one struct without a lock.
 */
#ifndef COMMON_STATS_H
#define COMMON_STATS_H

#include <stdatomic.h>

struct stats {
    atomic_ulong served;          /* clients accepted, in all */
    atomic_ullong bytes_echoed;   /* bytes sent back */
    atomic_int current;           /* clients connected now */
    atomic_int peak;              /* most connected at once */
    atomic_ulong closed_idle;     /* clients closed by --idle-timeout */
};

void stats_init(struct stats *s);
/* A client was accepted; returns the number connected now. */
int stats_client_opened(struct stats *s);
/* A client was closed; returns the number connected now. */
int stats_client_closed(struct stats *s);
/* A client is being closed for --idle-timeout (it is closed as usual too). */
void stats_closed_idle(struct stats *s);
void stats_echoed(struct stats *s, unsigned long long bytes);
int stats_current(struct stats *s);
/* Prints the summary line (always, at LOG_QUIET). */
void stats_print_summary(struct stats *s);

#endif
