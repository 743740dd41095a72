// SPDX-License-Identifier: Apache-2.0
/*
 * Veer co-located: one host is director and proxy at once, on one interface
 * ("be the load balancer yourself"). GUE for this host is handled as the
 * proxy program does. A packet to a service is delivered here, as it came,
 * when this host owns its flow: the flow table or a local socket says so, or
 * it opens one (a SYN, or UDP or ICMP) and this host is its row's primary.
 * Otherwise it is encapsulated to its row's hops as the director program
 * does, this host left out of them: it has just been asked.
 *
 * The maps are pinned by name: the director daemon loads this program and
 * owns the interface; the proxy agent loads it too, sharing the maps, to
 * keep the allow-list, what is served and the flow table.
 */
#define VEER_PROXY_PINNING __uint(pinning, LIBBPF_PIN_BY_NAME);

#include "veer_director.h"
#include "veer_proxy.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VEER_COL_VERDICTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} colocated_verdicts SEC(".maps");

/* Whether a backend is this host: the address its proxy half is sent GUE on. */
static __always_inline int is_self(const struct veer_backend *b,
				   const struct veer_proxy_config *pc)
{
	if (b->family == VEER_FAMILY_IPV4)
		return *(const __u32 *)b->addr == *(const __u32 *)pc->addr4;
	return veer_addr16_equal(b->addr, pc->addr6);
}

/* Takes this host out of the hops (a row names a backend once). Returns
 * where it was, or -1. */
static __always_inline int drop_self(struct hops *hops, const struct veer_proxy_config *pc)
{
	int i, at = -1;

#pragma unroll
	for (i = 0; i < VEER_MAX_HOPS; i++) {
		if (i < hops->count && at < 0 && is_self(hops->backend[i], pc))
			at = i;
	}
	if (at < 0)
		return -1;
#pragma unroll
	for (i = 0; i < VEER_MAX_HOPS - 1; i++) {
		if (i >= at) {
			hops->backend[i] = hops->backend[i + 1];
			hops->index[i] = hops->index[i + 1];
		}
	}
	hops->count -= 1;
	return at;
}

/*
 * Whether this host owns the packet's flow, asked as a proxy asks of a
 * tunnelled packet: the packet is described as a tunnel's inner packet with
 * one hop left, so that "not ours" reads VEER_PRX_FORWARD.
 */
static __always_inline int owner(struct xdp_md *ctx, const struct flow *f, struct tunnel *t)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	t->l2 = f->l2;
	t->inner_off = f->l2.len & 0x1f;
	t->end_off = t->inner_off + f->l3_len;
	t->inner_family = f->inner_family;
	t->hop_count = 1;
	return decide(ctx, data, data_end, t);
}

/*
 * The verdict for a packet to a service: a co-located one (delivered here)
 * or, as *director, a director verdict. *action is set for a packet sent.
 */
static __always_inline int steer_colocated(struct xdp_md *ctx, struct steer *s,
					   const struct veer_proxy_config *pc, int *director,
					   int *action)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct tunnel t = {};
	struct hops hops;
	int own = owner(ctx, &s->f, &t);
	int opens = own == VEER_PRX_DELIVER_SYN || own == VEER_PRX_DELIVER_NOT_TCP;
	int verdict, self;

	if (own == VEER_PRX_DELIVER_FLOW)
		return VEER_COL_DELIVER_FLOW;
	if ((own == VEER_PRX_DELIVER_SOCKET || own == VEER_PRX_DELIVER_SYNCOOKIE) &&
	    served_here(ctx, &t))
		return own == VEER_PRX_DELIVER_SOCKET ? VEER_COL_DELIVER_SOCKET
						      : VEER_COL_DELIVER_SYNCOOKIE;
	verdict = choose_hops(s->svc, s->hash, &hops);
	if (verdict != VEER_CONTINUE) {
		count_service(s->svc->stats_slot, 0, 1);
		*director = verdict;
		return VEER_CONTINUE;
	}
	self = drop_self(&hops, pc);
	if (self == 0 && opens && served_here(ctx, &t))
		return VEER_COL_DELIVER_PRIMARY;
	if (!hops.count && self >= 0 && served_here(ctx, &t))
		return VEER_COL_DELIVER_LAST_HOP;
	if (!hops.count) {
		count_service(s->svc->stats_slot, 0, 1);
		*director = VEER_DIR_DROP_NO_BACKEND;
		return VEER_CONTINUE;
	}
	*director = send_to_hops(ctx, s, &hops, data_end - data, action);
	return VEER_CONTINUE;
}

SEC("xdp")
int veer_colocated(struct xdp_md *ctx)
{
	const struct veer_proxy_config *pc;
	struct steer s = {};
	__u32 zero = 0;
	int verdict, local, action = XDP_DROP;

	verdict = handle_tunnel(ctx, &action);
	if (verdict != VEER_PRX_PASS_NOT_GUE) {
		veer_count(&proxy_verdicts, verdict);
		return proxy_action(verdict, action);
	}
	verdict = classify(ctx, &s);
	pc = bpf_map_lookup_elem(&proxy_config, &zero);
	if (verdict == VEER_CONTINUE && !pc)
		verdict = VEER_DIR_DROP_NO_SOURCE;	/* an array's entry: never */
	if (verdict == VEER_CONTINUE) {
		local = steer_colocated(ctx, &s, pc, &verdict, &action);
		if (local != VEER_CONTINUE) {
			veer_count(&colocated_verdicts, local);
			return XDP_PASS;
		}
	}
	veer_count(&verdicts, verdict);
	return director_action(verdict, action);
}

SEC("sockops")
int veer_flows(struct bpf_sock_ops *skops)
{
	return track_flows(skops);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
