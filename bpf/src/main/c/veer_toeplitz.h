/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Toeplitz hash NICs use for RSS, as every NIC computes it: over the
 * bytes of (source address, destination address, source port, destination
 * port) in network order, with a key of VEER_TOEPLITZ_KEY_LEN bytes. Java's
 * Toeplitz class is the same function.
 */
#ifndef VEER_TOEPLITZ_H
#define VEER_TOEPLITZ_H

#include <linux/types.h>
#include "veer_maps.h"

/* The longest input: two IPv6 addresses and two ports. */
#define VEER_TOEPLITZ_MAX_INPUT 36

/* Toeplitz over len bytes: for every set input bit, the 32 key bits from that bit on. */
static __always_inline __u32 toeplitz(const __u8 *key, const __u8 *in, __u32 len)
{
	__u32 window = (__u32)key[0] << 24 | (__u32)key[1] << 16 | (__u32)key[2] << 8 | key[3];
	__u32 result = 0;
	__u32 i;
	int bit;

	for (i = 0; i < VEER_TOEPLITZ_MAX_INPUT && i < len; i++) {
		__u8 b = in[i];
		__u8 next = key[i + 4];	/* i + 4 < VEER_TOEPLITZ_KEY_LEN */

		/* Without branches: a branch per bit would have the verifier walk
		 * every combination of them. */
#pragma unroll
		for (bit = 7; bit >= 0; bit--) {
			result ^= window & -(__u32)((b >> bit) & 1);
			window = window << 1 | ((next >> bit) & 1);
		}
	}
	return result;
}

#endif /* VEER_TOEPLITZ_H */
