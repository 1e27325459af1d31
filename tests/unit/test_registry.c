/*  test_registry - what the node registry writes to etcd, and when  */
#include "registry.h"
#include "testing.h"

#include <string.h>

static void
test_a_new_node_is_written_once (void)
{
    registry_t *registry = registry_new ();
    registry_write_t write;
    CHECK (registry_note (registry, "catalog-1", "catalog", "", &write));
    CHECK (strcmp (write.key, "nodes/catalog-1") == 0);
    CHECK (strcmp (write.value, "{\"id\":\"catalog-1\",\"key\":\"\",\"service\":\"catalog\"}") == 0);
    CHECK (write.tag & REGISTRY_TAG);
    //  Registering again with nothing new, while the write is under way
    //  and after it was taken, writes nothing
    CHECK (!registry_note (registry, "catalog-1", "catalog", "", &write));
    uint32_t tag = REGISTRY_TAG;
    registry_written (registry, tag, true, 100);
    CHECK_EQ (registry_written_count (registry), 1);
    CHECK (!registry_note (registry, "catalog-1", "catalog", "", &write));
    CHECK (!registry_due (registry, 1000000, &write));
    registry_destroy (&registry);
}

static void
test_a_new_key_is_written_again (void)
{
    registry_t *registry = registry_new ();
    registry_write_t write;
    CHECK (registry_note (registry, "order-1", "order", "AAAA", &write));
    registry_written (registry, write.tag, true, 10);
    CHECK (registry_note (registry, "order-1", "order", "BBBB", &write));
    CHECK (strstr (write.value, "\"key\":\"BBBB\"") != NULL);
    //  Another node has a record of its own
    registry_write_t other;
    CHECK (registry_note (registry, "order-2", "order", "CCCC", &other));
    CHECK (other.tag != write.tag);
    registry_destroy (&registry);
}

static void
test_a_write_etcd_did_not_take_is_tried_again (void)
{
    registry_t *registry = registry_new ();
    registry_write_t write;
    CHECK (registry_note (registry, "catalog-2", "catalog", "", &write));
    registry_written (registry, write.tag, false, 1000);
    CHECK_EQ (registry_written_count (registry), 0);
    CHECK (!registry_due (registry, 1000 + REGISTRY_RETRY_MS - 1, &write));
    CHECK (registry_due (registry, 1000 + REGISTRY_RETRY_MS, &write));
    CHECK (strcmp (write.key, "nodes/catalog-2") == 0);
    //  Once sent again, it is not due again until answered
    CHECK (!registry_due (registry, 1000 + 10 * REGISTRY_RETRY_MS, &write));
    registry_written (registry, write.tag, true, 1000 + 10 * REGISTRY_RETRY_MS);
    CHECK_EQ (registry_written_count (registry), 1);
    registry_destroy (&registry);
}

static void
test_the_newest_value_decides (void)
{
    //  Two writes under way: the first taken, the second not.  The record
    //  is not counted written, and the newest value is sent again.
    registry_t *registry = registry_new ();
    registry_write_t first, second;
    CHECK (registry_note (registry, "catalog-3", "catalog", "AAAA", &first));
    CHECK (registry_note (registry, "catalog-3", "catalog", "BBBB", &second));
    registry_written (registry, first.tag, true, 10);
    CHECK_EQ (registry_written_count (registry), 0);
    registry_written (registry, second.tag, false, 20);
    registry_write_t again;
    CHECK (registry_due (registry, 20 + REGISTRY_RETRY_MS, &again));
    CHECK (strstr (again.value, "BBBB") != NULL);
    //  Sent again and taken: written
    registry_written (registry, again.tag, true, 30);
    CHECK_EQ (registry_written_count (registry), 1);
    registry_destroy (&registry);
}

static void
test_answers_not_its_own_are_ignored (void)
{
    registry_t *registry = registry_new ();
    registry_write_t write;
    CHECK (registry_note (registry, "catalog-1", "catalog", "", &write));
    registry_written (registry, 5, true, 10);                   //  a controller's tag
    registry_written (registry, REGISTRY_TAG | 77, true, 10);   //  no such record
    CHECK_EQ (registry_written_count (registry), 0);
    registry_destroy (&registry);
}

int
main (void)
{
    RUN (test_a_new_node_is_written_once);
    RUN (test_a_new_key_is_written_again);
    RUN (test_a_write_etcd_did_not_take_is_tried_again);
    RUN (test_the_newest_value_decides);
    RUN (test_answers_not_its_own_are_ignored);
    return DONE ();
}
