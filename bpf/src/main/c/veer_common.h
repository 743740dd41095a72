/* SPDX-License-Identifier: Apache-2.0 */
/* Small pieces both programs use. */
#ifndef VEER_COMMON_H
#define VEER_COMMON_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* From <sys/socket.h>, which cannot be included for the BPF target. */
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* What a step of a program's pipeline returns when the packet goes on to the
 * next step; every other value is the packet's final verdict (>= 0). */
#define VEER_CONTINUE (-1)

/* Adds one to a per-CPU u64 counter array at index. */
static __always_inline void veer_count(void *counters, __u32 index)
{
	__u64 *n = bpf_map_lookup_elem(counters, &index);

	if (n)
		*n += 1;
}

/*
 * Copies of MACs and addresses between packet and map memory in words. Clang
 * copies byte by byte through pointers it cannot prove aligned; XDP runs
 * natively only where unaligned access is cheap, and the verifier allows it
 * on packet and map memory there (never on the stack).
 */

/* A MAC address in two moves. */
static __always_inline void veer_copy_mac(void *dst, const void *src)
{
	*(__u32 *)dst = *(const __u32 *)src;
	*(__u16 *)(dst + 4) = *(const __u16 *)(src + 4);
}

/* A 4- or 16-byte address. */
static __always_inline void veer_copy_addr(void *dst, const void *src, __u32 len)
{
	*(__u32 *)dst = *(const __u32 *)src;
	if (len == 16) {
		*(__u32 *)(dst + 4) = *(const __u32 *)(src + 4);
		*(__u32 *)(dst + 8) = *(const __u32 *)(src + 8);
		*(__u32 *)(dst + 12) = *(const __u32 *)(src + 12);
	}
}

#endif /* VEER_COMMON_H */
