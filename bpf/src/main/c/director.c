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
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct steer s = {};
	struct hops hops;
	int verdict, action = XDP_DROP;

	verdict = classify(data, data_end, &s);
	if (verdict == VEER_CONTINUE) {
		verdict = choose_hops(s.svc, s.hash, &hops);
		if (verdict == VEER_CONTINUE)
			verdict = send_to_hops(ctx, &s, &hops, data_end - data, &action);
		else
			count_service(s.svc->stats_slot, 0, 1);
	}
	veer_count(&verdicts, verdict);
	return director_action(verdict, action);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
