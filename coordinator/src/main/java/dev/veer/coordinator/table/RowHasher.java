package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;
import static java.util.Objects.requireNonNull;

import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import com.google.common.primitives.Ints;
import com.google.common.primitives.Longs;
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
 * <p>Thread-safe and immutable.
 */
public final class RowHasher {
  private final HashFunction sipHash;

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
    long k0 =
        Longs.fromBytes(seed[7], seed[6], seed[5], seed[4], seed[3], seed[2], seed[1], seed[0]);
    long k1 =
        Longs.fromBytes(
            seed[15], seed[14], seed[13], seed[12], seed[11], seed[10], seed[9], seed[8]);
    this.sipHash = Hashing.sipHash24(k0, k1);
  }

  /** The hasher for {@code spec}'s seed. */
  public static RowHasher of(TableSpec spec) {
    return new RowHasher(spec.seed());
  }

  /** SipHash-2-4 keyed by the table seed; package-private for tests. */
  HashFunction function() {
    return sipHash;
  }

  /**
   * The row seed {@code s_r} of {@code row}: SipHash over the row index as 4 big-endian bytes.
   * GLB's 8-byte {@code row_hash} is this value's little-endian encoding.
   */
  public long rowSeed(int row) {
    // Guava writes the int little-endian; reversing it yields the big-endian byte sequence.
    return sipHash.hashInt(Integer.reverseBytes(row)).asLong();
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
    byte[] a = addressBytes;
    // Same calls into Guava as the builder's fast paths, so both share one JIT profile.
    return a.length == 4
        ? scoreV4(rowSeed, Ints.fromBytes(a[3], a[2], a[1], a[0]))
        : scoreV6(
            rowSeed,
            Longs.fromBytes(a[7], a[6], a[5], a[4], a[3], a[2], a[1], a[0]),
            Longs.fromBytes(a[15], a[14], a[13], a[12], a[11], a[10], a[9], a[8]));
  }

  /**
   * Fast path for an IPv4 address given as the little-endian int of its 4 network-order bytes (so
   * that Guava's little-endian {@code putInt} emits them in network order).
   *
   * <p>Guava's SipHash allocates a hasher and its buffer for every hash. How fast this runs depends
   * on whether C2's escape analysis removes those allocations, which varies from JVM run to run
   * with inlining decisions: measured ~15 ns per hash and core when it does, ~45 ns when it does
   * not (as with {@code -XX:-DoEscapeAnalysis}). Hashing is the table builder's bottleneck.
   */
  long scoreV4(long rowSeed, int addressLe) {
    return sipHash.newHasher(12).putLong(rowSeed).putInt(addressLe).hash().asLong();
  }

  /** Fast path for an IPv6 address given as the little-endian longs of its bytes 0..7 and 8..15. */
  long scoreV6(long rowSeed, long addressLe0, long addressLe1) {
    return sipHash
        .newHasher(24)
        .putLong(rowSeed)
        .putLong(addressLe0)
        .putLong(addressLe1)
        .hash()
        .asLong();
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
}
