// SPDX-License-Identifier: Apache-2.0
/* Test object for BpfObjectTest: a pinned map, a resizable map and .rodata. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ut_pinned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} ut_sized SEC(".maps");

const volatile __u32 ut_verdict = XDP_PASS;

SEC("xdp")
int ut_count(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *hits = bpf_map_lookup_elem(&ut_pinned, &key);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	if (bpf_map_lookup_elem(&ut_sized, &key))
		return ut_verdict;
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
