/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Next hops from the kernel's FIB and neighbour tables, remembered beside the
 * address they lead to for VEER_NEXTHOP_TTL_JIFFIES. bpf_fib_lookup costs
 * more than a whole encapsulation (155 ns here); asking it once per TTL per
 * backend keeps the data plane in step with routing and neighbour changes
 * within 0.1 s (HZ=1000) to 1 s (HZ=100). Jiffies, because reading a clock
 * costs 30-40 ns per packet on these machines.
 */
#ifndef VEER_NEXTHOP_H
#define VEER_NEXTHOP_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "veer_common.h"
#include "veer_maps.h"

/* Asks the kernel, and remembers a successful answer with the route's MTU. */
static __always_inline int veer_nexthop_refresh(struct xdp_md *ctx, struct veer_nexthop *cache,
						__u8 family, __u8 l4_protocol, const void *src,
						const void *dst, __u32 tot_len, __u64 now)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_fib_lookup probe;
	int rc;

	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = l4_protocol;
	if (family == VEER_FAMILY_IPV4) {
		fib.family = AF_INET;
		__builtin_memcpy(&fib.ipv4_src, src, 4);
		__builtin_memcpy(&fib.ipv4_dst, dst, 4);
	} else {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, src, 16);
		__builtin_memcpy(fib.ipv6_dst, dst, 16);
	}
	/* The MTU is only reported for a packet too big for it: probe with the largest. */
	probe = fib;
	probe.tot_len = 0xffff;
	fib.tot_len = tot_len;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	cache->mtu = bpf_fib_lookup(ctx, &probe, sizeof(probe), 0) == BPF_FIB_LKUP_RET_FRAG_NEEDED
			     ? probe.mtu_result : 0xffff;
	cache->ifindex = fib.ifindex;
	__builtin_memcpy(cache->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(cache->smac, fib.smac, ETH_ALEN);
	cache->expires = now + VEER_NEXTHOP_TTL_JIFFIES;
	return BPF_FIB_LKUP_RET_SUCCESS;
}

/*
 * Makes cache hold the route (egress ifindex, MACs) for a packet of tot_len
 * bytes from src to dst (VEER_FAMILY_* addresses), asking the kernel when the
 * cached answer has expired. Returns a BPF_FIB_LKUP_RET_* code; only
 * successes are remembered.
 */
static __always_inline int veer_nexthop(struct xdp_md *ctx, struct veer_nexthop *cache, __u8 family,
					__u8 l4_protocol, const void *src, const void *dst,
					__u32 tot_len)
{
	__u64 now = bpf_jiffies64();

	if (now >= cache->expires)
		return veer_nexthop_refresh(ctx, cache, family, l4_protocol, src, dst, tot_len, now);
	if (tot_len > cache->mtu)
		return BPF_FIB_LKUP_RET_FRAG_NEEDED;
	return BPF_FIB_LKUP_RET_SUCCESS;
}

/* VEER_CONTINUE for a route found, else the caller's verdict for the kernel's answer. */
static __always_inline int veer_fib_verdict(int rc, int too_big, int no_neigh, int no_route)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		return VEER_CONTINUE;
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return too_big;
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return no_neigh;
	default:
		return no_route;
	}
}

#endif /* VEER_NEXTHOP_H */
