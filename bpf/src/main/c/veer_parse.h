/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Header parsing shared by the director and proxy programs.
 *
 * The contract of every helper here:
 * - each access to the packet is preceded by its bounds check against
 *   data_end (what the verifier needs);
 * - where a header declares a length (IPv4 total length, IPv6 payload
 *   length), what lies behind it is checked against that length as well, so
 *   that no byte past the declared packet (Ethernet padding, garbage) is
 *   ever used (what the packet means);
 * - a helper returns a length or offset >= 0 when the header is usable and
 *   VEER_BAD when it is not, and never writes to the packet.
 */
#ifndef VEER_PARSE_H
#define VEER_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "veer_common.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#define VEER_IP_MF 0x2000
#define VEER_IP_DF 0x4000
#define VEER_IP_OFFSET 0x1fff
#define VEER_BAD (-1)
#define VEER_TCP_MIN_LEN 20
#define VEER_UDP_LEN 8

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

/* Fills l2 and returns its length, or VEER_BAD when the frame is too short. */
static __always_inline int veer_parse_l2(void *data, void *data_end, struct veer_l2 *l2)
{
	struct ethhdr *eth = data;
	struct veer_vlan_hdr *vlan;

	if ((void *)(eth + 1) > data_end)
		return VEER_BAD;
	l2->len = sizeof(*eth);
	l2->proto = eth->h_proto;
	l2->vlan_tpid = 0;
	l2->vlan_tci = 0;
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)) {
		vlan = (void *)(eth + 1);
		if ((void *)(vlan + 1) > data_end)
			return VEER_BAD;
		l2->vlan_tpid = eth->h_proto;
		l2->vlan_tci = vlan->tci;
		l2->proto = vlan->encap_proto;
		l2->len += sizeof(*vlan);
	}
	return l2->len;
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

/* Validates an IPv4 header: version, IHL, a total length that covers the
 * header and ends within the frame. Returns the header length. */
static __always_inline int veer_ipv4_check(struct iphdr *ip, void *data_end)
{
	__u32 ihl, tot;

	if ((void *)(ip + 1) > data_end)
		return VEER_BAD;
	if (ip->version != 4 || ip->ihl < 5)
		return VEER_BAD;
	ihl = ip->ihl * 4;
	tot = bpf_ntohs(ip->tot_len);
	if (tot < ihl || (void *)ip + tot > data_end)
		return VEER_BAD;
	return ihl;
}

static __always_inline int veer_ipv4_is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(VEER_IP_MF | VEER_IP_OFFSET)) != 0;
}

/* Validates an IPv6 header: version, and a payload that ends within the
 * frame. Returns the header length. */
static __always_inline int veer_ipv6_check(struct ipv6hdr *ip6, void *data_end)
{
	if ((void *)(ip6 + 1) > data_end)
		return VEER_BAD;
	if (ip6->version != 6)
		return VEER_BAD;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > data_end)
		return VEER_BAD;
	return sizeof(*ip6);
}

/* The declared length of a checked IPv6 packet, header included. */
static __always_inline __u32 veer_ipv6_len(const struct ipv6hdr *ip6)
{
	return sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
}

/*
 * Validates the TCP or UDP header at l4, which has room bytes of the declared
 * packet from its start: a UDP header in full; a TCP header with a data
 * offset of at least 5 words whose header (options included) fits. Returns
 * the header length.
 */
static __always_inline int veer_l4_check(void *l4, void *data_end, __u32 room, __u8 proto)
{
	struct tcphdr *th = l4;
	__u32 doff;

	if (proto == IPPROTO_UDP) {
		if (l4 + VEER_UDP_LEN > data_end || room < VEER_UDP_LEN)
			return VEER_BAD;
		return VEER_UDP_LEN;
	}
	if ((void *)(th + 1) > data_end || room < VEER_TCP_MIN_LEN)
		return VEER_BAD;
	doff = th->doff * 4;
	if (doff < VEER_TCP_MIN_LEN || doff > room)
		return VEER_BAD;
	return doff;
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
 * headers of a checked IPv6 packet. Returns the offset from ip6 of the first
 * other header, whose type goes to *nexthdr (a fragment header, or still an
 * extension header when there were more), or VEER_BAD when the packet (as
 * declared) ends inside them.
 */
static __always_inline int veer_ipv6_skip_ext(struct ipv6hdr *ip6, void *data_end, __u8 *nexthdr)
{
	struct ipv6_opt_hdr *ext;
	__u32 len = veer_ipv6_len(ip6);
	__u32 off = sizeof(*ip6);
	__u8 nh = ip6->nexthdr;
	int i;

#pragma unroll
	for (i = 0; i < VEER_MAX_EXT_HEADERS; i++) {
		if (!veer_ipv6_is_ext(nh))
			break;
		ext = (void *)ip6 + off;
		if ((void *)(ext + 1) > data_end || off + sizeof(*ext) > len)
			return VEER_BAD;
		nh = ext->nexthdr;
		off += (ext->hdrlen + 1) * 8;
	}
	if (off > len)
		return VEER_BAD;
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
