/*  test_direct - the pieces of the direct buy path that need no socket:
 *  held reply tokens and their kinds, who may send a direct request, and
 *  which answers send a buy back through the broker  */
#include "bs_stream.h"
#include "buyer.h"
#include "testing.h"

#include <string.h>

static void
test_token_kinds (void)
{
    uint8_t token [1 + BS_TOKEN_ADDRESS_MAX];
    uint8_t broker [16];
    for (int i = 0; i < 16; i++)
        broker [i] = (uint8_t) (i * 17);
    size_t size = bs_stream_token (BS_TOKEN_BROKER, broker, sizeof broker, token);
    CHECK_EQ (size, 17);
    const uint8_t *address;
    size_t address_size;
    CHECK_EQ (bs_stream_token_kind (token, size, &address, &address_size), BS_TOKEN_BROKER);
    CHECK_EQ (address_size, 16);
    CHECK (memcmp (address, broker, 16) == 0);
    size = bs_stream_token (BS_TOKEN_PEER, "order-1", 7, token);
    CHECK_EQ (size, 8);
    CHECK_EQ (bs_stream_token_kind (token, size, &address, &address_size), BS_TOKEN_PEER);
    CHECK (address_size == 7 && memcmp (address, "order-1", 7) == 0);
}

static void
test_bad_tokens (void)
{
    uint8_t token [1 + BS_TOKEN_ADDRESS_MAX + 1];
    uint8_t big [BS_TOKEN_ADDRESS_MAX + 1] = { 0 };
    CHECK_EQ (bs_stream_token ('X', "a", 1, token), 0);
    CHECK_EQ (bs_stream_token (BS_TOKEN_PEER, "", 0, token), 0);
    CHECK_EQ (bs_stream_token (BS_TOKEN_PEER, big, sizeof big, token), 0);
    CHECK_EQ (bs_stream_token (BS_TOKEN_PEER, big, BS_TOKEN_ADDRESS_MAX, token), 1 + BS_TOKEN_ADDRESS_MAX);
    const uint8_t *address;
    size_t address_size;
    //  Empty, a kind byte alone, an unknown kind, too long: no token
    CHECK_EQ (bs_stream_token_kind (token, 0, &address, &address_size), 0);
    CHECK_EQ (bs_stream_token_kind ("P", 1, &address, &address_size), 0);
    CHECK_EQ (bs_stream_token_kind ("Zabc", 4, &address, &address_size), 0);
    token [0] = BS_TOKEN_PEER;
    CHECK_EQ (bs_stream_token_kind (token, sizeof token, &address, &address_size), 0);
    CHECK_EQ (bs_stream_token_kind (NULL, 5, &address, &address_size), 0);
}

static void
test_who_may_request (void)
{
    //  Plain mode: the socket is on loopback; whoever reaches it
    CHECK (bs_stream_may_request (false, "", "", "anyone", 6));
    CHECK (bs_stream_may_request (true, "node", "order-2", "order-2", 7));
    //  A catalog node, a client, an admin, an order key under another id
    CHECK (!bs_stream_may_request (true, "node", "catalog-2", "catalog-2", 9));
    CHECK (!bs_stream_may_request (true, "client", "order-2", "order-2", 7));
    CHECK (!bs_stream_may_request (true, "admin", "admin", "admin", 5));
    CHECK (!bs_stream_may_request (true, "node", "order-2", "order-1", 7));
    CHECK (!bs_stream_may_request (true, "node", "order-2", "order-22", 8));
    CHECK (!bs_stream_may_request (true, "node", "order", "order", 5));
    CHECK (!bs_stream_may_request (true, "", "", "order-1", 7));
}

static bool
s_falls_back (bs_err_t err)
{
    bs_msg_t *reply = bs_msg_new_error (err, "why");
    bool back = buyer_direct_falls_back (reply);
    bs_msg_destroy (&reply);
    return back;
}

static void
test_fallback_decisions (void)
{
    //  The path is wrong: not the primary, refused, unknown there
    CHECK (s_falls_back (BS_ERR_unavailable));
    CHECK (s_falls_back (BS_ERR_forbidden));
    CHECK (s_falls_back (BS_ERR_unknown_op));
    CHECK (s_falls_back (BS_ERR_overloaded));
    //  The catalog's word on the buy: the broker would bring the same
    CHECK (!s_falls_back (BS_ERR_out_of_stock));
    CHECK (!s_falls_back (BS_ERR_unknown_item));
    CHECK (!s_falls_back (BS_ERR_not_invalidated));
    CHECK (!s_falls_back (BS_ERR_storage));
    bs_msg_t *ok = bs_msg_new_ok ();
    CHECK (!buyer_direct_falls_back (ok));
    bs_msg_destroy (&ok);
}

int
main (void)
{
    RUN (test_token_kinds);
    RUN (test_bad_tokens);
    RUN (test_who_may_request);
    RUN (test_fallback_decisions);
    return DONE ();
}
