/* histogram.h - a log-bucketed latency histogram (HdrHistogram's idea, small).
 *
 * Values (nanoseconds) below 16 get a bucket each; above, every power of two
 * is cut into 16 sub-buckets, so a bucket is at most 1/16 (6.25%) of its
 * value wide. Recording is one index computation and an increment: cheap
 * enough for every echo of a benchmark, and the memory is fixed.
 */
#ifndef TESTS_CLIENT_HISTOGRAM_H
#define TESTS_CLIENT_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 4 /* 16 sub-buckets per power of 2 */
#define HIST_SUB      (1 << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS + 1) * HIST_SUB)

struct histogram {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
};

void hist_init(struct histogram *h);
void hist_record(struct histogram *h, uint64_t value);
/* Adds every count of from into into. */
void hist_merge(struct histogram *into, const struct histogram *from);

/* The bucket of a value, and the smallest value of a bucket. */
int hist_bucket(uint64_t value);
uint64_t hist_bucket_low(int bucket);

/* The value at quantile q (0 < q <= 1): the middle of the bucket holding
 * the ceil(q * total)-th smallest value, capped at the largest value seen.
 * 0 when the histogram is empty. */
uint64_t hist_percentile(const struct histogram *h, double q);

#endif
