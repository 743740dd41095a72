package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;

import java.util.Arrays;

/**
 * A set of table rows, ascending and without repeats. Immutable; the flow evidence of one backend
 * in one table.
 */
public final class RowSet {
  private static final RowSet EMPTY = new RowSet(new int[0]);

  private final int[] rows;

  private RowSet(int[] rows) {
    this.rows = rows;
  }

  public static RowSet empty() {
    return EMPTY;
  }

  /** The set of {@code rows}, which must be ascending, without repeats, and not negative. */
  public static RowSet ofSorted(int... rows) {
    for (int i = 0; i < rows.length; i++) {
      checkArgument(
          rows[i] >= 0 && (i == 0 || rows[i] > rows[i - 1]),
          "rows must be ascending, distinct and not negative: %s after %s",
          rows[i],
          i == 0 ? "nothing" : String.valueOf(rows[i - 1]));
    }
    return rows.length == 0 ? EMPTY : new RowSet(rows.clone());
  }

  /** The set of {@code rows} in any order, repeats allowed. */
  public static RowSet of(int... rows) {
    return ofSorted(Arrays.stream(rows).sorted().distinct().toArray());
  }

  public int size() {
    return rows.length;
  }

  public boolean isEmpty() {
    return rows.length == 0;
  }

  public int get(int index) {
    return rows[index];
  }

  public boolean contains(int row) {
    return Arrays.binarySearch(rows, row) >= 0;
  }

  /** The largest row, or -1 for the empty set. */
  public int last() {
    return rows.length == 0 ? -1 : rows[rows.length - 1];
  }

  public int[] toArray() {
    return rows.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof RowSet other && Arrays.equals(rows, other.rows);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(rows);
  }

  @Override
  public String toString() {
    return rows.length <= 8
        ? Arrays.toString(rows)
        : rows.length + " rows " + rows[0] + ".." + rows[rows.length - 1];
  }
}
