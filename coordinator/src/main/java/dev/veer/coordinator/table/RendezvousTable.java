package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkElementIndex;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import java.util.Map;

/**
 * A built forwarding table: {@code rowCount()} rows, each listing up to {@code hopCount()} backends
 * by index into {@link #backends()}, primary first.
 *
 * <p>Rows are stored in one {@code char[]} of {@code rowCount() * hopCount()} cells (2 bytes each:
 * a 2^20-row, 4-hop table is 8 MiB), a cell holding backend index + 1, or 0 for "no hop" (the data
 * plane's convention that backend index 0 is "no backend"). Every row of a table over at least one
 * backend has at least one hop.
 *
 * <p>Immutable and thread-safe. Build with {@link RendezvousTableBuilder}.
 */
public final class RendezvousTable {
  /** Most backends one table can name (cells are 16-bit, 0 meaning "no hop"). */
  public static final int MAX_BACKENDS = 65_535;

  private static final int[] NO_HOPS = new int[0];

  private final TableSpec spec;
  private final ImmutableList<Backend> backends;
  private final int hopCount;
  private final char[] cells;

  RendezvousTable(TableSpec spec, ImmutableList<Backend> backends, int hopCount, char[] cells) {
    this.spec = spec;
    this.backends = backends;
    this.hopCount = hopCount;
    this.cells = cells;
  }

  /** The spec this table was built from. */
  public TableSpec spec() {
    return spec;
  }

  public int rowBits() {
    return spec.rowBits();
  }

  public int rowCount() {
    return spec.rowCount();
  }

  /**
   * Hops per row, the stride of the table: the spec's hop count clamped to the number of backends
   * (0 for a table without backends). A row may hold fewer hops than this.
   */
  public int hopCount() {
    return hopCount;
  }

  /** The backends, in input order; a backend's index in this list is its id in the rows. */
  public ImmutableList<Backend> backends() {
    return backends;
  }

  /** The backend with id {@code index}. */
  public Backend backend(int index) {
    return backends.get(index);
  }

  /**
   * The hops of {@code row} as backend indices, primary first; possibly fewer than {@link
   * #hopCount()}, empty only in a table without backends. A fresh array.
   */
  public int[] hops(int row) {
    checkElementIndex(row, rowCount(), "row");
    int base = row * hopCount;
    int n = 0;
    while (n < hopCount && cells[base + n] != 0) {
      n++;
    }
    if (n == 0) {
      return NO_HOPS;
    }
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = cells[base + i] - 1;
    }
    return out;
  }

  /** The backend index of hop {@code hop} (0 = primary) of {@code row}, or -1 if it has none. */
  public int hop(int row, int hop) {
    checkElementIndex(row, rowCount(), "row");
    checkElementIndex(hop, hopCount, "hop");
    return cells[row * hopCount + hop] - 1;
  }

  /** The backend index of the primary of {@code row}, or -1 in a table without backends. */
  public int primary(int row) {
    checkElementIndex(row, rowCount(), "row");
    return hopCount == 0 ? -1 : cells[row * hopCount] - 1;
  }

  /** How many rows each backend is primary of, in backend order; every backend has an entry. */
  public Map<Backend, Integer> primaryRowCounts() {
    int[] counts = new int[backends.size()];
    if (hopCount > 0) {
      for (int i = 0; i < cells.length; i += hopCount) {
        counts[cells[i] - 1]++;
      }
    }
    ImmutableMap.Builder<Backend, Integer> out =
        ImmutableMap.builderWithExpectedSize(counts.length);
    for (int b = 0; b < counts.length; b++) {
      out.put(backends.get(b), counts[b]);
    }
    return out.buildOrThrow();
  }

  @Override
  public String toString() {
    return "RendezvousTable{rows=2^"
        + rowBits()
        + ", hops="
        + hopCount
        + ", backends="
        + backends.size()
        + "}";
  }
}
