package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

/**
 * SipHash-c-d (Aumasson and Bernstein) over a byte array, for any numbers of compression and
 * finalization rounds. The director's flow hash is SipHash-1-3 (veer_siphash.h); Guava offers only
 * SipHash-2-4.
 */
final class SipHash {
  private final long k0;
  private final long k1;
  private final int compressionRounds;
  private final int finalizationRounds;

  SipHash(long k0, long k1, int compressionRounds, int finalizationRounds) {
    checkArgument(compressionRounds > 0 && finalizationRounds > 0, "rounds must be positive");
    this.k0 = k0;
    this.k1 = k1;
    this.compressionRounds = compressionRounds;
    this.finalizationRounds = finalizationRounds;
  }

  long hash(byte[] message) {
    long[] v = {
      k0 ^ 0x736f6d6570736575L,
      k1 ^ 0x646f72616e646f6dL,
      k0 ^ 0x6c7967656e657261L,
      k1 ^ 0x7465646279746573L
    };
    int full = message.length / 8;
    for (int i = 0; i < full; i++) {
      compress(v, littleEndian(message, i * 8, 8));
    }
    long last = littleEndian(message, full * 8, message.length % 8) | ((long) message.length << 56);
    compress(v, last);
    v[2] ^= 0xff;
    for (int i = 0; i < finalizationRounds; i++) {
      round(v);
    }
    return v[0] ^ v[1] ^ v[2] ^ v[3];
  }

  private void compress(long[] v, long m) {
    v[3] ^= m;
    for (int i = 0; i < compressionRounds; i++) {
      round(v);
    }
    v[0] ^= m;
  }

  private static void round(long[] v) {
    v[0] += v[1];
    v[1] = Long.rotateLeft(v[1], 13) ^ v[0];
    v[0] = Long.rotateLeft(v[0], 32);
    v[2] += v[3];
    v[3] = Long.rotateLeft(v[3], 16) ^ v[2];
    v[0] += v[3];
    v[3] = Long.rotateLeft(v[3], 21) ^ v[0];
    v[2] += v[1];
    v[1] = Long.rotateLeft(v[1], 17) ^ v[2];
    v[2] = Long.rotateLeft(v[2], 32);
  }

  private static long littleEndian(byte[] b, int offset, int length) {
    long out = 0;
    for (int i = length - 1; i >= 0; i--) {
      out = (out << 8) | (b[offset + i] & 0xff);
    }
    return out;
  }
}
