/*  test_idlist - node ids in comma-separated lists  */
#include "bs_idlist.h"
#include "testing.h"

static void
test_whole_elements (void)
{
    CHECK (bs_idlist_has ("catalog-1,catalog-3", "catalog-1"));
    CHECK (bs_idlist_has ("catalog-1,catalog-3", "catalog-3"));
    CHECK (!bs_idlist_has ("catalog-1,catalog-3", "catalog-2"));
    CHECK (!bs_idlist_has ("node-10", "node-1"));       //  not a prefix
    CHECK (!bs_idlist_has ("node-1", "node-10"));
    CHECK (!bs_idlist_has ("xnode-1", "node-1"));
}

static void
test_empty (void)
{
    CHECK (!bs_idlist_has ("", "catalog-1"));
    CHECK (!bs_idlist_has ("", ""));
    CHECK (!bs_idlist_has ("a,,b", ""));                //  the empty id is no node's
    CHECK (bs_idlist_has ("a,,b", "b"));
}

int
main (void)
{
    RUN (test_whole_elements);
    RUN (test_empty);
    return DONE ();
}
