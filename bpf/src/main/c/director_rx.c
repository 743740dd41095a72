// SPDX-License-Identifier: Apache-2.0
/*
 * Veer director in RX-hash mode: the director program, its flow hash taken
 * from the NIC's RSS hash (veer_rx_hash.h). Loaded bound to the interface it
 * is attached to (the kfunc is the driver's).
 */
#define VEER_RX_HASH
#include "veer_director.h"

SEC("xdp")
int veer_director(struct xdp_md *ctx)
{
	return run_director(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
