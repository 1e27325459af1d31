/*  bs_mdp - Majordomo Protocol (7/MDP) constants and the store's extensions.
 *
 *  Client <-> broker (client ROUTER):
 *      [empty] "MDPC01" service body
 *  Broker <-> worker (node ROUTER; worker uses a DEALER):
 *      [empty] "MDPW01" command ...
 *  See schema/PROTOCOL.md for every frame.
 */
#ifndef BS_MDP_H_INCLUDED
#define BS_MDP_H_INCLUDED

#define BS_MDPC "MDPC01"
#define BS_MDPW "MDPW01"

//  Worker commands (one byte)
#define BS_MDPW_READY       0x01
#define BS_MDPW_REQUEST     0x02
#define BS_MDPW_REPLY       0x03
#define BS_MDPW_HEARTBEAT   0x04
#define BS_MDPW_DISCONNECT  0x05
//  Extension: broker -> node, one frame with the partition map (assign)
#define BS_MDPW_ASSIGN      0x06

//  The broker answers requests to this service itself
#define BS_SERVICE_BROKER "broker"

#endif
