package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;
import static java.util.Objects.requireNonNull;

import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import java.net.InetAddress;

/**
 * GLB's rendezvous hashing for one table seed: the row seed of each row and the score of each
 * backend in a row.
 *
 * <p>The hash is SipHash-2-4 keyed by the 16-byte table seed, the key read as two little-endian
 * 64-bit words ({@code k0} = bytes 0..7, {@code k1} = bytes 8..15), as the SipHash reference code
 * does. A hash value's bytes, as GLB writes them, are its little-endian encoding.
 *
 * <ul>
 *   <li>row seed {@code s_r} = SipHash(row index as 4 big-endian bytes);
 *   <li>score of a backend in row {@code r} = SipHash(8 little-endian bytes of {@code s_r} ++ the
 *       backend's 4 (IPv4) or 16 (IPv6) address bytes);
 *   <li>a row lists backends by ascending {@link #rankKey(long) rank key}, the score with its bytes
 *       swapped, compared unsigned (GLB sorts on {@code bswap_64(score)}), which is the same as
 *       comparing the score's little-endian bytes lexicographically. Equal keys are ordered by
 *       address bytes.
 * </ul>
 *
 * <p>SipHash is written out here for exactly these message lengths (4, 12 and 24 bytes) rather than
 * taken from a general library: every score of a row starts with the same 8-byte block, so the
 * state after that block is computed once per row ({@link #absorbRowSeed}) and each backend costs
 * only its own blocks and the finalization, without allocating. Tests check it against Guava's
 * {@code sipHash24}.
 *
 * <p>Thread-safe and immutable.
 */
public final class RowHasher {
  private final long k0;
  private final long k1;

  /**
   * @param seed the 16-byte table seed
   * @throws IllegalArgumentException if the seed is not 16 bytes
   */
  public RowHasher(byte[] seed) {
    requireNonNull(seed, "seed");
    checkArgument(
        seed.length == TableSpec.SEED_BYTES,
        "table seed must be exactly %s bytes (a 128-bit SipHash key), got %s bytes",
        TableSpec.SEED_BYTES,
        seed.length);
    this.k0 = littleEndianLong(seed, 0);
    this.k1 = littleEndianLong(seed, 8);
  }

  /** The hasher for {@code spec}'s seed. */
  public static RowHasher of(TableSpec spec) {
    return new RowHasher(spec.seed());
  }

  /** Guava's SipHash-2-4 with the same key: the reference the tests hold this class to. */
  HashFunction function() {
    return Hashing.sipHash24(k0, k1);
  }

  /**
   * The row seed {@code s_r} of {@code row}: SipHash over the row index as 4 big-endian bytes.
   * GLB's 8-byte {@code row_hash} is this value's little-endian encoding.
   */
  public long rowSeed(int row) {
    // The message's 4 bytes, read little-endian, are the byte-swapped index.
    long block = (Integer.reverseBytes(row) & 0xffff_ffffL) | (4L << 56);
    return finalBlock(
        k0 ^ 0x736f6d6570736575L,
        k1 ^ 0x646f72616e646f6dL,
        k0 ^ 0x6c7967656e657261L,
        k1 ^ 0x7465646279746573L,
        block);
  }

  /** The score of {@code address} in {@code row}; see {@link #score(long, byte[])}. */
  public long score(int row, InetAddress address) {
    return score(rowSeed(row), address.getAddress());
  }

  /** The score of {@code address} in the row whose row seed is {@code rowSeed}. */
  public long score(long rowSeed, InetAddress address) {
    return score(rowSeed, address.getAddress());
  }

  /**
   * The score of a backend in the row whose row seed is {@code rowSeed}: SipHash over the row
   * seed's 8 little-endian bytes followed by the address bytes. This is the raw hash value; order
   * backends by {@link #rankKey(long)}.
   *
   * @param addressBytes 4 (IPv4) or 16 (IPv6) bytes, network order
   */
  public long score(long rowSeed, byte[] addressBytes) {
    checkArgument(
        addressBytes.length == 4 || addressBytes.length == 16,
        "address must be 4 (IPv4) or 16 (IPv6) bytes, got %s",
        addressBytes.length);
    long[] state = new long[4];
    absorbRowSeed(rowSeed, state);
    return addressBytes.length == 4
        ? finalBlock(state[0], state[1], state[2], state[3], lastBlockV4(addressBytes))
        : scoreV6(
            state[0],
            state[1],
            state[2],
            state[3],
            littleEndianLong(addressBytes, 0),
            littleEndianLong(addressBytes, 8));
  }

  /**
   * The value GLB sorts a row on: the score with its bytes swapped. Lower (compared unsigned) ranks
   * first.
   */
  public static long rankKey(long score) {
    return Long.reverseBytes(score);
  }

  /**
   * Compares two scores by rank: negative if {@code scoreA} ranks before {@code scoreB}. Equal
   * scores compare equal; callers break such ties by address bytes.
   */
  public static int compareScores(long scoreA, long scoreB) {
    return Long.compareUnsigned(rankKey(scoreA), rankKey(scoreB));
  }

  // ---- the specialised SipHash-2-4, for the builder's inner loops ----

  /**
   * Writes to {@code state[0..4)} the SipHash state after the first 8-byte block of every score
   * message of a row, the row seed; {@link #finalBlock} and {@link #scoreV6} continue from it.
   */
  void absorbRowSeed(long rowSeed, long[] state) {
    long v0 = k0 ^ 0x736f6d6570736575L;
    long v1 = k1 ^ 0x646f72616e646f6dL;
    long v2 = k0 ^ 0x6c7967656e657261L;
    long v3 = k1 ^ 0x7465646279746573L ^ rowSeed;
    for (int i = 0; i < 2; i++) { // SipRound
      v0 += v1;
      v2 += v3;
      v1 = Long.rotateLeft(v1, 13) ^ v0;
      v3 = Long.rotateLeft(v3, 16) ^ v2;
      v0 = Long.rotateLeft(v0, 32);
      v2 += v1;
      v0 += v3;
      v1 = Long.rotateLeft(v1, 17) ^ v2;
      v3 = Long.rotateLeft(v3, 21) ^ v0;
      v2 = Long.rotateLeft(v2, 32);
    }
    state[0] = v0 ^ rowSeed;
    state[1] = v1;
    state[2] = v2;
    state[3] = v3;
  }

  /**
   * The last 8-byte block of an IPv4 score message: the 4 address bytes, then zeros, then the
   * message length (12) in the top byte.
   */
  static long lastBlockV4(byte[] address) {
    return (address[0] & 0xffL)
        | (address[1] & 0xffL) << 8
        | (address[2] & 0xffL) << 16
        | (address[3] & 0xffL) << 24
        | 12L << 56;
  }

  /** Bytes {@code offset..offset+8} of {@code bytes} as a little-endian long. */
  static long littleEndianLong(byte[] bytes, int offset) {
    long out = 0;
    for (int i = 7; i >= 0; i--) {
      out = out << 8 | (bytes[offset + i] & 0xffL);
    }
    return out;
  }

  /**
   * From state {@code v0..v3}, absorbs the message's last block {@code m} (which carries the
   * message length in its top byte) and finalizes: SipHash-2-4's two compression and four
   * finalization rounds.
   */
  static long finalBlock(long v0, long v1, long v2, long v3, long m) {
    v3 ^= m;
    for (int i = 0; i < 2; i++) { // SipRound
      v0 += v1;
      v2 += v3;
      v1 = Long.rotateLeft(v1, 13) ^ v0;
      v3 = Long.rotateLeft(v3, 16) ^ v2;
      v0 = Long.rotateLeft(v0, 32);
      v2 += v1;
      v0 += v3;
      v1 = Long.rotateLeft(v1, 17) ^ v2;
      v3 = Long.rotateLeft(v3, 21) ^ v0;
      v2 = Long.rotateLeft(v2, 32);
    }
    v0 ^= m;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++) { // SipRound
      v0 += v1;
      v2 += v3;
      v1 = Long.rotateLeft(v1, 13) ^ v0;
      v3 = Long.rotateLeft(v3, 16) ^ v2;
      v0 = Long.rotateLeft(v0, 32);
      v2 += v1;
      v0 += v3;
      v1 = Long.rotateLeft(v1, 17) ^ v2;
      v3 = Long.rotateLeft(v3, 21) ^ v0;
      v2 = Long.rotateLeft(v2, 32);
    }
    return v0 ^ v1 ^ v2 ^ v3;
  }

  /**
   * From the state after the row seed, the score of an IPv6 address given as the little-endian
   * longs of its bytes 0..7 ({@code lo}) and 8..15 ({@code hi}): two full blocks, then a last block
   * holding only the length (24).
   */
  static long scoreV6(long v0, long v1, long v2, long v3, long lo, long hi) {
    for (int block = 0; block < 2; block++) {
      long m = block == 0 ? lo : hi;
      v3 ^= m;
      for (int i = 0; i < 2; i++) {
        // SipRound
        v0 += v1;
        v2 += v3;
        v1 = Long.rotateLeft(v1, 13) ^ v0;
        v3 = Long.rotateLeft(v3, 16) ^ v2;
        v0 = Long.rotateLeft(v0, 32);
        v2 += v1;
        v0 += v3;
        v1 = Long.rotateLeft(v1, 17) ^ v2;
        v3 = Long.rotateLeft(v3, 21) ^ v0;
        v2 = Long.rotateLeft(v2, 32);
      }
      v0 ^= m;
    }
    return finalBlock(v0, v1, v2, v3, 24L << 56);
  }
}
