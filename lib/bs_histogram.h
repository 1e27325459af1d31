/*  bs_histogram - a latency histogram with log-linear buckets, in the style
 *  of HdrHistogram.
 *
 *  Values from 0 to a chosen highest value are counted in buckets whose width
 *  grows with the value, so every recorded value is known to within a fixed
 *  relative precision (1 part in 1,000 for 3 significant figures) while the
 *  whole range fits in a few hundred kilobytes.  Recording is an array
 *  increment: no allocation, no sorting, and the cost does not depend on how
 *  many values were recorded.  Percentiles are read by one pass over the
 *  counts.
 *
 *  Values are plain integers; the caller picks the unit (the bench records
 *  nanoseconds).  A value above the highest trackable one is counted in the
 *  top bucket; negative values count as 0.  The exact minimum and maximum are
 *  kept beside the buckets.
 *
 *  Ownership: bs_histogram_new returns a histogram the caller destroys with
 *  bs_histogram_destroy.  bs_histogram_merge reads the other histogram and
 *  leaves it to its owner.
 */
#ifndef BS_HISTOGRAM_H_INCLUDED
#define BS_HISTOGRAM_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct _bs_histogram_t bs_histogram_t;

//  highest: the largest value to tell apart (at least 2).  significant
//  figures: 1 to 5, the precision kept at every magnitude.  Returns NULL
//  when either is out of range.
bs_histogram_t *bs_histogram_new (int64_t highest, int significant_figures);
void bs_histogram_destroy (bs_histogram_t **self_p);

//  Counts one value
void bs_histogram_record (bs_histogram_t *self, int64_t value);
//  Counts a value n times
void bs_histogram_record_n (bs_histogram_t *self, int64_t value, uint64_t n);

//  Number of values recorded
uint64_t bs_histogram_count (const bs_histogram_t *self);
//  Exact smallest and largest values recorded (0 when empty)
int64_t bs_histogram_min (const bs_histogram_t *self);
int64_t bs_histogram_max (const bs_histogram_t *self);
//  Mean of the recorded values, each taken at the middle of its bucket
double bs_histogram_mean (const bs_histogram_t *self);

//  The value at or below which the given percentage (0 to 100) of the
//  recorded values lie, as the largest value of its bucket but never more
//  than the exact maximum.  0 returns the minimum, 100 the maximum; an empty
//  histogram answers 0.
int64_t bs_histogram_percentile (const bs_histogram_t *self, double percent);

//  Adds the other histogram's counts to this one.  Both must have been made
//  with the same highest value and precision; returns false otherwise and
//  changes nothing.
bool bs_histogram_merge (bs_histogram_t *self, const bs_histogram_t *other);

//  Forgets every value recorded
void bs_histogram_reset (bs_histogram_t *self);

#endif
