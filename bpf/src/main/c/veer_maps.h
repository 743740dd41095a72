/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Map key/value layouts shared by the BPF programs. The Java codecs in
 * dev.veer.bpf.dataplane mirror them field by field; BpfObject checks the
 * sizes against the loaded maps, so a layout change fails loudly at load.
 * Addresses are 16 bytes; IPv4 uses the first 4, the rest stay zero.
 */
#ifndef VEER_MAPS_H
#define VEER_MAPS_H

#include <linux/types.h>
#include "veer_abi.h"

#define VEER_C_ENUM(name, value) VEER_##name = (value),
enum { VEER_CONSTANTS(VEER_C_ENUM) };
enum veer_director_verdict { VEER_DIRECTOR_VERDICTS(VEER_C_ENUM) VEER_DIR_VERDICTS };
enum veer_proxy_verdict { VEER_PROXY_VERDICTS(VEER_C_ENUM) VEER_PRX_VERDICTS };
enum veer_colocated_verdict { VEER_COLOCATED_VERDICTS(VEER_C_ENUM) VEER_COL_VERDICTS };
enum veer_rx_hash_source { VEER_RX_HASH_SOURCES(VEER_C_ENUM) VEER_RXH_SOURCES };

/* services: (VIP, port, protocol) -> service (a veer_flat.h table). An entry with port 0 and
 * protocol 0 marks the address itself as a VIP, so fragments and unparsable
 * packets to it are dropped rather than passed to the host. 20 bytes. */
struct veer_service_key {
	__u8 addr[16];
	__be16 port;
	__u8 proto;
	__u8 family;
} __attribute__((aligned(4)));	/* read as five words by veer_flat.h */

/* 12 bytes. */
struct veer_service {
	__u32 table_slot;	/* index into the tables map-in-map */
	__u32 stats_slot;	/* index into service_stats */
	__u8 row_bits;		/* the table has 1 << row_bits rows */
	__u8 flags;		/* VEER_SVC_* */
	__u16 reserved;
};

/* One slot of the director's services table (veer_flat.h). 36 bytes. */
struct veer_service_slot {
	struct veer_service_key key;
	__u32 used;
	struct veer_service service;
};

/*
 * A director's table (an inner map of 8-byte entries): 2^row_bits rows, then
 * one entry per backend the rows name. A row lists hops primary first as
 * positions in that list, 1 for the first backend, 0 ending the row; the
 * entry after the rows at offset i holds the backends-map index of the backend
 * at position i + 1 (in its first 4 bytes). A wide table's entry is one row of
 * VEER_MAX_HOPS hops; a narrow one's (VEER_SVC_NARROW_ROWS) holds two rows of
 * VEER_NARROW_HOPS, so a table of 2 hops costs 4 bytes a row (array entries
 * take 8 bytes whatever their size). Positions are per table, so a director
 * holds up to VEER_MAX_BACKENDS distinct backends, not 2^16.
 */
struct veer_row {
	__u16 hop[VEER_MAX_HOPS];
};	/* 8 bytes */

/* The kernel's answer for the way to an address (see veer_nexthop.h). Zero
 * means "not asked yet"; the data plane fills it in. 32 bytes. */
struct veer_nexthop {
	__u64 expires;		/* jiffies after which to ask the kernel again */
	__u32 ifindex;
	__u32 mtu;
	__u8 dmac[6];
	__u8 smac[6];
	__u32 reserved;
};

/* backends: index -> address. Index 0 is never used. 56 bytes. */
struct veer_backend {
	struct veer_nexthop nexthop;
	__u8 addr[16];
	__u8 family;
	__u8 reserved[7];
};

/* Director configuration, a single entry. 40 bytes. */
struct veer_director_config {
	__u64 hash_k0;		/* SipHash key: little-endian halves */
	__u64 hash_k1;
	__u8 src4[4];		/* director's outer IPv4 source; 0 = none */
	__u8 src6[16];		/* director's outer IPv6 source; :: = none */
	__be16 gue_port;
	__u16 reserved;
};

/* The NICs' Toeplitz key, a single entry (RX-hash mode): the director
 * computes the NIC's hash itself for ICMP about a flow. 40 bytes. */
struct veer_toeplitz_key {
	__u8 key[VEER_TOEPLITZ_KEY_LEN];
};

/* Per-CPU, per service. 24 bytes. */
struct veer_service_stats {
	__u64 packets;		/* encapsulated and sent */
	__u64 bytes;		/* their size as received */
	__u64 drops;		/* matched the service but dropped */
};

/* Per backend: what the directors sent it as the primary. */
struct veer_backend_stats {
	__u64 packets;		/* encapsulated to it */
	__u64 bytes;		/* their size as received */
};

/* Proxy allow-list key: directors and proxies that may send GUE, and be
 * forwarded to; the value is the next hop towards them. 20 bytes. */
struct veer_peer_key {
	__u8 addr[16];
	__u8 family;
	__u8 reserved[3];
} __attribute__((aligned(4)));	/* read as five words by veer_flat.h */

/* One slot of the proxy's allow-list table (veer_flat.h). 56 bytes. */
struct veer_peer_slot {
	struct veer_peer_key key;
	__u32 used;
	struct veer_nexthop nexthop;	/* the way to this peer, for forwarding */
};

/* Proxy flow-table keys: laid out as struct bpf_sock_tuple's ipv4 / ipv6
 * members, remote (client) first, as the inner packet has them. */
struct veer_flow4 {
	__be32 remote;
	__be32 local;
	__be16 remote_port;
	__be16 local_port;
};

struct veer_flow6 {
	__be32 remote[4];
	__be32 local[4];
	__be16 remote_port;
	__be16 local_port;
};

/* Proxy configuration, a single entry. 40 bytes. */
struct veer_proxy_config {
	__be16 gue_port;
	__u16 reserved;
	__u32 opening_s;	/* how long a connection being opened stays in the flow table */
	__u64 netns_cookie;	/* the flow table keeps this namespace's sockets; 0: none */
	__u8 addr4[4];		/* the proxy's own address: GUE must be sent to it; 0 = none */
	__u8 addr6[16];		/* the same for IPv6; :: = none */
	__u32 reserved2;
};

/* One slot of the proxy's table of what it serves (veer_flat.h), keyed like
 * the director's services. 24 bytes. */
struct veer_served_slot {
	struct veer_service_key key;
	__u32 used;
};

/* A flow-table entry. 8 bytes. */
struct veer_flow {
	__u64 expires_ns;	/* 0: established; else a handshake, until then (coarse monotonic) */
};


#endif /* VEER_MAPS_H */
