package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import dev.veer.bpf.abi.VeerAbi;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;

/**
 * A forwarding table as the data plane needs it: {@code 2^rowBits} rows, each a list of up to
 * {@link VeerAbi#MAX_HOPS} hops (primary first) given as indices into {@link #backends()}, all of
 * one address family.
 *
 * <p>Held as the coordinators ship it: {@link VeerAbi#MAX_HOPS} cells per row, each the backend's
 * index + 1, 0 after the row's last hop.
 */
public final class HopTable {
  private final int rowBits;
  private final ImmutableList<InetAddress> backends;
  private final char[] cells;

  /** The hash of the contents, once asked (0: not yet): tables are compared to share slots. */
  private int hash;

  private HopTable(int rowBits, ImmutableList<InetAddress> backends, char[] cells) {
    this.rowBits = rowBits;
    this.backends = backends;
    this.cells = cells;
  }

  /**
   * @param hops for each row, {@link VeerAbi#MAX_HOPS} entries: backend indices, then -1s
   */
  public static HopTable of(int rowBits, List<? extends InetAddress> backends, int[] hops) {
    checkShape(rowBits, hops.length);
    char[] cells = new char[hops.length];
    for (int i = 0; i < hops.length; i++) {
      checkArgument(
          hops[i] >= -1 && hops[i] < backends.size(),
          "row %s names backend %s of %s",
          i / VeerAbi.MAX_HOPS,
          hops[i],
          backends.size());
      cells[i] = (char) (hops[i] + 1);
    }
    return checked(rowBits, backends, cells);
  }

  /**
   * A table from its cells: {@link VeerAbi#MAX_HOPS} a row, each the backend's index + 1, 0 after
   * the row's last hop. Checked whole before it is returned; takes ownership of {@code cells}.
   */
  public static HopTable ofCells(int rowBits, List<? extends InetAddress> backends, char[] cells) {
    checkShape(rowBits, cells.length);
    return checked(rowBits, backends, cells);
  }

  /**
   * A table from {@link VeerAbi#MAX_HOPS} little-endian u16 cells per row (backend index + 1, 0
   * after the last hop). Checked whole before it is returned.
   */
  public static HopTable fromCells(
      int rowBits, List<? extends InetAddress> backends, ByteBuffer littleEndian) {
    ByteBuffer in = littleEndian.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    checkShape(rowBits, in.remaining() / 2);
    checkArgument(in.remaining() % 2 == 0, "a table's cells are 2 bytes each");
    char[] cells = new char[in.remaining() / 2];
    in.asCharBuffer().get(cells);
    return checked(rowBits, backends, cells);
  }

  private static void checkShape(int rowBits, int cellCount) {
    RowBits.check(rowBits);
    checkArgument(
        cellCount == (1 << rowBits) * VeerAbi.MAX_HOPS,
        "expected %s hop entries for %s rows, got %s",
        (1 << rowBits) * VeerAbi.MAX_HOPS,
        1 << rowBits,
        cellCount);
  }

  private static HopTable checked(int rowBits, List<? extends InetAddress> backends, char[] cells) {
    checkArgument(new HashSet<>(backends).size() == backends.size(), "backends must be distinct");
    checkArgument(
        backends.stream().map(IpFamily::of).distinct().count() <= 1,
        "all backends of a table must share one address family: %s",
        backends);
    int limit = backends.size();
    for (int i = 0; i < cells.length; i++) {
      char cell = cells[i];
      if (cell > limit) {
        throw new IllegalArgumentException(
            "row " + i / VeerAbi.MAX_HOPS + " names backend " + (cell - 1) + " of " + limit);
      }
      if (cell != 0 && i % VeerAbi.MAX_HOPS != 0 && cells[i - 1] == 0) {
        throw new IllegalArgumentException(
            "row " + i / VeerAbi.MAX_HOPS + " has a gap in its hop list");
      }
    }
    return new HopTable(rowBits, ImmutableList.copyOf(backends), cells);
  }

  /**
   * The index (into {@link #backends()}) of hop {@code hop} of {@code row}, or -1 if the row has
   * fewer.
   */
  public int hopIndex(int row, int hop) {
    return cells[row * VeerAbi.MAX_HOPS + hop] - 1;
  }

  /**
   * A copy of the cells: {@link VeerAbi#MAX_HOPS} a row, each the backend's index + 1, 0 after the
   * row's last hop.
   */
  public char[] cells() {
    return cells.clone();
  }

  /** The most hops any row holds (0 for a table without backends). */
  public int maxHops() {
    int most = 0;
    for (int i = 0; i < cells.length; i += VeerAbi.MAX_HOPS) {
      for (int hop = VeerAbi.MAX_HOPS - 1; hop >= most; hop--) {
        if (cells[i + hop] != 0) {
          most = hop + 1;
          break;
        }
      }
    }
    return most;
  }

  public int rowBits() {
    return rowBits;
  }

  public int rowCount() {
    return 1 << rowBits;
  }

  public ImmutableList<InetAddress> backends() {
    return backends;
  }

  /** The hops of a row, primary first. */
  public ImmutableList<InetAddress> hops(int row) {
    ImmutableList.Builder<InetAddress> out = ImmutableList.builder();
    for (int i = 0; i < VeerAbi.MAX_HOPS; i++) {
      int hop = hopIndex(row, i);
      if (hop < 0) {
        break;
      }
      out.add(backends.get(hop));
    }
    return out.build();
  }

  @Override
  public boolean equals(Object o) {
    return o == this
        || (o instanceof HopTable t
            && t.hashCode() == hashCode()
            && t.rowBits == rowBits
            && t.backends.equals(backends)
            && Arrays.equals(t.cells, cells));
  }

  @Override
  public int hashCode() {
    int h = hash;
    if (h == 0) {
      h = 31 * backends.hashCode() + Arrays.hashCode(cells);
      hash = h == 0 ? 1 : h;
    }
    return hash;
  }
}
