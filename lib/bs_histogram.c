/*  bs_histogram - log-linear latency histogram
 *
 *  Layout (as in HdrHistogram): values below sub_count (a power of two
 *  holding 2 x 10^figures) each have a bucket of their own.  Above that,
 *  every power of two [2^k, 2^(k+1)) is split into sub_count / 2 equal
 *  buckets, so a bucket is never wider than 1 / (sub_count / 2) of its
 *  values.  The index of a value is a count of leading zeros and a shift.
 */
#include "bs_histogram.h"

#include <stdlib.h>
#include <string.h>

struct _bs_histogram_t {
    int64_t highest;            //  as given: largest value told apart
    int figures;                //  significant figures, as given
    int sub_bits;               //  log2 of the linear buckets per magnitude
    int half_bits;              //  sub_bits - 1
    uint64_t sub_mask;          //  sub_count - 1
    size_t length;              //  number of counters
    uint64_t *counts;
    uint64_t total;
    int64_t min, max;
};

bs_histogram_t *
bs_histogram_new (int64_t highest, int significant_figures)
{
    if (highest < 2 || significant_figures < 1 || significant_figures > 5)
        return NULL;
    bs_histogram_t *self = calloc (1, sizeof (bs_histogram_t));
    if (!self)
        abort ();
    self->highest = highest;
    self->figures = significant_figures;
    int64_t largest_exact = 2;
    for (int i = 0; i < significant_figures; i++)
        largest_exact *= 10;
    self->sub_bits = 1;
    while ((INT64_C (1) << self->sub_bits) < largest_exact)
        self->sub_bits++;
    self->half_bits = self->sub_bits - 1;
    self->sub_mask = (UINT64_C (1) << self->sub_bits) - 1;
    //  Magnitudes needed until the top one holds the highest value
    int magnitudes = 1;
    uint64_t untrackable = UINT64_C (1) << self->sub_bits;
    while (untrackable <= (uint64_t) highest && magnitudes < 64 - self->sub_bits + 1) {
        untrackable <<= 1;
        magnitudes++;
    }
    self->length = (size_t) (magnitudes + 1) << self->half_bits;
    self->counts = calloc (self->length, sizeof (uint64_t));
    if (!self->counts)
        abort ();
    return self;
}

void
bs_histogram_destroy (bs_histogram_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->counts);
    free (*self_p);
    *self_p = NULL;
}

//  Magnitude (power of two above the linear range) of a value
static int
s_magnitude (const bs_histogram_t *self, uint64_t value)
{
    int log2 = 63 - __builtin_clzll (value | self->sub_mask);
    return log2 - self->sub_bits + 1;
}

static size_t
s_index (const bs_histogram_t *self, uint64_t value)
{
    int magnitude = s_magnitude (self, value);
    return ((size_t) magnitude << self->half_bits) + (size_t) (value >> magnitude);
}

//  Smallest value counted in a bucket, and the bucket's width
static uint64_t
s_lowest (const bs_histogram_t *self, size_t index, uint64_t *width_p)
{
    int magnitude = (int) (index >> self->half_bits) - 1;
    uint64_t sub = (index & ((UINT64_C (1) << self->half_bits) - 1)) + (UINT64_C (1) << self->half_bits);
    if (magnitude < 0) {
        sub -= UINT64_C (1) << self->half_bits;
        magnitude = 0;
    }
    *width_p = UINT64_C (1) << magnitude;
    return sub << magnitude;
}

void
bs_histogram_record_n (bs_histogram_t *self, int64_t value, uint64_t n)
{
    if (n == 0)
        return;
    if (value < 0)
        value = 0;
    if (self->total == 0 || value < self->min)
        self->min = value;
    if (self->total == 0 || value > self->max)
        self->max = value;
    //  Beyond the range: counted in the top bucket, the exact max stays
    uint64_t clamped = value > self->highest? (uint64_t) self->highest: (uint64_t) value;
    self->counts [s_index (self, clamped)] += n;
    self->total += n;
}

void
bs_histogram_record (bs_histogram_t *self, int64_t value)
{
    bs_histogram_record_n (self, value, 1);
}

uint64_t bs_histogram_count (const bs_histogram_t *self) { return self->total; }
int64_t  bs_histogram_min (const bs_histogram_t *self) { return self->total? self->min: 0; }
int64_t  bs_histogram_max (const bs_histogram_t *self) { return self->total? self->max: 0; }

double
bs_histogram_mean (const bs_histogram_t *self)
{
    if (self->total == 0)
        return 0;
    double sum = 0;
    for (size_t i = 0; i < self->length; i++)
        if (self->counts [i]) {
            uint64_t width;
            uint64_t lowest = s_lowest (self, i, &width);
            sum += (double) self->counts [i] * ((double) lowest + (double) (width - 1) / 2);
        }
    return sum / (double) self->total;
}

int64_t
bs_histogram_percentile (const bs_histogram_t *self, double percent)
{
    if (self->total == 0)
        return 0;
    if (percent <= 0)
        return self->min;
    if (percent >= 100)
        return self->max;
    //  The rank of the value asked for, counting from 1
    uint64_t rank = (uint64_t) (percent / 100 * (double) self->total + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < self->length; i++) {
        seen += self->counts [i];
        if (seen >= rank) {
            uint64_t width;
            uint64_t highest = s_lowest (self, i, &width) + width - 1;
            int64_t value = highest > (uint64_t) self->max? self->max: (int64_t) highest;
            return value < self->min? self->min: value;
        }
    }
    return self->max;
}

bool
bs_histogram_merge (bs_histogram_t *self, const bs_histogram_t *other)
{
    if (self->highest != other->highest || self->figures != other->figures)
        return false;
    if (other->total == 0)
        return true;
    for (size_t i = 0; i < self->length; i++)
        self->counts [i] += other->counts [i];
    if (self->total == 0 || other->min < self->min)
        self->min = other->min;
    if (self->total == 0 || other->max > self->max)
        self->max = other->max;
    self->total += other->total;
    return true;
}

void
bs_histogram_reset (bs_histogram_t *self)
{
    memset (self->counts, 0, self->length * sizeof (uint64_t));
    self->total = 0;
    self->min = self->max = 0;
}
