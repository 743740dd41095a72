package dev.veer.coordinator.table;

import com.google.common.primitives.UnsignedBytes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * The distinct addresses of all generations of one build, sorted by unsigned address bytes. An
 * address's index here names it in a {@link RankCache}, and since the order is GLB's tie-breaker,
 * between equal scores the lower index ranks first.
 *
 * <p>Immutable (the arrays are never handed out for writing).
 */
final class Universe {
  /** Unsigned address bytes, lexicographically: the universe's order, and GLB's tie-breaker. */
  static final Comparator<byte[]> ORDER = UnsignedBytes.lexicographicalComparator();

  private final byte[][] addresses;
  final boolean ipv6;

  /**
   * What {@link RowHasher} absorbs per address: IPv4, the last message block ({@link
   * RowHasher#lastBlockV4}); IPv6, the little-endian long of bytes 0..7.
   */
  final long[] word0;

  /** IPv6: the little-endian long of bytes 8..15; null for IPv4. */
  final long[] word1;

  private Universe(byte[][] addresses) {
    this.addresses = addresses;
    int n = addresses.length;
    this.ipv6 = n > 0 && addresses[0].length == 16;
    this.word0 = new long[n];
    this.word1 = ipv6 ? new long[n] : null;
    for (int i = 0; i < n; i++) {
      if (ipv6) {
        word0[i] = RowHasher.littleEndianLong(addresses[i], 0);
        word1[i] = RowHasher.littleEndianLong(addresses[i], 8);
      } else {
        word0[i] = RowHasher.lastBlockV4(addresses[i]);
      }
    }
  }

  /** The addresses of every backend of every list (lists already validated: one family). */
  static Universe of(List<? extends List<Backend>> generations) {
    List<byte[]> all = new ArrayList<>();
    for (List<Backend> generation : generations) {
      for (Backend b : generation) {
        all.add(b.addressBytes());
      }
    }
    all.sort(ORDER);
    List<byte[]> distinct = new ArrayList<>(all.size());
    for (byte[] a : all) {
      if (distinct.isEmpty() || ORDER.compare(distinct.getLast(), a) != 0) {
        distinct.add(a);
      }
    }
    return new Universe(distinct.toArray(new byte[0][]));
  }

  int size() {
    return addresses.length;
  }

  /** The address with index {@code i}; not a copy, not to be written. */
  byte[] address(int i) {
    return addresses[i];
  }

  /** The index of {@code address}, or a negative number if it is not here. */
  int indexOf(byte[] address) {
    return Arrays.binarySearch(addresses, address, ORDER);
  }

  boolean sameAddresses(Universe other) {
    return Arrays.deepEquals(addresses, other.addresses);
  }

  /**
   * Where each of this universe's addresses is in {@code next}, -1 where it is not; {@code
   * addedOut} receives the indices in {@code next} of its addresses not here, ascending.
   */
  int[] mapTo(Universe next, List<Integer> addedOut) {
    int[] map = new int[size()];
    int i = 0;
    int j = 0;
    while (i < size() || j < next.size()) {
      int c =
          i == size() ? 1 : j == next.size() ? -1 : ORDER.compare(addresses[i], next.addresses[j]);
      if (c == 0) {
        map[i++] = j++;
      } else if (c < 0) {
        map[i++] = -1;
      } else {
        addedOut.add(j++);
      }
    }
    return map;
  }
}
