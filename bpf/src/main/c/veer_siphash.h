/* SPDX-License-Identifier: Apache-2.0 */
/* SipHash-1-3 over at most 23 bytes held in three zero-padded words: the
 * director's keyed flow hash. SipHash-1-3 (one compression round, three
 * finalization rounds) keeps SipHash's resistance to chosen-input flooding at
 * two thirds of SipHash-2-4's cost; the flow hash is on every packet. The
 * result equals the reference algorithm with c=1, d=3, which user space
 * computes in dev.veer.bpf.dataplane.FlowHash to predict every row. */
#ifndef VEER_SIPHASH_H
#define VEER_SIPHASH_H

#include <linux/types.h>

#define VEER_ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define VEER_SIPROUND(v0, v1, v2, v3)                                    \
	do {                                                             \
		v0 += v1; v1 = VEER_ROTL64(v1, 13); v1 ^= v0;            \
		v0 = VEER_ROTL64(v0, 32);                                \
		v2 += v3; v3 = VEER_ROTL64(v3, 16); v3 ^= v2;            \
		v0 += v3; v3 = VEER_ROTL64(v3, 21); v3 ^= v0;            \
		v2 += v1; v1 = VEER_ROTL64(v1, 17); v1 ^= v2;            \
		v2 = VEER_ROTL64(v2, 32);                                \
	} while (0)

struct veer_hash_input {
	__u64 word[3];		/* message bytes, little-endian, zero padded */
	__u32 len;		/* message length in bytes, <= 23 */
};

static __always_inline __u64 veer_siphash13(__u64 k0, __u64 k1,
					    const struct veer_hash_input *in)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL;
	__u64 v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL;
	__u64 v3 = k1 ^ 0x7465646279746573ULL;
	__u32 full = in->len / 8;
	__u64 m;
	int i;

#pragma unroll
	for (i = 0; i < 2; i++) {
		if (i >= full)
			break;
		m = in->word[i];
		v3 ^= m;
		VEER_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	m = in->word[0];
	if (full == 1)
		m = in->word[1];
	else if (full == 2)
		m = in->word[2];
	m |= (__u64)in->len << 56;
	v3 ^= m;
	VEER_SIPROUND(v0, v1, v2, v3);
	v0 ^= m;
	v2 ^= 0xff;
	VEER_SIPROUND(v0, v1, v2, v3);
	VEER_SIPROUND(v0, v1, v2, v3);
	VEER_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

#endif /* VEER_SIPHASH_H */
