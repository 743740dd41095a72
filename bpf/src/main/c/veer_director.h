/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The director's maps and steps, shared by the director program and the
 * co-located one: parse a packet to a service (or the ICMP about one), hash
 * its flow to a row, resolve the row's hops and encapsulate the packet to them.
 *
 * Contract: parse() leaves a flow whose key and hash input come from bytes
 * within the lengths its headers declare; choose_hops() fills hops from the
 * service's table only; encapsulate() writes outer headers for exactly the
 * declared packet, or returns a drop verdict.
 */
#ifndef VEER_DIRECTOR_H
#define VEER_DIRECTOR_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "veer_common.h"
#include "veer_maps.h"
#include "veer_parse.h"
#include "veer_siphash.h"
#include "veer_nexthop.h"
#include "veer_flat.h"

struct veer_services_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VEER_SERVICE_SLOTS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct veer_service_slot));
};

/* One entry: the services table, replaced whole on every change. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct veer_services_table);
} services SEC(".maps");

VEER_FLAT_FIND(veer_service_slot, VEER_SERVICE_SLOTS)

/* The table template (veer_maps.h). Tables differ in size (rows, then one entry
 * per backend), hence BPF_F_INNER_MAP; user space sets the template at load time
 * with the same flags its tables have (bpf_map__set_inner_map_fd). */
struct veer_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	/* Sizes, not types: clang 14 emits only a forward BTF declaration for
	 * types reached through the outer map's __array. */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct veer_row));
};

/*
 * Every map that holds the director's state is pinned by name when the loader
 * gives a pin root (the director daemon's pin directory), so that a restarted
 * daemon's program reuses them and forwarding never stops.
 *
 * A table is replaced by building a new inner map and swapping this pointer.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, VEER_MAX_TABLES);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct veer_table);
} hop_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VEER_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct veer_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct veer_director_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VEER_DIR_VERDICTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VEER_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct veer_service_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} service_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VEER_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct veer_backend_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} backend_stats SEC(".maps");

/* What the parser learnt about a packet addressed to a service. */
struct flow {
	struct veer_service_key key;
	struct veer_hash_input hash;	/* source address [+ port] */
	struct veer_l2 l2;
	const void *saddr;	/* the IP header's source, in the packet */
	__u32 l3_len;		/* the IP packet's length as its header declares it */
	__be16 src_port;
	__u8 inner_family;
	__u8 steered_icmp;
};

static __always_inline struct veer_service *find_service(const struct veer_service_key *key)
{
	__u32 zero = 0;
	void *table = bpf_map_lookup_elem(&services, &zero);
	struct veer_service_slot *slot;

	if (!table)
		return NULL;
	slot = veer_service_slot_find(table, key);
	return slot ? &slot->service : NULL;
}

/* Traffic we cannot classify is the host's, unless it is addressed to a VIP. */
static __always_inline int unless_vip(struct flow *f, int verdict)
{
	struct veer_service_key vip = f->key;

	vip.port = 0;
	vip.proto = 0;
	if (find_service(&vip))
		return verdict;
	return VEER_DIR_PASS_NOT_SERVICE;
}

static __always_inline void hash_source(struct flow *f, const void *addr, __u32 addr_len,
					__be16 port)
{
	const __u32 *w = addr;

	/* Word loads from the packet; the words are zero-padded on the stack. */
	f->hash.word[0] = w[0];
	if (addr_len == 16) {
		f->hash.word[0] |= (__u64)w[1] << 32;
		f->hash.word[1] = w[2] | (__u64)w[3] << 32;
	}
	f->hash.len = addr_len;
	f->src_port = port;
}

/* A TCP or UDP header with room bytes of the declared packet from its start. */
static __always_inline int parse_l4(struct flow *f, void *l4, void *data_end, __u32 room, __u8 proto,
				    const void *saddr, __u32 addr_len)
{
	struct veer_ports *ports = l4;

	if (veer_l4_check(l4, data_end, room, proto) < 0 || (void *)(ports + 1) > data_end)
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	f->key.port = ports->dst;
	f->key.proto = proto;
	hash_source(f, saddr, addr_len, ports->src);
	return VEER_CONTINUE;
}

/* ICMP "fragmentation needed" quotes the proxy's reply (VIP -> client): the
 * service is its source, the flow hash is over its destination. */
static __always_inline int parse_icmp4(struct flow *f, void *l4, void *data_end, __u32 room)
{
	struct veer_icmp_hdr *icmp = l4;
	struct iphdr *quoted;
	struct veer_ports *ports;
	__u32 ihl;

	if ((void *)(icmp + 1) > data_end || room < sizeof(*icmp))
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	if (icmp->type != VEER_ICMP_DEST_UNREACH || icmp->code != VEER_ICMP_FRAG_NEEDED)
		return unless_vip(f, VEER_DIR_DROP_VIP_OTHER);
	quoted = (void *)(icmp + 1);
	if ((void *)(quoted + 1) > data_end || room < sizeof(*icmp) + sizeof(*quoted))
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	if (quoted->version != 4 || quoted->ihl < 5)
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	/* Only about a packet the VIP sent, addressed to that VIP. */
	if (quoted->saddr != *(__be32 *)f->key.addr ||
	    (quoted->protocol != IPPROTO_TCP && quoted->protocol != IPPROTO_UDP))
		return unless_vip(f, VEER_DIR_DROP_VIP_OTHER);
	ihl = quoted->ihl * 4;
	ports = (void *)quoted + ihl;
	if ((void *)(ports + 1) > data_end || sizeof(*icmp) + ihl + sizeof(*ports) > room)
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	__builtin_memcpy(f->key.addr, &quoted->saddr, 4);
	f->key.port = ports->src;
	f->key.proto = quoted->protocol;
	hash_source(f, &quoted->daddr, 4, ports->dst);
	f->steered_icmp = 1;
	return VEER_CONTINUE;
}

static __always_inline int parse_icmp6(struct flow *f, void *l4, void *data_end, __u32 room)
{
	struct veer_icmp_hdr *icmp = l4;
	struct ipv6hdr *quoted;
	struct veer_ports *ports;

	if ((void *)(icmp + 1) > data_end || room < sizeof(*icmp))
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	if (icmp->type != VEER_ICMPV6_PKT_TOOBIG)
		return unless_vip(f, VEER_DIR_DROP_VIP_OTHER);
	quoted = (void *)(icmp + 1);
	if ((void *)(quoted + 1) > data_end ||
	    room < sizeof(*icmp) + sizeof(*quoted) + sizeof(*ports))
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	/* Only about a packet the VIP sent, addressed to that VIP. */
	if (!veer_addr16_equal(&quoted->saddr, f->key.addr) ||
	    (quoted->nexthdr != IPPROTO_TCP && quoted->nexthdr != IPPROTO_UDP))
		return unless_vip(f, VEER_DIR_DROP_VIP_OTHER);
	ports = (void *)(quoted + 1);
	if ((void *)(ports + 1) > data_end)
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	__builtin_memcpy(f->key.addr, &quoted->saddr, 16);
	f->key.port = ports->src;
	f->key.proto = quoted->nexthdr;
	hash_source(f, &quoted->daddr, 16, ports->dst);
	f->steered_icmp = 1;
	return VEER_CONTINUE;
}

static __always_inline int parse_ipv4(struct flow *f, void *data, void *data_end)
{
	struct iphdr *ip = veer_l3(data, &f->l2);
	int ihl = veer_ipv4_check(ip, data_end);
	void *l4;

	if (ihl < 0)
		return VEER_DIR_DROP_MALFORMED;
	f->inner_family = VEER_FAMILY_IPV4;
	f->key.family = VEER_FAMILY_IPV4;
	f->saddr = &ip->saddr;
	f->l3_len = bpf_ntohs(ip->tot_len);
	__builtin_memcpy(f->key.addr, &ip->daddr, 4);
	if (veer_ipv4_is_fragment(ip))
		return unless_vip(f, VEER_DIR_DROP_FRAGMENT);
	l4 = (void *)ip + ihl;
	switch (ip->protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return parse_l4(f, l4, data_end, f->l3_len - ihl, ip->protocol, &ip->saddr, 4);
	case IPPROTO_ICMP:
		return parse_icmp4(f, l4, data_end, f->l3_len - ihl);
	default:
		return unless_vip(f, VEER_DIR_DROP_VIP_OTHER);
	}
}

static __always_inline int parse_ipv6(struct flow *f, void *data, void *data_end)
{
	struct ipv6hdr *ip6 = veer_l3(data, &f->l2);
	__u8 nexthdr;
	void *l4;
	int off;

	if (veer_ipv6_check(ip6, data_end) < 0)
		return VEER_DIR_DROP_MALFORMED;
	f->inner_family = VEER_FAMILY_IPV6;
	f->key.family = VEER_FAMILY_IPV6;
	f->saddr = &ip6->saddr;
	f->l3_len = veer_ipv6_len(ip6);
	__builtin_memcpy(f->key.addr, &ip6->daddr, 16);
	off = veer_ipv6_skip_ext(ip6, data_end, &nexthdr);
	if (off < 0)
		return unless_vip(f, VEER_DIR_DROP_MALFORMED);
	if (nexthdr == IPPROTO_FRAGMENT)
		return unless_vip(f, VEER_DIR_DROP_FRAGMENT);
	if (veer_ipv6_is_ext(nexthdr))
		return unless_vip(f, VEER_DIR_DROP_IPV6_EXT);
	l4 = (void *)ip6 + off;
	switch (nexthdr) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return parse_l4(f, l4, data_end, f->l3_len - off, nexthdr, &ip6->saddr, 16);
	case IPPROTO_ICMPV6:
		return parse_icmp6(f, l4, data_end, f->l3_len - off);
	default:
		return unless_vip(f, VEER_DIR_DROP_VIP_OTHER);
	}
}

static __always_inline int parse(struct flow *f, void *data, void *data_end)
{
	if (veer_parse_l2(data, data_end, &f->l2) < 0)
		return VEER_DIR_DROP_MALFORMED;
	if (f->l2.proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(f, data, data_end);
	if (f->l2.proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(f, data, data_end);
	return VEER_DIR_PASS_NOT_IP;
}

/*
 * Whether a packet to a service comes from an address no client can have:
 * unspecified, "this network", loopback, multicast, reserved or broadcast,
 * IPv4-mapped (IPv6), or a VIP of this cluster. Answers to them could only
 * go nowhere or back into the cluster.
 */
static __always_inline int martian_source(const struct flow *f)
{
	struct veer_service_key vip = { .family = f->key.family };
	const __u32 *w = f->saddr;

	if (f->key.family == VEER_FAMILY_IPV4) {
		__u32 first = bpf_ntohl(w[0]) >> 24;

		if (first == 0 || first == 127 || first >= 224)
			return 1;
		__builtin_memcpy(vip.addr, w, 4);
	} else {
		if (((const __u8 *)w)[0] == 0xff)
			return 1;
		if (!w[0] && !w[1] && (w[2] == bpf_htonl(0xffff) ||
				       (!w[2] && (!w[3] || w[3] == bpf_htonl(1)))))
			return 1;
		__builtin_memcpy(vip.addr, w, 16);
	}
	return find_service(&vip) != NULL;
}

/* The hops of a row that share the primary's address family. */
struct hops {
	struct veer_backend *backend[VEER_MAX_HOPS];
	__u32 index[VEER_MAX_HOPS];	/* their backends-map indices */
	__u32 count;
};

/* A table's row as backend positions (0 ends it). A narrow table's entry holds
 * two rows: the even row in its first half. */
static __always_inline int read_row(void *table, __u32 row_index, int narrow,
				    struct veer_row *row)
{
	__u32 entry = narrow ? row_index >> 1 : row_index;
	const struct veer_row *e = bpf_map_lookup_elem(table, &entry);

	if (!e)
		return -1;
	if (!narrow) {
		*row = *e;
		return 0;
	}
	if (row_index & 1) {
		row->hop[0] = e->hop[2];
		row->hop[1] = e->hop[3];
	} else {
		row->hop[0] = e->hop[0];
		row->hop[1] = e->hop[1];
	}
	row->hop[2] = 0;
	row->hop[3] = 0;
	return 0;
}

static __always_inline int resolve_hops(void *table, __u32 list, const struct veer_row *row,
					struct hops *hops)
{
	struct veer_backend *b;
	const __u32 *index;
	__u32 entry;
	int i;

	hops->count = 0;
#pragma unroll
	for (i = 0; i < VEER_MAX_HOPS; i++) {
		if (!row->hop[i])
			break;
		/* The table's own list turns a position into a backends-map index. */
		entry = list + row->hop[i] - 1;
		index = bpf_map_lookup_elem(table, &entry);
		if (!index || !*index)
			break;
		b = bpf_map_lookup_elem(&backends, index);
		if (!b || (i > 0 && b->family != hops->backend[0]->family))
			break;
		if (i == 0 && b->family != VEER_FAMILY_IPV4 && b->family != VEER_FAMILY_IPV6)
			break;
		hops->index[i] = *index;
		hops->backend[i] = b;
		hops->count = i + 1;
	}
	return hops->count ? 0 : -1;
}

/* Everything about the outer headers that is decided before writing them. */
struct encap {
	__u32 ip_len;		/* 20 or 40 */
	__u32 gue_len;		/* UDP + GUE + hop list; 0 for IPIP */
	__u32 hop_len;		/* 4 or 16 */
	__u32 inner_len;	/* the IP packet as its header declares it */
	__u8 outer_family;
	__u8 ipip;
};

static __always_inline int write_hops(void *at, void *data_end, const struct hops *hops,
				      __u32 hop_len)
{
	int i;

#pragma unroll
	for (i = 1; i < VEER_MAX_HOPS; i++) {
		if (i >= hops->count)
			break;
		if (hop_len == 4) {
			if (at + 4 * i > data_end)
				return -1;
			veer_copy_addr(at + 4 * (i - 1), hops->backend[i]->addr, 4);
		} else {
			if (at + 16 * i > data_end)
				return -1;
			veer_copy_addr(at + 16 * (i - 1), hops->backend[i]->addr, 16);
		}
	}
	return 0;
}

static __always_inline int write_gue(void *at, void *data_end, const struct flow *f,
				     const struct encap *e, const struct hops *hops, __u64 hash,
				     __be16 gue_port)
{
	struct udphdr *udp = at;
	__u8 *gue = (void *)(udp + 1);
	__u8 *priv = gue + VEER_GUE_HEADER_LEN;
	__u32 priv_len = e->gue_len - sizeof(*udp) - VEER_GUE_HEADER_LEN;

	if ((void *)(priv + VEER_GUE_PRIV_LEN) > data_end)
		return -1;
	udp->source = bpf_htons(VEER_UDP_SPORT_BASE | ((hash >> 32) & VEER_UDP_SPORT_MASK));
	udp->dest = gue_port;
	udp->len = bpf_htons(e->gue_len + e->inner_len);
	udp->check = 0;	/* allowed for IPv4; for IPv6 see docs/wire-format.md */
	gue[0] = (priv_len / 4) & 0x1f;	/* version 0, C 0, hlen */
	gue[1] = f->inner_family == VEER_FAMILY_IPV4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	gue[2] = 0;
	gue[3] = 0;
	*(__be16 *)priv = bpf_htons(e->hop_len == 4 ? VEER_GUE_TYPE_IPV4_HOPS : VEER_GUE_TYPE_IPV6_HOPS);
	priv[2] = 0;			/* next hop index */
	priv[3] = hops->count - 1;	/* hops after the primary */
	return write_hops(priv + VEER_GUE_PRIV_LEN, data_end, hops, e->hop_len);
}

/* The outer IPv4 header in a few stores, its checksum summed from the values
 * rather than read back from the packet. */
static __always_inline void write_outer_ipv4(struct iphdr *ip, __u32 tot_len, __u8 protocol,
					     __be32 saddr, __be32 daddr)
{
	__be16 version_tos = bpf_htons(0x4500);	/* version 4, IHL 5, TOS 0 */
	__be16 length = bpf_htons(tot_len);
	__be16 frag = bpf_htons(VEER_IP_DF);
	__be16 ttl_protocol = bpf_htons((VEER_OUTER_TTL << 8) | protocol);
	__u32 sum = version_tos + length + frag + ttl_protocol + (saddr & 0xffff) + (saddr >> 16) +
		    (daddr & 0xffff) + (daddr >> 16);

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*(__be16 *)ip = version_tos;
	ip->tot_len = length;
	ip->id = 0;
	ip->frag_off = frag;
	*(__be16 *)&ip->ttl = ttl_protocol;
	ip->check = (__sum16)~sum;
	ip->saddr = saddr;
	ip->daddr = daddr;
}

/* Version 6, traffic class 0, the flow label from the flow hash. */
static __always_inline void write_outer_ipv6(struct ipv6hdr *ip6, __u32 payload_len, __u8 protocol,
					     const __u8 *saddr, const __u8 *daddr, __u64 hash)
{
	*(__be32 *)ip6 = bpf_htonl(0x60000000 | ((hash >> 44) & 0xfffff));
	ip6->payload_len = bpf_htons(payload_len);
	ip6->nexthdr = protocol;
	ip6->hop_limit = VEER_OUTER_TTL;
	__builtin_memcpy(&ip6->saddr, saddr, 16);
	__builtin_memcpy(&ip6->daddr, daddr, 16);
}

static __always_inline __u8 outer_protocol(const struct flow *f, const struct encap *e)
{
	if (!e->ipip)
		return IPPROTO_UDP;
	return f->inner_family == VEER_FAMILY_IPV4 ? IPPROTO_IPIP : IPPROTO_IPV6;
}

/* The hops of the row the flow hash picks in the service's table. */
static __always_inline int choose_hops(const struct veer_service *svc, __u64 hash, struct hops *hops)
{
	struct veer_row row;
	void *inner_map;
	__u32 slot = svc->table_slot;
	__u32 row_index, rows;
	int narrow;

	inner_map = bpf_map_lookup_elem(&hop_tables, &slot);
	if (!inner_map)
		return VEER_DIR_DROP_NO_TABLE;
	narrow = (svc->flags & VEER_SVC_NARROW_ROWS) != 0;
	rows = 1U << (svc->row_bits & 31);
	row_index = (__u32)hash & (rows - 1);
	/* The backends list follows the rows: rows / 2 entries of narrow rows. */
	if (read_row(inner_map, row_index, narrow, &row) ||
	    resolve_hops(inner_map, narrow ? rows >> 1 : rows, &row, hops))
		return VEER_DIR_DROP_NO_BACKEND;
	return VEER_CONTINUE;
}

/* Encapsulates the packet to hops (count >= 1). Returns VEER_CONTINUE with
 * *action set to XDP_TX/XDP_REDIRECT, or a drop verdict with the packet
 * unchanged or already unusable. */
static __always_inline int encapsulate(struct xdp_md *ctx, struct flow *f,
				       const struct veer_service *svc,
				       const struct veer_director_config *cfg, __u64 hash,
				       struct hops hops, int *action)
{
	struct veer_nexthop *next;
	struct encap e = {};
	void *data, *data_end;
	__u32 tot_len;
	const __u8 *src;
	__u8 protocol;
	int rc;

	e.outer_family = hops.backend[0]->family;
	e.ipip = (svc->flags & VEER_SVC_ENCAP_IPIP) != 0;
	if (e.ipip)
		hops.count = 1;
	e.ip_len = e.outer_family == VEER_FAMILY_IPV4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	e.hop_len = e.outer_family == VEER_FAMILY_IPV4 ? 4 : 16;
	if (!e.ipip)
		e.gue_len = sizeof(struct udphdr) + VEER_GUE_HEADER_LEN + VEER_GUE_PRIV_LEN +
			    (hops.count - 1) * e.hop_len;
	e.inner_len = f->l3_len;
	tot_len = e.ip_len + e.gue_len + e.inner_len;

	protocol = outer_protocol(f, &e);
	if (e.outer_family == VEER_FAMILY_IPV4) {
		src = cfg->src4;
		if (!*(__u32 *)cfg->src4)
			return VEER_DIR_DROP_NO_SOURCE;
	} else {
		src = cfg->src6;
		if (!*(__u64 *)cfg->src6 && !*(__u64 *)(cfg->src6 + 8))
			return VEER_DIR_DROP_NO_SOURCE;
	}
	next = &hops.backend[0]->nexthop;
	rc = veer_fib_verdict(veer_nexthop(ctx, next, e.outer_family, protocol, src,
					   hops.backend[0]->addr, tot_len),
			      VEER_DIR_DROP_TOO_BIG, VEER_DIR_DROP_NO_NEIGH, VEER_DIR_DROP_NO_ROUTE);
	if (rc != VEER_CONTINUE)
		return rc;
	/* A VLAN tag is only right on the link the packet came from. */
	if (f->l2.vlan_tpid && next->ifindex != ctx->ingress_ifindex)
		return VEER_DIR_DROP_NO_ROUTE;

	/*
	 * The outer lengths cover exactly the declared packet. What follows it in
	 * the frame (a short frame's Ethernet padding) stays where it was, after
	 * the outer datagram, as a trailer every receiver drops by the IP length:
	 * cutting it off (bpf_xdp_adjust_tail) cost 30 ns per padded frame.
	 */
	if (bpf_xdp_adjust_head(ctx, -(int)(e.ip_len + e.gue_len)))
		return VEER_DIR_DROP_ADJUST;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (veer_write_l2(data, data_end, &f->l2, next->dmac, next->smac,
			  bpf_htons(e.outer_family == VEER_FAMILY_IPV4 ? ETH_P_IP : ETH_P_IPV6)))
		return VEER_DIR_DROP_ADJUST;

	if (e.outer_family == VEER_FAMILY_IPV4) {
		struct iphdr *ip = veer_l3(data, &f->l2);

		if ((void *)(ip + 1) > data_end)
			return VEER_DIR_DROP_ADJUST;
		write_outer_ipv4(ip, tot_len, protocol, *(const __be32 *)cfg->src4,
				 *(const __be32 *)hops.backend[0]->addr);
		if (!e.ipip && write_gue(ip + 1, data_end, f, &e, &hops, hash, cfg->gue_port))
			return VEER_DIR_DROP_ADJUST;
	} else {
		struct ipv6hdr *ip6 = veer_l3(data, &f->l2);

		if ((void *)(ip6 + 1) > data_end)
			return VEER_DIR_DROP_ADJUST;
		write_outer_ipv6(ip6, tot_len - sizeof(*ip6), protocol, cfg->src6,
				 hops.backend[0]->addr, hash);
		if (!e.ipip && write_gue(ip6 + 1, data_end, f, &e, &hops, hash, cfg->gue_port))
			return VEER_DIR_DROP_ADJUST;
	}
	*action = next->ifindex == ctx->ingress_ifindex ? XDP_TX : bpf_redirect(next->ifindex, 0);
	return VEER_CONTINUE;
}

static __always_inline void count_backend(__u32 index, __u64 bytes)
{
	struct veer_backend_stats *s = bpf_map_lookup_elem(&backend_stats, &index);

	if (s) {
		s->packets += 1;
		s->bytes += bytes;
	}
}

static __always_inline void count_service(__u32 slot, __u64 bytes, int dropped)
{
	struct veer_service_stats *s = bpf_map_lookup_elem(&service_stats, &slot);

	if (!s)
		return;
	if (dropped) {
		s->drops += 1;
		return;
	}
	s->packets += 1;
	s->bytes += bytes;
}

/* A packet to a service, parsed, with its flow hash. */
struct steer {
	struct flow f;
	const struct veer_service *svc;
	const struct veer_director_config *cfg;
	__u64 hash;
};

/* The keyed hash of the flow's hash input (SipHash-1-3, the cluster's key). */
static __always_inline __u64 keyed_hash(const struct steer *s)
{
	return veer_siphash13(s->cfg->hash_k0, s->cfg->hash_k1, &s->f.hash);
}

#ifdef VEER_RX_HASH
#include "veer_rx_hash.h"
#else
static __always_inline __u64 flow_hash(struct xdp_md *ctx, const struct steer *s)
{
	return keyed_hash(s);
}
#endif

/*
 * Parses the packet, finds its service and computes its flow hash. Returns
 * VEER_CONTINUE, or the packet's verdict: a packet to a service that is
 * dropped here is counted against the service.
 */
static __always_inline int classify(struct xdp_md *ctx, struct steer *s)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct flow *f = &s->f;
	__u32 zero = 0;
	int verdict;

	verdict = parse(f, data, data_end);
	if (verdict != VEER_CONTINUE)
		return verdict;
	s->svc = find_service(&f->key);
	if (!s->svc) {
		/* Passing a packet for a VIP would make this host route it back
		 * towards the router, which sends it here again. */
		return unless_vip(f, VEER_DIR_DROP_VIP_OTHER);
	}
	if (martian_source(f)) {
		count_service(s->svc->stats_slot, 0, 1);
		return VEER_DIR_DROP_MARTIAN;
	}
	s->cfg = bpf_map_lookup_elem(&config, &zero);
	if (!s->cfg) {
		count_service(s->svc->stats_slot, 0, 1);
		return VEER_DIR_DROP_NO_SOURCE;
	}
	if (s->svc->flags & VEER_SVC_HASH_SRC_PORT) {
		/* The port follows the address in the hash input. */
		if (f->hash.len == 4) {
			__builtin_memcpy((__u8 *)f->hash.word + 4, &f->src_port, 2);
			f->hash.len = 6;
		} else {
			__builtin_memcpy((__u8 *)f->hash.word + 16, &f->src_port, 2);
			f->hash.len = 18;
		}
	}
	s->hash = flow_hash(ctx, s);
	return VEER_CONTINUE;
}

/*
 * Encapsulates the packet to hops and counts it against its service and its
 * first hop, or as a drop. Returns its verdict, with *action set for a packet
 * sent.
 */
static __always_inline int send_to_hops(struct xdp_md *ctx, struct steer *s,
					const struct hops *hops, __u64 len, int *action)
{
	int verdict = encapsulate(ctx, &s->f, s->svc, s->cfg, s->hash, *hops, action);

	if (verdict != VEER_CONTINUE) {
		count_service(s->svc->stats_slot, 0, 1);
		return verdict;
	}
	count_service(s->svc->stats_slot, len, 0);
	count_backend(hops->index[0], len);
	if (s->f.steered_icmp)
		return VEER_DIR_ENCAP_ICMP;
	return (s->svc->flags & VEER_SVC_ENCAP_IPIP) ? VEER_DIR_ENCAP_IPIP : VEER_DIR_ENCAP_GUE;
}

/* What XDP does with a packet of a verdict; action is a sent packet's. */
static __always_inline int director_action(int verdict, int action)
{
	if (verdict == VEER_DIR_ENCAP_GUE || verdict == VEER_DIR_ENCAP_IPIP ||
	    verdict == VEER_DIR_ENCAP_ICMP)
		return action;
	return verdict == VEER_DIR_PASS_NOT_IP || verdict == VEER_DIR_PASS_NOT_SERVICE ? XDP_PASS
										   : XDP_DROP;
}

/* The director program: every packet gets one verdict, counted. */
static __always_inline int run_director(struct xdp_md *ctx)
{
	struct steer s = {};
	struct hops hops;
	int verdict, action = XDP_DROP;

	verdict = classify(ctx, &s);
	if (verdict == VEER_CONTINUE) {
		verdict = choose_hops(s.svc, s.hash, &hops);
		if (verdict == VEER_CONTINUE)
			verdict = send_to_hops(ctx, &s, &hops,
					       ctx->data_end - ctx->data, &action);
		else
			count_service(s.svc->stats_slot, 0, 1);
	}
	veer_count(&verdicts, verdict);
	return director_action(verdict, action);
}

#endif /* VEER_DIRECTOR_H */
