/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exact-match tables that user space builds whole and swaps in: open
 * addressing with linear probing over a fixed array whose power-of-two size
 * each table names (VEER_SERVICE_SLOTS, VEER_PEER_SLOTS), every key within
 * VEER_FLAT_PROBES slots of its home (the builder,
 * dev.veer.bpf.dataplane.FlatTable, guarantees it). Array lookups are inlined
 * by the verifier; a hash map lookup costs about 25 ns per packet here.
 *
 * Keys are 20 bytes (five words); the home slot comes from a fold of the
 * words and murmur3's finalizer, which FlatTable computes the same way.
 */
#ifndef VEER_FLAT_H
#define VEER_FLAT_H

#include <linux/types.h>
#include "veer_maps.h"

static __always_inline __u32 veer_flat_rotl(__u32 x, int k)
{
	return (x << k) | (x >> (32 - k));
}

static __always_inline __u32 veer_flat_home(const void *key, __u32 slots)
{
	const __u32 *w = key;
	/* The words are folded with independent adds and rotations (no chain of
	 * multiplies: this runs for every packet), then murmur3's finalizer
	 * carries every bit to the slot bits, so consecutive addresses (last
	 * octet in the top byte) spread out. */
	__u32 h = w[0] + veer_flat_rotl(w[1], 7) + veer_flat_rotl(w[2], 14) +
		  veer_flat_rotl(w[3], 21) + veer_flat_rotl(w[4], 28);

	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h & (slots - 1);
}

static __always_inline int veer_flat_key_equal(const void *a, const void *b)
{
	const __u32 *x = a, *y = b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/*
 * Declares type##_find(table, key): the table's slot holding key, or NULL.
 * The slot type has a 20-byte `key`, a `used` word and the value.
 */
#define VEER_FLAT_FIND(type, slots)                                                       \
	static __always_inline struct type *type##_find(void *table, const void *key) \
	{                                                                          \
		__u32 home = veer_flat_home(key, slots);                                  \
		struct type *slot;                                                 \
		int i;                                                             \
                                                                                   \
		_Pragma("unroll") for (i = 0; i < VEER_FLAT_PROBES; i++)           \
		{                                                                  \
			__u32 index = (home + i) & ((slots) - 1);          \
                                                                                   \
			slot = bpf_map_lookup_elem(table, &index);                 \
			if (!slot || !slot->used)                                  \
				return NULL;                                       \
			if (veer_flat_key_equal(&slot->key, key))                  \
				return slot;                                       \
		}                                                                  \
		return NULL;                                                       \
	}

#endif /* VEER_FLAT_H */
