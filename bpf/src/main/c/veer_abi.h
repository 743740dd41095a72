/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contract between Veer's BPF programs and the Java side: constants, map
 * value layouts and verdict codes. This file is the one place they are named;
 * the build runs it through the C preprocessor (VeerAbi.java.in) to produce the
 * Java constants, so the two sides cannot drift apart.
 *
 * Plain C only here (no kernel headers): it is also read by the Java generator.
 */
#ifndef VEER_ABI_H
#define VEER_ABI_H

/* X(name, value) lists, expanded into C enums and Java constants. */
#define VEER_CONSTANTS(X)                                                     \
	X(GUE_PORT_DEFAULT, 19523)   /* GLB's GUE destination port */          \
	X(MAX_HOPS, 4)               /* hops per wide table row: primary + 3 */ \
	X(NARROW_HOPS, 2)            /* hops per narrow table row */            \
	X(MAX_SERVICES, 16384)                                                \
	X(MAX_TABLES, 16384)         /* table slots (outer map entries) */     \
	X(MAX_BACKENDS, 262144)      /* backend index 0 is "no backend" */     \
	X(MAX_ALLOWED, 4096)         /* proxy allow-list entries */            \
	X(SERVICE_SLOTS, 131072)     /* slots of the director's services table */\
	X(PEER_SLOTS, 16384)         /* slots of a proxy's allowed/served table */\
	X(FLAT_PROBES, 8)            /* a key is within this many slots */     \
	X(MIN_ROW_BITS, 4)                                                    \
	X(MAX_ROW_BITS, 20)                                                   \
	X(DEFAULT_ROW_BITS, 16)                                               \
	X(FAMILY_IPV4, 4)                                                     \
	X(FAMILY_IPV6, 6)                                                     \
	X(SVC_HASH_SRC_PORT, 1)      /* service flag: hash source port too */  \
	X(SVC_ENCAP_IPIP, 2)         /* service flag: IPIP/ip6ip6, no hops */  \
	X(SVC_NARROW_ROWS, 4)        /* service flag: its table is narrow */   \
	X(GUE_TYPE_IPV4_HOPS, 0)     /* GLB's private data type */             \
	X(GUE_TYPE_IPV6_HOPS, 0x5636) /* Veer's extension: 16-byte hops */     \
	X(GUE_HEADER_LEN, 4)                                                  \
	X(GUE_PRIV_LEN, 4)           /* type, next hop index, hop count */     \
	X(OUTER_TTL, 64)                                                      \
	X(UDP_SPORT_BASE, 0xc000)    /* outer UDP source ports 49152..65535 */ \
	X(UDP_SPORT_MASK, 0x3fff)                                             \
	X(NEXTHOP_TTL_JIFFIES, 100)  /* FIB answers are reused for 0.1-1 s (HZ 1000-100) */ \
	X(FLOWS_DEFAULT, 65536)      /* proxy flow-table entries per family */ \
	X(FLOWS_FAILURES, 0)         /* flows_state: inserts that failed */    \
	X(FLOWS_TRUSTED, 1)          /* flows_state: failures + 1 while the table is complete */ \
	X(TOEPLITZ_KEY_LEN, 40)      /* the NICs' RSS key, in RX-hash mode */

/*
 * Director verdicts. One per-CPU counter each. Every packet gets exactly one.
 */
#define VEER_DIRECTOR_VERDICTS(X)                                             \
	X(DIR_ENCAP_GUE, 0)          /* encapsulated in GUE and sent */        \
	X(DIR_ENCAP_IPIP, 1)         /* encapsulated in IPIP/ip6ip6 and sent */\
	X(DIR_ENCAP_ICMP, 2)         /* ICMP too-big steered by inner tuple */ \
	X(DIR_PASS_NOT_IP, 3)        /* ARP, LLDP, ...: host traffic */        \
	X(DIR_PASS_NOT_SERVICE, 4)   /* IP, but no service matches */          \
	X(DIR_DROP_MALFORMED, 5)     /* truncated or inconsistent headers */   \
	X(DIR_DROP_FRAGMENT, 6)      /* fragment addressed to a VIP */         \
	X(DIR_DROP_IPV6_EXT, 7)      /* too many IPv6 extension headers (VIP) */\
	X(DIR_DROP_NO_TABLE, 8)      /* service without an installed table */  \
	X(DIR_DROP_NO_BACKEND, 9)    /* the row names no usable backend */     \
	X(DIR_DROP_TOO_BIG, 10)      /* encapsulated packet exceeds route MTU */\
	X(DIR_DROP_NO_ROUTE, 11)     /* kernel has no route to the hop */      \
	X(DIR_DROP_NO_NEIGH, 12)     /* next-hop MAC not yet resolved */       \
	X(DIR_DROP_NO_SOURCE, 13)    /* no director address of the hop family */\
	X(DIR_DROP_ADJUST, 14)       /* headroom could not be grown */          \
	X(DIR_DROP_VIP_OTHER, 15)    /* to a VIP, but to no service */        \
	X(DIR_DROP_MARTIAN, 16)      /* from loopback, multicast, a VIP, ... */

/*
 * Proxy verdicts. One per-CPU counter each. Every packet gets exactly one.
 */
#define VEER_PROXY_VERDICTS(X)                                                \
	X(PRX_DELIVER_SYN, 0)        /* new connection: ours by definition */  \
	X(PRX_DELIVER_FLOW, 1)       /* established here, by the flow table */ \
	X(PRX_DELIVER_SOCKET, 2)     /* a local socket owns the flow */        \
	X(PRX_DELIVER_SYNCOOKIE, 3)  /* ACK carrying a valid SYN cookie */     \
	X(PRX_DELIVER_LAST_HOP, 4)   /* no socket, no hops left: local RST */  \
	X(PRX_DELIVER_NOT_TCP, 5)    /* inner UDP, ICMP, ...  */               \
	X(PRX_FORWARD, 6)            /* second chance: sent to the next hop */ \
	X(PRX_PASS_NOT_GUE, 7)       /* not for the GUE port: host traffic */  \
	X(PRX_DROP_MALFORMED, 8)     /* truncated outer or inner headers */    \
	X(PRX_DROP_NOT_ALLOWED, 9)   /* GUE from outside the allow-list */     \
	X(PRX_DROP_GUE_VERSION, 10)  /* GUE version != 0 or control message */ \
	X(PRX_DROP_GUE_PROTO, 11)    /* inner protocol neither 4 nor 41 */     \
	X(PRX_DROP_GUE_TYPE, 12)     /* unknown private data type */           \
	X(PRX_DROP_GUE_LENGTH, 13)   /* hlen disagrees with the hop list */    \
	X(PRX_DROP_GUE_HOPS, 14)     /* hop count/index out of range */        \
	X(PRX_DROP_HOP_NOT_ALLOWED, 15) /* next hop outside the allow-list */  \
	X(PRX_DROP_NO_ROUTE, 16)                                              \
	X(PRX_DROP_NO_NEIGH, 17)                                              \
	X(PRX_DROP_TOO_BIG, 18)                                               \
	X(PRX_DROP_FRAGMENT, 19)     /* fragmented GUE, or an inner fragment */\
	X(PRX_DROP_NOT_LOCAL, 20)    /* GUE to an address not this proxy's */  \
	X(PRX_DROP_NOT_SERVED, 21)   /* inner packet to nothing served here */ \
	X(PRX_DROP_HOP_LOOP, 22)     /* next hop is this proxy or the sender */

/*
 * Co-located verdicts: packets to a service that a host running both roles
 * delivers to itself, without encapsulation. One per-CPU counter each. A
 * co-located host gives every packet exactly one verdict of the three kinds:
 * proxy (GUE for this host), co-located, or director (everything else).
 */
#define VEER_COLOCATED_VERDICTS(X)                                            \
	X(COL_DELIVER_FLOW, 0)       /* its connection is in the flow table */ \
	X(COL_DELIVER_SOCKET, 1)     /* a local socket owns the flow */        \
	X(COL_DELIVER_SYNCOOKIE, 2)  /* ACK carrying a valid SYN cookie */     \
	X(COL_DELIVER_PRIMARY, 3)    /* SYN, UDP or ICMP; this host is primary */\
	X(COL_DELIVER_LAST_HOP, 4)   /* not ours, no other hop: local RST */

/*
 * Where a director in RX-hash mode took each flow hash from. One per-CPU
 * counter each; every packet to a service that hashes its source port gets one.
 */
#define VEER_RX_HASH_SOURCES(X)                                               \
	X(RXH_NIC, 0)                /* the NIC's hash, over addresses and ports */\
	X(RXH_QUOTED, 1)             /* ICMP about a flow: Toeplitz over its tuple */\
	X(RXH_NO_PORTS, 2)           /* the NIC's hash type lacks ports: keyed hash */\
	X(RXH_UNAVAILABLE, 3)        /* the driver gave no hash: keyed hash */

#endif /* VEER_ABI_H */
