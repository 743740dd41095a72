// SPDX-License-Identifier: Apache-2.0
/*
 * Passes every packet. Attached to the far end of a veth whose near end runs
 * Veer with XDP_TX: a veth delivers XDP_TX frames only to a peer that runs
 * XDP itself. The test bed puts it on the router's side of its links.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int veer_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/*
 * Drops every packet: put in veer_pass's place, it makes the host at the
 * other end of the link one whose every packet is lost, while the link stays
 * up (a host that died silently).
 */
SEC("xdp")
int veer_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
