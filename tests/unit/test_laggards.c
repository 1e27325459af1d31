/*  test_laggards - clients that do not read, and the budget of the broker's
 *  reads they get  */
#include "laggards.h"
#include "testing.h"

#include <string.h>

//  A client is a laggard from its refused reply until LAGGARD_MS after it,
//  and no other client is taken for it
static void
test_marked_until_expiry (void)
{
    laggards_t *laggards = laggards_new (1000);
    int64_t t = 5000000;
    CHECK (!laggards_match (laggards, "AB", 2, t));
    CHECK (laggards_mark (laggards, "AB", 2, t));           //  new: logged
    CHECK (!laggards_mark (laggards, "AB", 2, t));          //  again: not
    CHECK (laggards_match (laggards, "AB", 2, t + 1));
    CHECK (!laggards_match (laggards, "ABC", 3, t + 1));    //  ids compared whole
    CHECK (!laggards_match (laggards, "A", 1, t + 1));
    CHECK (!laggards_match (laggards, "AC", 2, t + 1));
    CHECK (laggards_match (laggards, "AB", 2, t + LAGGARD_MS * 1000 - 1));
    //  Its time over, its next request is served: it shows whether it reads
    CHECK (!laggards_match (laggards, "AB", 2, t + LAGGARD_MS * 1000));
    CHECK (!laggards_match (laggards, "AB", 2, t + LAGGARD_MS * 1000 + 1));
    CHECK_EQ (laggards_dropped (laggards), 2);
    //  Marked again, the time starts again from the new mark
    CHECK (laggards_mark (laggards, "AB", 2, t + 2000000));
    CHECK (!laggards_mark (laggards, "AB", 2, t + 2500000));
    CHECK (laggards_match (laggards, "AB", 2, t + 2500000 + LAGGARD_MS * 1000 - 1));
    laggards_destroy (&laggards);
    CHECK (laggards == NULL);
}

//  A full table takes a new laggard in place of the one marked longest ago;
//  expired ones are forgotten by laggards_expire
static void
test_table_bounded (void)
{
    laggards_t *laggards = laggards_new (1000);
    int64_t t = 1000000;
    char id [16];
    for (int i = 0; i < LAGGARDS_MAX; i++) {
        snprintf (id, sizeof id, "c%03d", i);
        laggards_mark (laggards, id, 4, t + i);
    }
    laggards_mark (laggards, "new!", 4, t + LAGGARDS_MAX);
    CHECK (laggards_match (laggards, "new!", 4, t + LAGGARDS_MAX + 1));
    CHECK (!laggards_match (laggards, "c000", 4, t + LAGGARDS_MAX + 1));   //  the oldest, replaced
    CHECK (laggards_match (laggards, "c001", 4, t + LAGGARDS_MAX + 1));
    CHECK (laggards_match (laggards, "c063", 4, t + LAGGARDS_MAX + 1));
    CHECK (laggards_any (laggards));
    laggards_expire (laggards, t + LAGGARD_MS * 1000 + LAGGARDS_MAX + 1);
    CHECK (!laggards_any (laggards));
    CHECK (!laggards_match (laggards, "new!", 4, t));        //  forgotten, whatever the time asked
    CHECK (!laggards_match (laggards, "c063", 4, t));
    //  Oversized or empty ids are never recorded
    uint8_t big [300];
    memset (big, 'x', sizeof big);
    laggards_mark (laggards, big, sizeof big, t);
    CHECK (!laggards_match (laggards, big, sizeof big, t + 1));
    laggards_mark (laggards, "", 0, t);
    CHECK (!laggards_match (laggards, "", 0, t + 1));
    laggards_destroy (&laggards);
}

//  The laggards' reads are budgeted: a burst of a hundredth of a second's
//  rate, then rests that each let two more be read
static void
test_budget (void)
{
    laggards_t *laggards = laggards_new (1000);     //  a read a millisecond
    int64_t t = 1000000;
    int reads = 0;
    int64_t rest = 0;
    while ((rest = laggards_charge (laggards, t)) == 0)
        reads++;
    CHECK_EQ (reads, 9);                //  a burst of 10, the 10th spends it
    CHECK (rest > t);
    CHECK (rest <= t + 2001);           //  two reads' worth at 1000 a second
    CHECK (rest >= t + 1999);
    //  Read too early, a request still costs and the rest lengthens
    int64_t early = laggards_charge (laggards, t + 500);
    CHECK (early > rest);
    //  Once the rest is over, one read is allowed before the next rest
    t = early;
    CHECK_EQ (laggards_charge (laggards, t), 0);
    CHECK (laggards_charge (laggards, t) > t);
    //  Over a long run the reads keep to the rate
    t += 10000000;                      //  ten seconds later: a full burst
    int64_t start = t;
    reads = 0;
    while (reads < 5000) {
        int64_t until = laggards_charge (laggards, t);
        reads++;
        if (until)
            t = until;
    }
    double seconds = (double) (t - start) / 1e6;
    CHECK (seconds > 4.9 && seconds < 5.1);
    laggards_destroy (&laggards);
}

int
main (void)
{
    RUN (test_marked_until_expiry);
    RUN (test_table_bounded);
    RUN (test_budget);
    return DONE ();
}
