/*  status - the broker's view of the cluster as one message (see status.h).
 */
#include "status.h"

#include <czmq.h>
#include <string.h>

bs_msg_t *
status_msg (uint32_t inflight, cache_t *cache_, workers_t *workers, controller_t *controller)
{
    bs_msg_t *reply = bs_msg_new_ok ();
    int64_t now = zclock_mono ();
    bs_msg_set_int (reply, BS_FIELD_inflight, inflight);
    cache_stats_t stats;
    cache_stats (cache_, &stats);
    bs_msg_t *cache = bs_msg_new ();
    bs_msg_set_int (cache, BS_FIELD_capacity, (int64_t) stats.capacity);
    bs_msg_set_int (cache, BS_FIELD_size, (int64_t) stats.size);
    bs_msg_set_int (cache, BS_FIELD_bytes, (int64_t) stats.bytes);
    bs_msg_set_int (cache, BS_FIELD_hits, (int64_t) stats.hits);
    bs_msg_set_int (cache, BS_FIELD_misses, (int64_t) stats.misses);
    bs_msg_set_int (cache, BS_FIELD_evictions, (int64_t) stats.evictions);
    bs_msg_set_int (cache, BS_FIELD_invalidations, (int64_t) stats.invalidations);
    bs_msg_set_int (cache, BS_FIELD_stale, (int64_t) stats.stale);
    bs_msg_set_map (reply, BS_FIELD_cache, &cache);
    for (size_t i = 0; i < workers_size (workers); i++) {
        worker_t *w = workers_at (workers, i);
        bs_msg_t *node = bs_msg_new ();
        bs_msg_set_str (node, BS_FIELD_id, w->id);
        bs_msg_set_str (node, BS_FIELD_service, w->service);
        bs_msg_set_int (node, BS_FIELD_alive, w->alive);
        bs_msg_set_int (node, BS_FIELD_inflight, w->outstanding);
        bs_msg_set_int (node, BS_FIELD_requests, (int64_t) w->served);
        if (w->alive)
            bs_msg_set_int (node, BS_FIELD_age, now - w->last_seen);
        if (w->has_status) {
            bs_msg_set_str (node, BS_FIELD_role, controller_role (controller, w));
            bs_msg_set_int (node, BS_FIELD_insync, controller_insync (controller, w));
            bs_msg_set_int (node, BS_FIELD_ready, w->ready);
            bs_msg_set_int (node, BS_FIELD_lag, (int64_t) controller_lag (controller, workers, w));
            bs_msg_set_str (node, BS_FIELD_digest, w->digest);
            //  The partition the node writes (order) or the catalog's
            worker_partition_t *main = NULL;
            for (int k = 0; k < w->partition_count && !main; k++)
                if (strcmp (w->service, "catalog") == 0 || strcmp (w->partitions [k].role, "primary") == 0)
                    main = &w->partitions [k];
            if (main) {
                bs_msg_set_str (node, BS_FIELD_partition, main->name);
                bs_msg_set_int (node, BS_FIELD_epoch, (int64_t) main->epoch);
                bs_msg_set_int (node, BS_FIELD_seq, (int64_t) main->seq);
            }
        }
        bs_msg_append (reply, BS_FIELD_nodes, &node);
    }
    //  The control plane: where the map lives and what it holds there
    bs_msg_set_str (reply, BS_FIELD_store, controller_store_prefix (controller));
    bs_msg_set_list (reply, BS_FIELD_control);
    uint64_t epoch;
    const char *primary;
    char insync [1024];
    int64_t revision;
    if (controller_stored (controller, &epoch, &primary, insync, sizeof insync, &revision)) {
        bs_msg_t *part = bs_msg_new ();
        bs_msg_set_str (part, BS_FIELD_partition, "catalog");
        bs_msg_set_int (part, BS_FIELD_epoch, (int64_t) epoch);
        bs_msg_set_str (part, BS_FIELD_primary, primary);
        bs_msg_set_str (part, BS_FIELD_isr, insync);
        bs_msg_set_int (part, BS_FIELD_revision, revision);
        bs_msg_append (reply, BS_FIELD_control, &part);
    }
    return reply;
}
