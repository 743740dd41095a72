/* SPDX-License-Identifier: Apache-2.0 */
/* Header parsing shared by the director and proxy programs. Every access is
 * preceded by its bounds check against data_end. */
#ifndef VEER_PARSE_H
#define VEER_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "veer_common.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#define VEER_IP_MF 0x2000
#define VEER_IP_DF 0x4000
#define VEER_IP_OFFSET 0x1fff

struct veer_vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* What is kept of the link layer when headers are rebuilt: one optional
 * 802.1Q/802.1ad tag. */
struct veer_l2 {
	__u32 len;		/* 14, or 18 with a tag */
	__be16 proto;		/* ethertype of the L3 header */
	__be16 vlan_tpid;	/* 0 when untagged */
	__be16 vlan_tci;
};

/* Returns 0 and fills l2, or -1 when the frame is too short. */
static __always_inline int veer_parse_l2(void *data, void *data_end, struct veer_l2 *l2)
{
	struct ethhdr *eth = data;
	struct veer_vlan_hdr *vlan;

	if ((void *)(eth + 1) > data_end)
		return -1;
	l2->len = sizeof(*eth);
	l2->proto = eth->h_proto;
	l2->vlan_tpid = 0;
	l2->vlan_tci = 0;
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)) {
		vlan = (void *)(eth + 1);
		if ((void *)(vlan + 1) > data_end)
			return -1;
		l2->vlan_tpid = eth->h_proto;
		l2->vlan_tci = vlan->tci;
		l2->proto = vlan->encap_proto;
		l2->len += sizeof(*vlan);
	}
	return 0;
}

/* Start of the L3 header. The mask bounds the offset for the verifier even
 * after the length has been spilled to the stack (it is 14 or 18). */
static __always_inline void *veer_l3(void *data, const struct veer_l2 *l2)
{
	return data + (l2->len & 0x1f);
}

/* Writes the link-layer header in front of an L3 header of type proto; the
 * MACs are in packet or map memory (see veer_copy_mac). */
static __always_inline int veer_write_l2(void *data, void *data_end, const struct veer_l2 *l2,
					 const __u8 *dmac, const __u8 *smac, __be16 proto)
{
	struct ethhdr *eth = data;
	struct veer_vlan_hdr *vlan;

	if ((void *)(eth + 1) > data_end)
		return -1;
	veer_copy_mac(eth->h_dest, dmac);
	veer_copy_mac(eth->h_source, smac);
	if (!l2->vlan_tpid) {
		eth->h_proto = proto;
		return 0;
	}
	vlan = (void *)(eth + 1);
	if ((void *)(vlan + 1) > data_end)
		return -1;
	eth->h_proto = l2->vlan_tpid;
	vlan->tci = l2->vlan_tci;
	vlan->encap_proto = proto;
	return 0;
}

/* Validates an IPv4 header: version, IHL, total length within the frame.
 * Returns the header length, or 0 when malformed. */
static __always_inline __u32 veer_ipv4_check(struct iphdr *ip, void *data_end)
{
	__u32 ihl, tot;

	if ((void *)(ip + 1) > data_end)
		return 0;
	if (ip->version != 4 || ip->ihl < 5)
		return 0;
	ihl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < ihl || (void *)ip + tot > data_end)
		return 0;
	return ihl;
}

static __always_inline int veer_ipv4_is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(VEER_IP_MF | VEER_IP_OFFSET)) != 0;
}

/* Validates an IPv6 header: version and payload length within the frame. */
static __always_inline int veer_ipv6_check(struct ipv6hdr *ip6, void *data_end)
{
	if ((void *)(ip6 + 1) > data_end)
		return -1;
	if (ip6->version != 6)
		return -1;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > data_end)
		return -1;
	return 0;
}

/* IPv6 extension headers walked before giving up on a packet. */
#define VEER_MAX_EXT_HEADERS 4

static __always_inline int veer_ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS;
}

/*
 * Skips up to VEER_MAX_EXT_HEADERS hop-by-hop, routing and destination-options
 * headers. Returns the offset from ip6 of the first other header, whose type
 * goes to *nexthdr (a fragment header, or still an extension header when there
 * were more), or -1 when the packet ends inside them.
 */
static __always_inline int veer_ipv6_skip_ext(struct ipv6hdr *ip6, void *data_end, __u8 *nexthdr)
{
	struct ipv6_opt_hdr *ext;
	__u32 off = sizeof(*ip6);
	__u8 nh = ip6->nexthdr;
	int i;

#pragma unroll
	for (i = 0; i < VEER_MAX_EXT_HEADERS; i++) {
		if (!veer_ipv6_is_ext(nh))
			break;
		ext = (void *)ip6 + off;
		if ((void *)(ext + 1) > data_end)
			return -1;
		nh = ext->nexthdr;
		off += (ext->hdrlen + 1) * 8;
	}
	*nexthdr = nh;
	return off;
}

/* An IPv6 fragment header: the next header and the offset of this fragment. */
struct veer_ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;	/* offset in 8-byte units << 3, flags in the low bits */
	__be32 id;
};

static __always_inline int veer_addr16_equal(const void *a, const void *b)
{
	const __u32 *x = a, *y = b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* One's-complement checksum of a 20-byte IPv4 header (check field zero). */
static __always_inline __u16 veer_ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* ICMP and ICMPv6 share this 8-byte header; the quoted packet follows. Kept
 * here because linux/icmp.h drags in libc headers. */
struct veer_icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};
#define VEER_ICMP_DEST_UNREACH 3
#define VEER_ICMP_FRAG_NEEDED 4
#define VEER_ICMPV6_PKT_TOOBIG 2

/* Ports sit in the first four bytes of both TCP and UDP headers. */
struct veer_ports {
	__be16 src;
	__be16 dst;
};

#endif /* VEER_PARSE_H */
