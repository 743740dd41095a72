package dev.veer.coordinator.table;

import java.net.InetAddress;
import java.util.Map;

/**
 * Flow evidence by row, as the row derivation reads it: for each row, the universe indices of the
 * current backends whose evidence names it, ascending (that is, by address).
 */
final class Owners {
  static final Owners NONE = new Owners(null, null);

  /** Row r's owners are {@code owner[start[r]] .. owner[start[r + 1] - 1]}; null: no evidence. */
  private final int[] start;

  private final int[] owner;

  private Owners(int[] start, int[] owner) {
    this.start = start;
    this.owner = owner;
  }

  /** The evidence of backends in the current list ({@code currentIndex} >= 0), by row. */
  static Owners of(
      Map<InetAddress, RowSet> evidence, Universe universe, int[] currentIndex, int rows) {
    RowSet[] byIndex = new RowSet[universe.size()];
    boolean any = false;
    for (Map.Entry<InetAddress, RowSet> e : evidence.entrySet()) {
      int u = universe.indexOf(e.getKey().getAddress());
      if (u >= 0 && currentIndex[u] >= 0) {
        byIndex[u] = e.getValue();
        any = true;
      }
    }
    if (!any) {
      return NONE;
    }
    int[] start = new int[rows + 1];
    for (RowSet set : byIndex) {
      for (int i = 0; set != null && i < set.size(); i++) {
        start[set.get(i) + 1]++;
      }
    }
    for (int r = 0; r < rows; r++) {
      start[r + 1] += start[r];
    }
    int[] owner = new int[start[rows]];
    int[] next = java.util.Arrays.copyOf(start, rows);
    for (int u = 0; u < byIndex.length; u++) {
      RowSet set = byIndex[u];
      for (int i = 0; set != null && i < set.size(); i++) {
        owner[next[set.get(i)]++] = u;
      }
    }
    return new Owners(start, owner);
  }

  int count(int row) {
    return start == null ? 0 : start[row + 1] - start[row];
  }

  /** The {@code i}th owner of {@code row}, a universe index. */
  int get(int row, int i) {
    return owner[start[row] + i];
  }
}
