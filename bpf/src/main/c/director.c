// SPDX-License-Identifier: Apache-2.0
/*
 * Veer director: looks the packet's (VIP, port, protocol) up, hashes the
 * configured source fields with a keyed SipHash to a row of the service's
 * rendezvous table and encapsulates the packet, exactly as its IP header
 * declares it, towards the row's hops: GUE with a hop list (second chance on
 * the proxies) or plain IPIP/ip6ip6. Packets whose headers disagree with
 * their lengths, and packets from sources no client can have, are dropped.
 * Next-hop MACs come from the kernel's FIB and neighbour tables.
 */
#include "veer_director.h"

SEC("xdp")
int veer_director(struct xdp_md *ctx)
{
	return run_director(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
