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
#include "veer_maps.h"

/*
 * Fills fib's smac, dmac and ifindex for a packet of tot_len bytes, from the
 * cache or from the kernel. fib carries the lookup input (family, addresses,
 * l4_protocol, ingress ifindex). Returns a BPF_FIB_LKUP_RET_* code; only
 * successes are remembered.
 */
static __always_inline int veer_nexthop(struct xdp_md *ctx, struct veer_nexthop *cache,
					struct bpf_fib_lookup *fib, __u32 tot_len)
{
	__u64 now = bpf_jiffies64();
	struct bpf_fib_lookup probe;
	int rc;

	if (now < cache->expires) {
		if (tot_len > cache->mtu)
			return BPF_FIB_LKUP_RET_FRAG_NEEDED;
		fib->ifindex = cache->ifindex;
		__builtin_memcpy(fib->dmac, cache->dmac, ETH_ALEN);
		__builtin_memcpy(fib->smac, cache->smac, ETH_ALEN);
		return BPF_FIB_LKUP_RET_SUCCESS;
	}
	/* The MTU is only reported for a packet too big for it: probe with the largest. */
	probe = *fib;
	probe.tot_len = 0xffff;
	fib->tot_len = tot_len;
	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return rc;
	cache->mtu = bpf_fib_lookup(ctx, &probe, sizeof(probe), 0) == BPF_FIB_LKUP_RET_FRAG_NEEDED
			     ? probe.mtu_result : 0xffff;
	cache->ifindex = fib->ifindex;
	__builtin_memcpy(cache->dmac, fib->dmac, ETH_ALEN);
	__builtin_memcpy(cache->smac, fib->smac, ETH_ALEN);
	cache->expires = now + VEER_NEXTHOP_TTL_JIFFIES;
	return BPF_FIB_LKUP_RET_SUCCESS;
}

#endif /* VEER_NEXTHOP_H */
