/*  node_status - the node_status message a node reports  */
#include "node_status.h"

#include <stdio.h>

uint8_t *
node_status_encode (const char *id, const char *service, repl_t *repl, journal_t *journal,
                    uint64_t version, size_t *size_p)
{
    bs_msg_t *status = bs_msg_new ();
    bs_msg_set_str (status, BS_FIELD_op, "node_status");
    bs_msg_set_str (status, BS_FIELD_id, id);
    bs_msg_set_str (status, BS_FIELD_service, service);
    repl_status (repl, status, version);
    char digest [17];
    journal_digest (journal, digest);
    bs_msg_set_str (status, BS_FIELD_digest, digest);
    //  Which store holds what we report: the broker elects a store, not a
    //  name (a node that lost its disk comes back with another)
    if (journal_incarnation (journal)) {
        char store [17];
        snprintf (store, sizeof store, "%016llx", (unsigned long long) journal_incarnation (journal));
        bs_msg_set_str (status, BS_FIELD_store, store);
    }
    bs_msg_set_int (status, BS_FIELD_ready, repl_caught_up (repl));
    uint8_t *data = bs_msg_encode (status, size_p);
    bs_msg_destroy (&status);
    return data;
}
