// SPDX-License-Identifier: Apache-2.0
/*
 * The test bed's stand-in for NICs that hash for RSS with Toeplitz and one
 * key on every host (ethtool -X hkey): a tc program on the router's links to
 * the directors that sets each TCP or UDP packet's skb hash to Toeplitz over
 * its addresses and ports. A veth hands that hash to XDP as its RX hash, as a
 * NIC hands its own. Other packets get none, so the receiving veth computes
 * the kernel's, as a NIC's hash without ports would be.
 *
 * The key is the RSS specification's example key, which the test bed's
 * clusters are configured with.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "veer_toeplitz.h"

static const __u8 rss_key[VEER_TOEPLITZ_KEY_LEN] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67,
	0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb,
	0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
	0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

/* The tuple of a TCP or UDP packet (not a fragment) in hash order; its length or 0. */
static __always_inline __u32 tuple(struct __sk_buff *skb, __u8 *in)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u16 *ports;

	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->ihl != 5 ||
		    (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) ||
		    (ip->frag_off & bpf_htons(0x3fff)))
			return 0;
		ports = (void *)(ip + 1);
		if ((void *)(ports + 2) > data_end)
			return 0;
		__builtin_memcpy(in, &ip->saddr, 4);
		__builtin_memcpy(in + 4, &ip->daddr, 4);
		__builtin_memcpy(in + 8, ports, 4);
		return 12;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end ||
		    (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP))
			return 0;
		ports = (void *)(ip6 + 1);
		if ((void *)(ports + 2) > data_end)
			return 0;
		__builtin_memcpy(in, &ip6->saddr, 16);
		__builtin_memcpy(in + 16, &ip6->daddr, 16);
		__builtin_memcpy(in + 32, ports, 4);
		return 36;
	}
	return 0;
}

SEC("tc")
int veer_nic_rss(struct __sk_buff *skb)
{
	__u8 in[VEER_TOEPLITZ_MAX_INPUT] = {};
	__u32 len = tuple(skb, in);

	if (len)
		bpf_set_hash(skb, toeplitz(rss_key, in, len));
	else
		bpf_set_hash_invalid(skb);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
