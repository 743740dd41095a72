package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import dev.veer.bpf.abi.VeerAbi;

/**
 * The Toeplitz hash NICs compute for RSS, as veer_toeplitz.h computes it: for every set bit of the
 * input, the 32 key bits that start at that bit, XORed together. The input is the flow's source
 * address, destination address, source port and destination port, in network order.
 */
public final class Toeplitz {
  private final byte[] key;

  public Toeplitz(byte[] key) {
    checkArgument(
        key.length == VeerAbi.TOEPLITZ_KEY_LEN,
        "an RSS key has %s bytes, not %s",
        VeerAbi.TOEPLITZ_KEY_LEN,
        key.length);
    this.key = key.clone();
  }

  public int hash(byte[] input) {
    checkArgument(input.length <= key.length - 4, "at most %s bytes of input", key.length - 4);
    int window =
        (key[0] & 0xff) << 24 | (key[1] & 0xff) << 16 | (key[2] & 0xff) << 8 | (key[3] & 0xff);
    int result = 0;
    for (int i = 0; i < input.length; i++) {
      int next = key[i + 4] & 0xff;
      for (int bit = 7; bit >= 0; bit--) {
        if ((input[i] & (1 << bit)) != 0) {
          result ^= window;
        }
        window = window << 1 | ((next >> bit) & 1);
      }
    }
    return result;
  }
}
