/* histogram.c - a log-bucketed latency histogram (see histogram.h). */
#include "histogram.h"

#include <math.h>
#include <string.h>

void hist_init(struct histogram *h)
{
    memset(h, 0, sizeof(*h));
}

int hist_bucket(uint64_t value)
{
    if (value < HIST_SUB)
        return (int)value;
    /* e = index of the highest set bit (>= HIST_SUB_BITS); the next
     * HIST_SUB_BITS bits below it choose the sub-bucket. */
    int e = 63 - __builtin_clzll(value);
    int sub = (int)((value >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
    return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

uint64_t hist_bucket_low(int bucket)
{
    if (bucket < HIST_SUB)
        return (uint64_t)bucket;
    int e = bucket / HIST_SUB + HIST_SUB_BITS - 1;
    uint64_t sub = (uint64_t)(bucket % HIST_SUB);
    return (HIST_SUB + sub) << (e - HIST_SUB_BITS);
}

void hist_record(struct histogram *h, uint64_t value)
{
    h->counts[hist_bucket(value)]++;
    h->total++;
    if (value > h->max)
        h->max = value;
}

void hist_merge(struct histogram *into, const struct histogram *from)
{
    for (int i = 0; i < HIST_BUCKETS; i++)
        into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_percentile(const struct histogram *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->total), seen = 0;
    if (rank < 1)
        rank = 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        uint64_t low = hist_bucket_low(i);
        uint64_t high = i + 1 < HIST_BUCKETS ? hist_bucket_low(i + 1) : low;
        uint64_t mid = low + (high - low) / 2;
        return mid > h->max ? h->max : mid;
    }
    return h->max;
}
