/*  bs_failover - moving on from a standby broker  */
#include "bs_failover.h"

#include <string.h>

bs_failover_move_t
bs_failover_not_active (bs_failover_t *self, size_t brokers)
{
    if (++self->not_active < brokers)
        return BS_FAILOVER_NOW;
    self->not_active = 0;
    return BS_FAILOVER_AFTER_PAUSE;
}

void
bs_failover_reset (bs_failover_t *self)
{
    self->not_active = 0;
}

bool
bs_failover_is_not_active (const bs_msg_t *reply)
{
    return reply && !bs_msg_int (reply, BS_FIELD_ok)
        && strcmp (bs_msg_str (reply, BS_FIELD_error), bs_err_name (BS_ERR_not_active)) == 0;
}
