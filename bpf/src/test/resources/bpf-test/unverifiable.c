// SPDX-License-Identifier: Apache-2.0
/* Test object the verifier must reject: packet read without a bounds check. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int ut_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[0];
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
