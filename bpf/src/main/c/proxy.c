// SPDX-License-Identifier: Apache-2.0
/*
 * Veer proxy: accepts GUE only from allow-listed directors and proxies and
 * addressed to this proxy, within the lengths its headers declare; delivers
 * the inner packet to the local stack when this host owns the flow (a SYN,
 * an entry of the flow table, a local socket, a valid SYN cookie, or no hop
 * left) and serves its destination, and otherwise forwards it, from this
 * proxy's own address, to the next hop of the GUE hop list (second chance). While the flow table holds every connection, a miss in it
 * is enough to forward, without asking the kernel.
 */
#include "veer_proxy.h"

SEC("xdp")
int veer_proxy(struct xdp_md *ctx)
{
	int action = XDP_DROP;
	int verdict = handle_tunnel(ctx, &action);

	veer_count(&proxy_verdicts, verdict);
	return proxy_action(verdict, action);
}

SEC("sockops")
int veer_flows(struct bpf_sock_ops *skops)
{
	return track_flows(skops);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
