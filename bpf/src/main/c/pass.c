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

char LICENSE[] SEC("license") = "Dual BSD/GPL";
