/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The proxy's maps and steps, shared by the proxy program and the co-located
 * one: accept GUE only from allow-listed peers and addressed to this host,
 * decide whether this host owns the inner packet's flow (decide(), which also
 * judges a packet that came without a tunnel), deliver it or send it on to the
 * next hop, and keep the flow table of the host's connections (track_flows()).
 *
 * A program that shares these maps with another process (co-located mode)
 * defines VEER_PROXY_PINNING as a pinning attribute before including this.
 */
#ifndef VEER_PROXY_H
#define VEER_PROXY_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "veer_common.h"
#include "veer_maps.h"
#include "veer_parse.h"
#include "veer_nexthop.h"
#include "veer_flat.h"

#ifndef VEER_PROXY_PINNING
#define VEER_PROXY_PINNING
#endif

struct veer_allow_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VEER_PEER_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct veer_peer_slot));
};

/*
 * One entry: the allow-list of directors and proxies, replaced whole on
 * change. Pinned by name when the loader gives a pin root (the agent's pin
 * directory), like `served`: a restarted agent's program starts with the
 * tables its predecessor had, rather than dropping every packet until a
 * coordinator answers.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct veer_allow_table);
} allowed SEC(".maps");

VEER_FLAT_FIND(veer_peer_slot, VEER_PEER_SLOTS)

struct veer_served_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VEER_PEER_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct veer_served_slot));
};

/* One entry: what this proxy serves, (VIP, port, protocol) and each VIP alone
 * (port and protocol 0, for ICMP about it), replaced whole on change. Inner
 * packets to anything else are not delivered. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct veer_served_table);
} served SEC(".maps");

VEER_FLAT_FIND(veer_served_slot, VEER_PEER_SLOTS)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct veer_proxy_config);
	VEER_PROXY_PINNING
} proxy_config SEC(".maps");

/* The namespace's connections being opened, and accepted and not closed. */
_Static_assert(sizeof(struct veer_flow4) == sizeof(((struct bpf_sock_tuple *)0)->ipv4), "flow4");
_Static_assert(sizeof(struct veer_flow6) == sizeof(((struct bpf_sock_tuple *)0)->ipv6), "flow6");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VEER_FLOWS_DEFAULT);
	__type(key, struct veer_flow4);
	__type(value, struct veer_flow);
	VEER_PROXY_PINNING
} flows4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VEER_FLOWS_DEFAULT);
	__type(key, struct veer_flow6);
	__type(value, struct veer_flow);
	VEER_PROXY_PINNING
} flows6 SEC(".maps");

/*
 * Whether the flow table holds every connection of the namespace, so that a
 * miss proves "not ours" without the kernel's socket lookup: the count of
 * failed inserts (the sockops program's) and, written by user space only
 * after it has filled the table since, that count + 1. Two entries, so that
 * neither side ever writes the other's word.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
	VEER_PROXY_PINNING
} flows_state SEC(".maps");

static __always_inline int flows_trusted(void)
{
	__u32 failures_key = VEER_FLOWS_FAILURES, trusted_key = VEER_FLOWS_TRUSTED;
	__u64 *failures = bpf_map_lookup_elem(&flows_state, &failures_key);
	__u64 *trusted = bpf_map_lookup_elem(&flows_state, &trusted_key);

	return failures && trusted && *trusted == *failures + 1;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VEER_PRX_VERDICTS);
	__type(key, __u32);
	__type(value, __u64);
	VEER_PROXY_PINNING
} proxy_verdicts SEC(".maps");

/* Offsets (from the frame start) and fields of an accepted GUE packet. */
struct tunnel {
	struct veer_l2 l2;
	__u32 udp_off;
	__u32 inner_off;	/* inner IP header */
	__u32 end_off;		/* end of the UDP datagram as the headers declare it */
	__u8 outer_family;
	__u8 inner_family;
	__u8 next_hop;
	__u8 hop_count;
	__u8 hop_len;
	/* What the inner packet is for, asked of `served` before it is delivered:
	 * its destination address, and port and protocol (0 for ICMP). */
	__u8 served_proto;
	__be16 served_port;
	__u32 daddr_off;	/* the inner destination address, from the frame start */
};

/* The allow-list entry of a peer (its cached next hop), or NULL. */
static __always_inline struct veer_nexthop *allowed_peer(const void *addr, __u8 family)
{
	struct veer_peer_key key = { .family = family };
	struct veer_peer_slot *slot;
	__u32 zero = 0;
	void *table;

	if (family == VEER_FAMILY_IPV4)
		__builtin_memcpy(key.addr, addr, 4);
	else
		__builtin_memcpy(key.addr, addr, 16);
	table = bpf_map_lookup_elem(&allowed, &zero);
	if (!table)
		return NULL;
	slot = veer_peer_slot_find(table, &key);
	return slot ? &slot->nexthop : NULL;
}

/*
 * An IPv6 packet whose next header is not UDP. Directors never send GUE
 * behind extension headers or in fragments, so such a packet for the GUE port
 * is dropped whoever sent it: passing it would let the host reassemble or
 * parse it past the allow-list. Everything else is the host's.
 */
static __always_inline int ipv6_behind_ext(struct ipv6hdr *ip6, void *data_end, __be16 gue_port)
{
	struct veer_ipv6_frag *frag;
	struct udphdr *udp;
	__u32 len = veer_ipv6_len(ip6);
	__u8 nexthdr;
	int off = veer_ipv6_skip_ext(ip6, data_end, &nexthdr);

	if (off < 0)
		return VEER_PRX_DROP_MALFORMED;
	if (nexthdr == IPPROTO_FRAGMENT) {
		frag = (void *)ip6 + off;
		if ((void *)(frag + 1) > data_end || off + sizeof(*frag) > len)
			return VEER_PRX_DROP_MALFORMED;
		/* Later fragments carry no UDP header; without the first the host
		 * cannot reassemble them. */
		if ((frag->frag_off & bpf_htons(0xfff8)) || frag->nexthdr != IPPROTO_UDP)
			return VEER_PRX_PASS_NOT_GUE;
		udp = (void *)(frag + 1);
		if ((void *)(udp + 1) > data_end || off + sizeof(*frag) + sizeof(*udp) > len)
			return VEER_PRX_DROP_MALFORMED;
		return udp->dest == gue_port ? VEER_PRX_DROP_FRAGMENT : VEER_PRX_PASS_NOT_GUE;
	}
	/* More extension headers than are walked: the port cannot be seen. */
	if (veer_ipv6_is_ext(nexthdr))
		return VEER_PRX_DROP_MALFORMED;
	if (nexthdr != IPPROTO_UDP)
		return VEER_PRX_PASS_NOT_GUE;
	udp = (void *)ip6 + off;
	if ((void *)(udp + 1) > data_end || off + sizeof(*udp) > len)
		return VEER_PRX_DROP_MALFORMED;
	return udp->dest == gue_port ? VEER_PRX_DROP_MALFORMED : VEER_PRX_PASS_NOT_GUE;
}

/*
 * Finds the UDP header of a packet for the GUE port and checks its sender (in
 * the allow-list), its destination (this proxy) and its lengths: the UDP
 * length is the IP packet's, so the datagram ends where the IP header says.
 */
static __always_inline int parse_outer(void *data, void *data_end, struct tunnel *t,
				       const struct veer_proxy_config *cfg)
{
	void *l3 = veer_l3(data, &t->l2);
	struct udphdr *udp;

	if (t->l2.proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		int ihl = veer_ipv4_check(ip, data_end);

		if (ihl < 0)
			return VEER_PRX_DROP_MALFORMED;
		if (ip->protocol != IPPROTO_UDP)
			return VEER_PRX_PASS_NOT_GUE;
		/* Later fragments carry no UDP header: the host reassembles them. */
		if (ip->frag_off & bpf_htons(VEER_IP_OFFSET))
			return VEER_PRX_PASS_NOT_GUE;
		udp = l3 + ihl;
		if ((void *)(udp + 1) > data_end || bpf_ntohs(ip->tot_len) < ihl + sizeof(*udp))
			return VEER_PRX_DROP_MALFORMED;
		if (udp->dest != cfg->gue_port)
			return VEER_PRX_PASS_NOT_GUE;
		if (!allowed_peer(&ip->saddr, VEER_FAMILY_IPV4))
			return VEER_PRX_DROP_NOT_ALLOWED;
		if (ip->frag_off & bpf_htons(VEER_IP_MF))
			return VEER_PRX_DROP_FRAGMENT;
		if (bpf_ntohs(udp->len) != bpf_ntohs(ip->tot_len) - ihl)
			return VEER_PRX_DROP_MALFORMED;
		if (ip->daddr != *(const __be32 *)cfg->addr4)
			return VEER_PRX_DROP_NOT_LOCAL;
		t->outer_family = VEER_FAMILY_IPV4;
		t->udp_off = (t->l2.len & 0x1f) + ihl;
	} else if (t->l2.proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;

		if (veer_ipv6_check(ip6, data_end) < 0)
			return VEER_PRX_DROP_MALFORMED;
		if (ip6->nexthdr != IPPROTO_UDP)
			return ipv6_behind_ext(ip6, data_end, cfg->gue_port);
		udp = (void *)(ip6 + 1);
		if ((void *)(udp + 1) > data_end || bpf_ntohs(ip6->payload_len) < sizeof(*udp))
			return VEER_PRX_DROP_MALFORMED;
		if (udp->dest != cfg->gue_port)
			return VEER_PRX_PASS_NOT_GUE;
		if (!allowed_peer(&ip6->saddr, VEER_FAMILY_IPV6))
			return VEER_PRX_DROP_NOT_ALLOWED;
		if (udp->len != ip6->payload_len)
			return VEER_PRX_DROP_MALFORMED;
		if (!veer_addr16_equal(&ip6->daddr, cfg->addr6))
			return VEER_PRX_DROP_NOT_LOCAL;
		t->outer_family = VEER_FAMILY_IPV6;
		t->udp_off = (t->l2.len & 0x1f) + sizeof(*ip6);
	} else {
		return VEER_PRX_PASS_NOT_GUE;
	}
	t->end_off = t->udp_off + bpf_ntohs(udp->len);
	return VEER_CONTINUE;
}

/* Checks the GUE header and the hop list that follows it, within the datagram. */
static __always_inline int parse_gue(void *data, void *data_end, struct tunnel *t)
{
	__u8 *gue = data + (t->udp_off & 0x7f) + sizeof(struct udphdr);
	__u8 *priv = gue + VEER_GUE_HEADER_LEN;
	__u32 hlen;
	__u16 type;

	if ((void *)(priv + VEER_GUE_PRIV_LEN) > data_end ||
	    t->udp_off + sizeof(struct udphdr) + VEER_GUE_HEADER_LEN + VEER_GUE_PRIV_LEN > t->end_off)
		return VEER_PRX_DROP_MALFORMED;
	if (gue[0] & 0xe0)	/* version != 0, or a control message */
		return VEER_PRX_DROP_GUE_VERSION;
	if (gue[1] == IPPROTO_IPIP)
		t->inner_family = VEER_FAMILY_IPV4;
	else if (gue[1] == IPPROTO_IPV6)
		t->inner_family = VEER_FAMILY_IPV6;
	else
		return VEER_PRX_DROP_GUE_PROTO;
	hlen = (gue[0] & 0x1f) * 4;
	type = bpf_ntohs(*(__be16 *)priv);
	if (type == VEER_GUE_TYPE_IPV4_HOPS && t->outer_family == VEER_FAMILY_IPV4)
		t->hop_len = 4;
	else if (type == VEER_GUE_TYPE_IPV6_HOPS && t->outer_family == VEER_FAMILY_IPV6)
		t->hop_len = 16;
	else
		return VEER_PRX_DROP_GUE_TYPE;
	t->next_hop = priv[2];
	t->hop_count = priv[3];
	if (t->hop_count > VEER_MAX_HOPS - 1 || t->next_hop > t->hop_count)
		return VEER_PRX_DROP_GUE_HOPS;
	if (hlen != VEER_GUE_PRIV_LEN + t->hop_count * t->hop_len)
		return VEER_PRX_DROP_GUE_LENGTH;
	t->inner_off = t->udp_off + sizeof(struct udphdr) + VEER_GUE_HEADER_LEN + hlen;
	if (t->inner_off > t->end_off)
		return VEER_PRX_DROP_MALFORMED;
	return VEER_CONTINUE;
}

/* Whether a (VIP, port, protocol) key is in `served`. */
static __always_inline int served_key(const struct veer_service_key *key)
{
	__u32 zero = 0;
	void *table = bpf_map_lookup_elem(&served, &zero);

	return table && veer_served_slot_find(table, key);
}

/* Whether (VIP, port, protocol) is served here; port and protocol 0 ask for the VIP alone. */
static __always_inline int is_served(const void *vip, __u8 family, __be16 port, __u8 proto)
{
	struct veer_service_key key = { .port = port, .proto = proto, .family = family };

	if (family == VEER_FAMILY_IPV4)
		__builtin_memcpy(key.addr, vip, 4);
	else
		__builtin_memcpy(key.addr, vip, 16);
	return served_key(&key);
}

static __always_inline int flow_live(const struct veer_flow *flow)
{
	return flow && (!flow->expires_ns || bpf_ktime_get_coarse_ns() < flow->expires_ns);
}

/*
 * Checks the inner packet: it fills the rest of the datagram exactly, and it
 * is TCP, UDP or ICMP with sound headers. Then decides whether this host owns
 * a TCP flow, and records what the packet is for, so that a delivery can ask
 * `served` (served_here); other traffic is for delivery.
 */
static __always_inline int decide(struct xdp_md *ctx, void *data, void *data_end,
				  struct tunnel *t)
{
	void *inner = data + (t->inner_off & 0xff);
	struct bpf_sock_tuple tuple = {};
	struct veer_ports *ports;
	struct bpf_sock *sk;
	struct tcphdr *th;
	__u32 tuple_len, room;
	__u8 proto, icmp, served_proto = 0;
	__be16 port = 0;
	int cookie = -1;
	void *l4;

	if (t->inner_family == VEER_FAMILY_IPV4) {
		struct iphdr *ip = inner;
		int ihl = veer_ipv4_check(ip, data_end);

		if (ihl < 0 || t->inner_off + bpf_ntohs(ip->tot_len) != t->end_off)
			return VEER_PRX_DROP_MALFORMED;
		/* Directors never send fragments (they drop those for a VIP). */
		if (veer_ipv4_is_fragment(ip))
			return VEER_PRX_DROP_FRAGMENT;
		proto = ip->protocol;
		icmp = IPPROTO_ICMP;
		l4 = inner + ihl;
		room = bpf_ntohs(ip->tot_len) - ihl;
		tuple.ipv4.saddr = ip->saddr;
		tuple.ipv4.daddr = ip->daddr;
		tuple_len = sizeof(tuple.ipv4);
	} else {
		struct ipv6hdr *ip6 = inner;
		int off;

		if (veer_ipv6_check(ip6, data_end) < 0 ||
		    t->inner_off + veer_ipv6_len(ip6) != t->end_off)
			return VEER_PRX_DROP_MALFORMED;
		/* The director walks these too: such packets can belong to a flow. */
		off = veer_ipv6_skip_ext(ip6, data_end, &proto);
		if (off < 0)
			return VEER_PRX_DROP_MALFORMED;
		if (proto == IPPROTO_FRAGMENT)
			return VEER_PRX_DROP_FRAGMENT;
		icmp = IPPROTO_ICMPV6;
		l4 = (void *)ip6 + off;
		room = veer_ipv6_len(ip6) - off;
		__builtin_memcpy(tuple.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(tuple.ipv6.daddr, &ip6->daddr, 16);
		tuple_len = sizeof(tuple.ipv6);
	}
	/* ICMP is asked about the VIP alone (port and protocol 0). */
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		ports = l4;
		if (veer_l4_check(l4, data_end, room, proto) < 0 || (void *)(ports + 1) > data_end)
			return VEER_PRX_DROP_MALFORMED;
		port = ports->dst;
		served_proto = proto;
	} else if (proto != icmp) {
		return VEER_PRX_DROP_NOT_SERVED;
	}
	th = l4;
	if (proto == IPPROTO_TCP) {
		if ((void *)(th + 1) > data_end)
			return VEER_PRX_DROP_MALFORMED;
		if (t->inner_family == VEER_FAMILY_IPV4) {
			tuple.ipv4.sport = th->source;
			tuple.ipv4.dport = th->dest;
		} else {
			tuple.ipv6.sport = th->source;
			tuple.ipv6.dport = th->dest;
		}
		/* The flow table keeps only connections to what is served here (the
		 * sockops program asks `served`), so a hit needs no other check.
		 * One call site per map: the verifier inlines a lookup only in a map it
		 * knows (clang keeps two calls for this form; an if/else became one). */
		if (!(th->syn && !th->ack) &&
		    (t->inner_family == VEER_FAMILY_IPV4
			     ? flow_live(bpf_map_lookup_elem(&flows4, &tuple))
			     : flow_live(bpf_map_lookup_elem(&flows6, &tuple))))
			return VEER_PRX_DELIVER_FLOW;
	}
	t->served_port = port;
	t->served_proto = served_proto;
	t->daddr_off = t->inner_off + (t->inner_family == VEER_FAMILY_IPV4
					       ? __builtin_offsetof(struct iphdr, daddr)
					       : __builtin_offsetof(struct ipv6hdr, daddr));
	if (proto != IPPROTO_TCP)
		return VEER_PRX_DELIVER_NOT_TCP;
	/* Checked above; again for the verifier, which does not tie it to proto. */
	if ((void *)(th + 1) > data_end)
		return VEER_PRX_DROP_MALFORMED;
	if (th->syn && !th->ack)
		return VEER_PRX_DELIVER_SYN;
	/* A table that holds every connection proves a miss not ours, but for a
	 * reset: it can be a client's answer to the challenge ACK of a TIME_WAIT
	 * socket (those are not in the table) whose tuple the client's new SYN
	 * reuses, and only if it reaches that socket is the next SYN accepted. */
	if (flows_trusted() && !th->rst)
		return t->next_hop < t->hop_count ? VEER_PRX_FORWARD : VEER_PRX_DELIVER_LAST_HOP;

	sk = bpf_skc_lookup_tcp(ctx, &tuple, tuple_len, BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		if (sk->state != BPF_TCP_LISTEN) {
			bpf_sk_release(sk);
			return VEER_PRX_DELIVER_SOCKET;
		}
		if (th->ack && !th->syn && !th->rst) {
			if (t->inner_family == VEER_FAMILY_IPV4)
				cookie = bpf_tcp_check_syncookie(sk, inner, sizeof(struct iphdr),
								 th, sizeof(*th));
			else
				cookie = bpf_tcp_check_syncookie(sk, inner, sizeof(struct ipv6hdr),
								 th, sizeof(*th));
		}
		bpf_sk_release(sk);
		if (cookie == 0)
			return VEER_PRX_DELIVER_SYNCOOKIE;
	}
	return t->next_hop < t->hop_count ? VEER_PRX_FORWARD : VEER_PRX_DELIVER_LAST_HOP;
}

/*
 * Whether the inner packet decide() let through is for something served here.
 * Asked only before a delivery: a packet sent on is the next hop's to judge,
 * so a proxy that has not yet heard that it serves a new service still passes
 * on what it does not own.
 */
static __always_inline int served_here(struct xdp_md *ctx, const struct tunnel *t)
{
	struct veer_service_key key = {
		.port = t->served_port, .proto = t->served_proto, .family = t->inner_family
	};
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	void *daddr = data + (t->daddr_off & 0x1ff);

	if (t->inner_family == VEER_FAMILY_IPV4) {
		if (daddr + 4 > data_end)
			return 0;
		__builtin_memcpy(key.addr, daddr, 4);
	} else {
		if (daddr + 16 > data_end)
			return 0;
		__builtin_memcpy(key.addr, daddr, 16);
	}
	return served_key(&key);
}

/* Cuts what follows the datagram (padding, or garbage) off the frame, so that
 * nothing past it is sent on to another proxy. */
static __always_inline int trim_to_datagram(struct xdp_md *ctx, const struct tunnel *t)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int excess = (int)(data_end - data) - (int)t->end_off;

	if (excess > 0 && bpf_xdp_adjust_tail(ctx, -excess))
		return VEER_BAD;
	return 0;
}

/*
 * Second chance: the packet goes to the next hop of its list, from this
 * proxy's own address (its outer destination, checked on arrival). A next hop
 * that is this proxy or the packet's sender would only bounce it back.
 * Returns VEER_CONTINUE with *action set.
 */
static __always_inline int forward(struct xdp_md *ctx, struct tunnel *t,
				   const struct veer_proxy_config *cfg, int *action)
{
	void *data, *data_end, *l3;
	__u8 *priv, *hop;
	struct veer_nexthop *next;
	struct ethhdr *eth;
	int rc;

	if (trim_to_datagram(ctx, t))
		return VEER_PRX_DROP_MALFORMED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	l3 = veer_l3(data, &t->l2);
	priv = data + (t->udp_off & 0x7f) + sizeof(struct udphdr) + VEER_GUE_HEADER_LEN;
	hop = priv + VEER_GUE_PRIV_LEN + (t->next_hop & 3) * t->hop_len;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return VEER_PRX_DROP_MALFORMED;
	if (t->outer_family == VEER_FAMILY_IPV4) {
		struct iphdr *ip = l3;
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end || (void *)(hop + 4) > data_end)
			return VEER_PRX_DROP_MALFORMED;
		if (ip->ihl != 5)	/* directors send no options */
			return VEER_PRX_DROP_MALFORMED;
		if (*(__be32 *)hop == ip->saddr || *(__be32 *)hop == *(const __be32 *)cfg->addr4)
			return VEER_PRX_DROP_HOP_LOOP;
		next = allowed_peer(hop, VEER_FAMILY_IPV4);
		if (!next)
			return VEER_PRX_DROP_HOP_NOT_ALLOWED;
		rc = veer_fib_verdict(veer_nexthop(ctx, next, VEER_FAMILY_IPV4, IPPROTO_UDP, cfg->addr4,
						   hop, bpf_ntohs(ip->tot_len)),
				      VEER_PRX_DROP_TOO_BIG, VEER_PRX_DROP_NO_NEIGH, VEER_PRX_DROP_NO_ROUTE);
		if (rc != VEER_CONTINUE)
			return rc;
		ip->saddr = *(const __be32 *)cfg->addr4;
		__builtin_memcpy(&ip->daddr, hop, 4);
		ip->check = 0;
		ip->check = veer_ipv4_csum(ip);
		/* Now stale if the sender set one; zero is valid for UDP over IPv4. */
		udp->check = 0;
	} else {
		struct ipv6hdr *ip6 = l3;
		struct udphdr *udp = (void *)(ip6 + 1);

		if ((void *)(udp + 1) > data_end || (void *)(hop + 16) > data_end)
			return VEER_PRX_DROP_MALFORMED;
		if (veer_addr16_equal(hop, &ip6->saddr) || veer_addr16_equal(hop, cfg->addr6))
			return VEER_PRX_DROP_HOP_LOOP;
		next = allowed_peer(hop, VEER_FAMILY_IPV6);
		if (!next)
			return VEER_PRX_DROP_HOP_NOT_ALLOWED;
		rc = veer_fib_verdict(veer_nexthop(ctx, next, VEER_FAMILY_IPV6, IPPROTO_UDP, cfg->addr6,
						   hop, veer_ipv6_len(ip6)),
				      VEER_PRX_DROP_TOO_BIG, VEER_PRX_DROP_NO_NEIGH, VEER_PRX_DROP_NO_ROUTE);
		if (rc != VEER_CONTINUE)
			return rc;
		__builtin_memcpy(&ip6->saddr, cfg->addr6, 16);
		__builtin_memcpy(&ip6->daddr, hop, 16);
		udp->check = 0;
	}
	if ((void *)(priv + VEER_GUE_PRIV_LEN) > data_end)
		return VEER_PRX_DROP_MALFORMED;
	/* A VLAN tag is only right on the link the packet came from. */
	if (t->l2.vlan_tpid && next->ifindex != ctx->ingress_ifindex)
		return VEER_PRX_DROP_NO_ROUTE;
	priv[2] = t->next_hop + 1;
	veer_copy_mac(eth->h_dest, next->dmac);
	veer_copy_mac(eth->h_source, next->smac);
	*action = next->ifindex == ctx->ingress_ifindex ? XDP_TX : bpf_redirect(next->ifindex, 0);
	return VEER_CONTINUE;
}

static __always_inline int is_delivery(int verdict)
{
	return verdict == VEER_PRX_DELIVER_SYN || verdict == VEER_PRX_DELIVER_FLOW ||
	       verdict == VEER_PRX_DELIVER_SOCKET ||
	       verdict == VEER_PRX_DELIVER_SYNCOOKIE || verdict == VEER_PRX_DELIVER_LAST_HOP ||
	       verdict == VEER_PRX_DELIVER_NOT_TCP;
}

/*
 * Strips the outer IP, UDP and GUE headers, keeping the link layer: what is
 * left is the link header and the inner packet, which is exactly the rest of
 * the datagram (checked). Bytes past the datagram stay after it, as Ethernet
 * padding does: the kernel's IP input trims a frame to its IP length, and
 * cutting them here (bpf_xdp_adjust_tail) would cost 30 ns per such frame.
 */
static __always_inline int deliver(struct xdp_md *ctx, struct tunnel *t)
{
	__u32 strip = (t->inner_off - (t->l2.len & 0x1f)) & 0xff;
	__be16 proto = bpf_htons(t->inner_family == VEER_FAMILY_IPV4 ? ETH_P_IP : ETH_P_IPV6);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	void *to = data + strip;

	/* Moves the link header (MACs and any tag) up to the inner packet, in
	 * words: it cannot overlap its new place, which is 36 bytes or more on. */
	if (data + 18 > data_end || to + 18 > data_end)
		return VEER_BAD;
	*(__u64 *)to = *(__u64 *)data;
	*(__u32 *)(to + 8) = *(__u32 *)(data + 8);
	if (t->l2.vlan_tpid) {
		*(__u32 *)(to + 12) = *(__u32 *)(data + 12);
		*(__be16 *)(to + 16) = proto;
	} else {
		*(__be16 *)(to + 12) = proto;
	}
	return bpf_xdp_adjust_head(ctx, (int)strip);
}

/*
 * Handles a packet as a proxy: GUE for this host is delivered or sent on.
 * Returns the verdict, with *action set for a packet sent on.
 */
static __always_inline int handle_tunnel(struct xdp_md *ctx, int *action)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const struct veer_proxy_config *cfg;
	struct tunnel t = {};
	__u32 zero = 0;
	int verdict;

	cfg = bpf_map_lookup_elem(&proxy_config, &zero);
	if (!cfg)
		return VEER_PRX_PASS_NOT_GUE;
	if (veer_parse_l2(data, data_end, &t.l2) < 0)
		return VEER_PRX_DROP_MALFORMED;
	verdict = parse_outer(data, data_end, &t, cfg);
	if (verdict != VEER_CONTINUE)
		return verdict;
	verdict = parse_gue(data, data_end, &t);
	if (verdict != VEER_CONTINUE)
		return verdict;
	verdict = decide(ctx, data, data_end, &t);
	if (verdict == VEER_PRX_FORWARD) {
		int rc = forward(ctx, &t, cfg, action);

		return rc != VEER_CONTINUE ? rc : verdict;
	}
	if (is_delivery(verdict) && verdict != VEER_PRX_DELIVER_FLOW && !served_here(ctx, &t))
		return VEER_PRX_DROP_NOT_SERVED;
	if (is_delivery(verdict) && deliver(ctx, &t))
		return VEER_PRX_DROP_MALFORMED;
	return verdict;
}

/* What XDP does with a packet of a verdict; action is a forwarded packet's. */
static __always_inline int proxy_action(int verdict, int action)
{
	if (verdict == VEER_PRX_FORWARD)
		return action;
	if (is_delivery(verdict) || verdict == VEER_PRX_PASS_NOT_GUE)
		return XDP_PASS;
	return XDP_DROP;
}

/* A context field, read where it is: the verifier refuses context loads
 * through a pointer that clang computed by merging two branches. */
#define SKOPS_READ(field) (*(volatile __u32 *)&skops->field)

/*
 * The flow table's key for a socket, from its side: remote is the client.
 * IPv4 clients of a dual-stack socket are keyed as IPv4, as their packets are.
 */
static __always_inline void *flow_key(struct bpf_sock_ops *skops, struct bpf_sock_tuple *key)
{
	__u32 family = SKOPS_READ(family);
	__be16 remote_port = bpf_htons(bpf_ntohl(SKOPS_READ(remote_port)));
	__be16 local_port = bpf_htons(SKOPS_READ(local_port));
	__be32 remote[4], local[4];

	if (family == AF_INET) {
		key->ipv4.saddr = SKOPS_READ(remote_ip4);
		key->ipv4.daddr = SKOPS_READ(local_ip4);
		key->ipv4.sport = remote_port;
		key->ipv4.dport = local_port;
		return &flows4;
	}
	if (family != AF_INET6)
		return NULL;
	remote[0] = SKOPS_READ(remote_ip6[0]);
	remote[1] = SKOPS_READ(remote_ip6[1]);
	remote[2] = SKOPS_READ(remote_ip6[2]);
	remote[3] = SKOPS_READ(remote_ip6[3]);
	local[0] = SKOPS_READ(local_ip6[0]);
	local[1] = SKOPS_READ(local_ip6[1]);
	local[2] = SKOPS_READ(local_ip6[2]);
	local[3] = SKOPS_READ(local_ip6[3]);
	if (!(remote[0] | remote[1]) && remote[2] == bpf_htonl(0xffff)) {
		key->ipv4.saddr = remote[3];
		key->ipv4.daddr = local[3];
		key->ipv4.sport = remote_port;
		key->ipv4.dport = local_port;
		return &flows4;
	}
	__builtin_memcpy(key->ipv6.saddr, remote, 16);
	__builtin_memcpy(key->ipv6.daddr, local, 16);
	key->ipv6.sport = remote_port;
	key->ipv6.dport = local_port;
	return &flows6;
}

/*
 * Puts the socket's connection in the table if it is to something served here
 * (others are not the table's business: their tunnelled packets are dropped
 * whatever the table says), or counts a failure: then the table may lack a
 * connection, and misses take the socket lookup again.
 */
static __always_inline int flows_put(struct bpf_sock_ops *skops, __u64 expires_ns)
{
	struct bpf_sock_tuple key = {};
	struct veer_flow flow = { .expires_ns = expires_ns };
	__u32 failures_key = VEER_FLOWS_FAILURES;
	void *flows = flow_key(skops, &key);
	__u64 *failures;

	if (!flows)
		return -1;
	if (flows == &flows4 ? !is_served(&key.ipv4.daddr, VEER_FAMILY_IPV4, key.ipv4.dport, IPPROTO_TCP)
			     : !is_served(key.ipv6.daddr, VEER_FAMILY_IPV6, key.ipv6.dport, IPPROTO_TCP))
		return 0;
	if (!bpf_map_update_elem(flows, &key, &flow, BPF_ANY))
		return 0;
	failures = bpf_map_lookup_elem(&flows_state, &failures_key);
	if (failures)
		__sync_fetch_and_add(failures, 1);
	return -1;
}

/*
 * Keeps flows4/flows6 complete for the proxy's namespace's connections to
 * served endpoints, so that a miss proves a packet not ours:
 * - a connection being opened enters when the kernel answers its SYN, for
 *   as long as the kernel retries its SYN-ACK: a request socket through
 *   RWND_INIT, a SYN cookie through the header-option callback of a listener
 *   opened while this program runs (one opened before cannot tell, and user
 *   space trusts the table only once such listeners are gone);
 * - it is there for good once established, and leaves when the socket
 *   closes. Connections older than the table are not in it: user space
 *   trusts the table only once they are gone (misses take the socket lookup).
 * TIME_WAIT is left out: what reaches it is the retransmitted FIN of a peer
 * that is closing, and a reset answers that as well.
 */
static __always_inline int track_flows(struct bpf_sock_ops *skops)
{
	const struct veer_proxy_config *cfg;
	struct bpf_sock_tuple key = {};
	__u32 zero = 0;
	void *flows;

	cfg = bpf_map_lookup_elem(&proxy_config, &zero);
	if (!cfg || !cfg->netns_cookie || bpf_get_netns_cookie(skops) != cfg->netns_cookie)
		return 1;
	switch (SKOPS_READ(op)) {
	case BPF_SOCK_OPS_RWND_INIT:
		/* Also called for our own connects, with a full socket. */
		if (!SKOPS_READ(is_fullsock))
			flows_put(skops, bpf_ktime_get_coarse_ns() + cfg->opening_s * 1000000000ULL);
		break;
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		/* So that it tells of the SYN cookies it answers with (below). */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						 BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		/* A SYN answered with a cookie gets a request socket without a
		 * listener, which RWND_INIT never sees. No option space is taken. */
		if (SKOPS_READ(args[0]) & BPF_WRITE_HDR_TCP_SYNACK_COOKIE)
			flows_put(skops, bpf_ktime_get_coarse_ns() + cfg->opening_s * 1000000000ULL);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		flows_put(skops, 0);
		/* Even without an entry: closing removes a stale one (a handshake's).
		 * The header callbacks it inherited from its listener are dropped. */
		bpf_sock_ops_cb_flags_set(skops, (skops->bpf_sock_ops_cb_flags &
						  ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG) |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (SKOPS_READ(args[1]) != BPF_TCP_CLOSE)
			break;
		flows = flow_key(skops, &key);
		if (flows)
			bpf_map_delete_elem(flows, &key);
		break;
	}
	return 1;
}

#endif /* VEER_PROXY_H */
