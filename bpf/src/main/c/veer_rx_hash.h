/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RX-hash mode of the director: the flow hash is the one the NIC computed for
 * RSS, read through the device-bound kfunc, where every director's NIC hashes
 * (source address, destination address, source port, destination port) with
 * Toeplitz and one key. ICMP about a flow has no such hash: the director
 * computes Toeplitz over the flow's tuple itself, with the same key.
 *
 * Contract: flow_hash() returns the 32-bit hash in both halves of the 64-bit
 * flow hash (row, outer source port and flow label come from it as in keyed
 * mode), exactly what FlowHash computes in Java for the same flow; a packet
 * whose NIC hash does not cover the ports gets the keyed hash, and is counted.
 */
#ifndef VEER_RX_HASH_H
#define VEER_RX_HASH_H

#include "veer_toeplitz.h"

/* The kernel's, from include/net/xdp.h (not UAPI). */
enum xdp_rss_hash_type {
	VEER_XDP_RSS_L4 = 1U << 3,	/* the hash covers the ports */
};

extern int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, __u32 *hash,
				    enum xdp_rss_hash_type *rss_type) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct veer_toeplitz_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} toeplitz_key SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VEER_RXH_SOURCES);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rx_hash_sources SEC(".maps");

/* Toeplitz over the flow's tuple in the client's direction: for ICMP, the
 * quoted reply's addresses and ports, turned round by the parser. */
static __always_inline __u32 tuple_toeplitz(const struct flow *f, const __u8 *key)
{
	__u8 in[VEER_TOEPLITZ_MAX_INPUT] = {};

	if (f->key.family == VEER_FAMILY_IPV4) {
		__builtin_memcpy(in, f->hash.word, 4);
		__builtin_memcpy(in + 4, f->key.addr, 4);
		__builtin_memcpy(in + 8, &f->src_port, 2);
		__builtin_memcpy(in + 10, &f->key.port, 2);
		return toeplitz(key, in, 12);
	}
	__builtin_memcpy(in, f->hash.word, 16);
	__builtin_memcpy(in + 16, f->key.addr, 16);
	__builtin_memcpy(in + 32, &f->src_port, 2);
	__builtin_memcpy(in + 34, &f->key.port, 2);
	return toeplitz(key, in, 36);
}

static __always_inline __u64 both_halves(__u32 hash)
{
	return (__u64)hash << 32 | hash;
}

static __always_inline __u64 flow_hash(struct xdp_md *ctx, const struct steer *s)
{
	enum xdp_rss_hash_type type = 0;
	const struct veer_toeplitz_key *k;
	__u32 zero = 0, hash = 0;

	/* A service that hashes the address alone: no NIC hash is over that. */
	if (!(s->svc->flags & VEER_SVC_HASH_SRC_PORT))
		return keyed_hash(s);
	if (s->f.steered_icmp) {
		k = bpf_map_lookup_elem(&toeplitz_key, &zero);
		if (!k)
			return keyed_hash(s);	/* an array's entry: never */
		veer_count(&rx_hash_sources, VEER_RXH_QUOTED);
		return both_halves(tuple_toeplitz(&s->f, k->key));
	}
	if (bpf_xdp_metadata_rx_hash(ctx, &hash, &type)) {
		veer_count(&rx_hash_sources, VEER_RXH_UNAVAILABLE);
		return keyed_hash(s);
	}
	if (!(type & VEER_XDP_RSS_L4)) {
		veer_count(&rx_hash_sources, VEER_RXH_NO_PORTS);
		return keyed_hash(s);
	}
	veer_count(&rx_hash_sources, VEER_RXH_NIC);
	return both_halves(hash);
}

#endif /* VEER_RX_HASH_H */
