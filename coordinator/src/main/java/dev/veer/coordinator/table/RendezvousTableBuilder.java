package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;
import static java.util.Objects.requireNonNull;

import com.google.common.collect.ImmutableList;
import com.google.common.net.InetAddresses;
import com.google.common.primitives.Ints;
import com.google.common.primitives.Longs;
import com.google.common.primitives.UnsignedBytes;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Builds a {@link RendezvousTable} by GLB's rendezvous (highest random weight) hashing.
 *
 * <p>For every row, each backend gets a score from {@link RowHasher}; the row's candidates are the
 * first {@code k = min(hopCount, backends)} backends by rank, whatever their state, so that a
 * backend keeps the rows it ranks high in across state changes. The candidates are then stably
 * ordered by state: {@link BackendState#ACTIVE}/{@link BackendState#FILLING} first, then {@link
 * BackendState#DRAINING}, then {@link BackendState#INACTIVE}. A draining backend thus stays in its
 * rows as a later hop, where second chance forwarding finds its existing flows. If no candidate is
 * eligible (active or filling) but some backend is, the best-ranked eligible backend becomes the
 * primary and the last candidate is dropped: no row has a draining or inactive primary while an
 * eligible backend exists.
 *
 * <p>With every backend active, the first two hops of every row are GLB's primary and secondary for
 * the same seed.
 *
 * <p>Cost: one SipHash per backend per row (Guava's {@code sipHash24}), plus a partial selection of
 * the top {@code k} (no sort, no boxing). Large tables are built in parallel chunks of rows on the
 * common fork-join pool.
 */
public final class RendezvousTableBuilder {
  private static final Logger log = LoggerFactory.getLogger(RendezvousTableBuilder.class);

  /** Backend-rows (hashes) below which a table is built on the calling thread alone. */
  private static final long PARALLEL_MIN_WORK = 1L << 18;

  /** Rows per parallel work item (a multiple of every power of two from 2^4 up to here). */
  private static final int CHUNK_ROWS = 1 << 10;

  private RendezvousTableBuilder() {}

  /**
   * Builds the table for {@code spec} over {@code backends}; a backend's index in the list is its
   * id in the table. An empty list gives a table whose rows have no hops.
   *
   * @throws IllegalArgumentException if backends mix IPv4 and IPv6, if two share an address, or if
   *     there are more than {@link RendezvousTable#MAX_BACKENDS}
   */
  public static RendezvousTable build(TableSpec spec, List<Backend> backends) {
    requireNonNull(spec, "spec");
    ImmutableList<Backend> list = ImmutableList.copyOf(backends);
    validate(list);
    long start = System.nanoTime();

    int n = list.size();
    int k = Math.min(spec.hopCount(), n);
    int rows = spec.rowCount();
    char[] cells = new char[rows * k];
    if (n > 0) {
      Prepared prepared = new Prepared(RowHasher.of(spec), list, k);
      long work = (long) rows * n;
      if (work >= PARALLEL_MIN_WORK
          && rows > CHUNK_ROWS
          && Runtime.getRuntime().availableProcessors() > 1) {
        IntStream.range(0, rows / CHUNK_ROWS)
            .parallel()
            .forEach(
                c -> new RowFiller(prepared, cells).fill(c * CHUNK_ROWS, (c + 1) * CHUNK_ROWS));
      } else {
        new RowFiller(prepared, cells).fill(0, rows);
      }
    }
    RendezvousTable table = new RendezvousTable(spec, list, k, cells);
    if (log.isDebugEnabled()) {
      log.debug(
          "built {} over {} backends in {} ms",
          table,
          n,
          (System.nanoTime() - start) / 1_000_000.0);
    }
    return table;
  }

  private static void validate(List<Backend> backends) {
    checkArgument(
        backends.size() <= RendezvousTable.MAX_BACKENDS,
        "a table can name at most %s backends, got %s",
        RendezvousTable.MAX_BACKENDS,
        backends.size());
    Map<ByteBuffer, Integer> seen = new HashMap<>();
    Backend first = null;
    for (int i = 0; i < backends.size(); i++) {
      Backend b = backends.get(i);
      if (first == null) {
        first = b;
      } else if (b.isIpv6() != first.isIpv6()) {
        throw new IllegalArgumentException(
            "all backends of one table must be the same address family (all IPv4 or all IPv6), but"
                + " backend #0 is "
                + family(first)
                + " ("
                + InetAddresses.toAddrString(first.address())
                + ") and backend #"
                + i
                + " is "
                + family(b)
                + " ("
                + InetAddresses.toAddrString(b.address())
                + "); build one table per family");
      }
      Integer earlier = seen.putIfAbsent(ByteBuffer.wrap(b.addressBytes()), i);
      if (earlier != null) {
        throw new IllegalArgumentException(
            "duplicate backend address "
                + InetAddresses.toAddrString(b.address())
                + " (backends #"
                + earlier
                + " and #"
                + i
                + "); list each backend once, with a single state");
      }
    }
  }

  private static String family(Backend b) {
    return b.isIpv6() ? "IPv6" : "IPv4";
  }

  /** Per-backend inputs shared by all rows, computed once per build. */
  private static final class Prepared {
    final RowHasher hasher;
    final int n;
    final int k;
    final boolean ipv6;

    /** IPv4: the little-endian int of the 4 address bytes. */
    final int[] v4;

    /** IPv6: little-endian longs of bytes 0..7 and 8..15. */
    final long[] v6lo;

    final long[] v6hi;

    /** Placement tier by backend ({@link BackendState#tier()}). */
    final byte[] tier;

    /** Rank of each backend's address bytes (unsigned, lexicographic): the score tie-breaker. */
    final int[] addressOrder;

    final boolean anyEligible;

    Prepared(RowHasher hasher, List<Backend> backends, int k) {
      this.hasher = hasher;
      this.n = backends.size();
      this.k = k;
      this.ipv6 = backends.get(0).isIpv6();
      byte[][] addresses = new byte[n][];
      tier = new byte[n];
      boolean eligible = false;
      for (int b = 0; b < n; b++) {
        addresses[b] = backends.get(b).addressBytes();
        BackendState state = backends.get(b).state();
        tier[b] = (byte) state.tier();
        eligible |= state.isEligible();
      }
      anyEligible = eligible;
      if (ipv6) {
        v4 = null;
        v6lo = new long[n];
        v6hi = new long[n];
        for (int b = 0; b < n; b++) {
          byte[] a = addresses[b];
          v6lo[b] = Longs.fromBytes(a[7], a[6], a[5], a[4], a[3], a[2], a[1], a[0]);
          v6hi[b] = Longs.fromBytes(a[15], a[14], a[13], a[12], a[11], a[10], a[9], a[8]);
        }
      } else {
        v6lo = null;
        v6hi = null;
        v4 = new int[n];
        for (int b = 0; b < n; b++) {
          byte[] a = addresses[b];
          v4[b] = Ints.fromBytes(a[3], a[2], a[1], a[0]);
        }
      }
      Integer[] byAddress = new Integer[n];
      Arrays.setAll(byAddress, i -> i);
      Comparator<byte[]> lex = UnsignedBytes.lexicographicalComparator();
      Arrays.sort(byAddress, (x, y) -> lex.compare(addresses[x], addresses[y]));
      addressOrder = new int[n];
      for (int pos = 0; pos < n; pos++) {
        addressOrder[byAddress[pos]] = pos;
      }
    }
  }

  /** Fills a range of rows; holds per-thread scratch space. */
  private static final class RowFiller {
    private final Prepared p;
    private final char[] cells;

    /** Rank keys of the current row, made signed-comparable: lower ranks first. */
    private final long[] keys;

    private final long[] topKey;
    private final int[] topIdx;
    private final int[] row;

    RowFiller(Prepared p, char[] cells) {
      this.p = p;
      this.cells = cells;
      this.keys = new long[p.n];
      this.topKey = new long[p.k];
      this.topIdx = new int[p.k];
      this.row = new int[p.k];
    }

    void fill(int fromRow, int toRow) {
      for (int r = fromRow; r < toRow; r++) {
        score(r);
        selectTop();
        arrange();
        int base = r * p.k;
        for (int i = 0; i < p.k; i++) {
          cells[base + i] = (char) (row[i] + 1);
        }
      }
    }

    /** keys[b] = rank key of backend b in row r, flipped so that signed order is unsigned order. */
    private void score(int r) {
      RowHasher h = p.hasher;
      long rowSeed = h.rowSeed(r);
      if (p.ipv6) {
        for (int b = 0; b < p.n; b++) {
          keys[b] = RowHasher.rankKey(h.scoreV6(rowSeed, p.v6lo[b], p.v6hi[b])) ^ Long.MIN_VALUE;
        }
      } else {
        for (int b = 0; b < p.n; b++) {
          keys[b] = RowHasher.rankKey(h.scoreV4(rowSeed, p.v4[b])) ^ Long.MIN_VALUE;
        }
      }
    }

    private boolean before(long keyA, int a, long keyB, int b) {
      return keyA < keyB || (keyA == keyB && p.addressOrder[a] < p.addressOrder[b]);
    }

    /** topIdx[0..k) = the k best-ranked backends, best first (insertion into a k-element list). */
    private void selectTop() {
      int k = p.k;
      int filled = 0;
      for (int b = 0; b < p.n; b++) {
        long key = keys[b];
        int pos;
        if (filled < k) {
          pos = filled++;
        } else if (before(key, b, topKey[k - 1], topIdx[k - 1])) {
          pos = k - 1;
        } else {
          continue;
        }
        while (pos > 0 && before(key, b, topKey[pos - 1], topIdx[pos - 1])) {
          topKey[pos] = topKey[pos - 1];
          topIdx[pos] = topIdx[pos - 1];
          pos--;
        }
        topKey[pos] = key;
        topIdx[pos] = b;
      }
    }

    /**
     * row[0..k) = the candidates stably ordered by tier, with an eligible primary if any exists.
     */
    private void arrange() {
      int k = p.k;
      int o = 0;
      for (int t = 0; t <= 2; t++) {
        for (int i = 0; i < k; i++) {
          if (p.tier[topIdx[i]] == t) {
            row[o++] = topIdx[i];
          }
        }
      }
      if (p.tier[row[0]] != 0 && p.anyEligible) {
        System.arraycopy(row, 0, row, 1, k - 1);
        row[0] = bestEligible();
      }
    }

    /** The best-ranked eligible backend of the current row; only called when one exists. */
    private int bestEligible() {
      int best = -1;
      for (int b = 0; b < p.n; b++) {
        if (p.tier[b] == 0 && (best < 0 || before(keys[b], b, keys[best], best))) {
          best = b;
        }
      }
      return best;
    }
  }
}
