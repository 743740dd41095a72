package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkElementIndex;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.primitives.ImmutableIntArray;

/**
 * A built forwarding table: {@code rowCount()} rows, each listing one to {@link TableSpec#MAX_HOPS}
 * backends by index into {@link #backends()}, primary first.
 *
 * <p>A row holds {@link #hopCount()} hops, or more (up to {@link TableSpec#MAX_HOPS}) where it
 * keeps the primaries of earlier generations; see {@link TableBuilder}. Every row of a table over
 * at least one backend has at least one hop.
 *
 * <p>The rows are stored as they are shipped, see {@link #encoded()}. Immutable and thread-safe.
 */
public final class RendezvousTable {
  /** Most backends one table can name (cells are 16-bit, 0 meaning "no hop"). */
  public static final int MAX_BACKENDS = 65_535;

  /** Cells per row in {@link #encoded()}: the data plane's row. */
  public static final int ROW_CELLS = TableSpec.MAX_HOPS;

  private final TableSpec spec;
  private final ImmutableList<Backend> backends;
  private final int hopCount;
  private final char[] cells;
  private final int[] primaryRows;
  private final int[] secondaryRows;
  private final int rowsOutOfHops;

  /**
   * A table built before, from its cells ({@link #ROW_CELLS} a row, as {@link #encoded()} gives
   * them) and what its build found; takes ownership of {@code cells}.
   */
  public static RendezvousTable restore(
      TableSpec spec, ImmutableList<Backend> backends, char[] cells, int rowsOutOfHops) {
    checkArgument(
        cells.length == spec.rowCount() * ROW_CELLS,
        "%s cells for %s rows",
        cells.length,
        spec.rowCount());
    return new RendezvousTable(
        spec, backends, Math.min(spec.hopCount(), backends.size()), cells, rowsOutOfHops);
  }

  /** Takes ownership of {@code cells}. */
  RendezvousTable(
      TableSpec spec,
      ImmutableList<Backend> backends,
      int hopCount,
      char[] cells,
      int rowsOutOfHops) {
    this.spec = spec;
    this.rowsOutOfHops = rowsOutOfHops;
    this.backends = backends;
    this.hopCount = hopCount;
    this.cells = cells;
    this.primaryRows = new int[backends.size()];
    this.secondaryRows = new int[backends.size()];
    for (int at = 0; at < cells.length; at += ROW_CELLS) {
      if (cells[at] != 0) {
        primaryRows[cells[at] - 1]++;
      }
      if (cells[at + 1] != 0) {
        secondaryRows[cells[at + 1] - 1]++;
      }
    }
  }

  /**
   * Rows in which more backends may own flows (by the history the table was built with) than a row
   * has hops for: the newest of them are kept, the others' flows there break.
   */
  public int rowsOutOfHops() {
    return rowsOutOfHops;
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
   * Hops every row holds at least: the spec's hop count clamped to the number of backends (0 for a
   * table without backends).
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

  /** How many hops {@code row} holds: 0 in a table without backends, else 1 to {@code MAX_HOPS}. */
  public int rowLength(int row) {
    checkElementIndex(row, rowCount(), "row");
    int at = row * ROW_CELLS;
    int n = 0;
    while (n < ROW_CELLS && cells[at + n] != 0) {
      n++;
    }
    return n;
  }

  /** The hops of {@code row} as backend indices, primary first. A fresh array. */
  public int[] hops(int row) {
    int n = rowLength(row);
    int[] out = new int[n];
    for (int i = 0; i < n; i++) {
      out[i] = cells[row * ROW_CELLS + i] - 1;
    }
    return out;
  }

  /**
   * The backend index of hop {@code hop} (0 = primary) of {@code row}, or -1 if the row is shorter.
   */
  public int hop(int row, int hop) {
    checkElementIndex(row, rowCount(), "row");
    checkElementIndex(hop, ROW_CELLS, "hop");
    return cells[row * ROW_CELLS + hop] - 1;
  }

  /** The backend index of the primary of {@code row}, or -1 in a table without backends. */
  public int primary(int row) {
    return hop(row, 0);
  }

  /** How many rows each backend is primary of, in backend order; every backend has an entry. */
  /** Rows whose primary each backend is, in the order of {@link #backends()}. */
  public ImmutableIntArray primaryRows() {
    return ImmutableIntArray.copyOf(primaryRows);
  }

  public ImmutableMap<Backend, Integer> primaryRowCounts() {
    return byBackend(primaryRows);
  }

  /**
   * How many rows each backend is the second hop of (where second chance forwarding looks first),
   * in backend order; every backend has an entry.
   */
  public ImmutableMap<Backend, Integer> secondaryRowCounts() {
    return byBackend(secondaryRows);
  }

  private ImmutableMap<Backend, Integer> byBackend(int[] counts) {
    ImmutableMap.Builder<Backend, Integer> out =
        ImmutableMap.builderWithExpectedSize(counts.length);
    for (int b = 0; b < counts.length; b++) {
      out.put(backends.get(b), counts[b]);
    }
    return out.buildOrThrow();
  }

  /**
   * The rows as the data plane holds them: {@link #ROW_CELLS} cells per row, row after row, a cell
   * holding backend index + 1, or 0 for an empty slot (empty slots only at a row's end). A fresh
   * copy; 2 bytes a cell, so 512 KiB for 2^16 rows.
   */
  public char[] encoded() {
    return cells.clone();
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
