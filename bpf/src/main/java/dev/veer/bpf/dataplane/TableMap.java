package dev.veer.bpf.dataplane;

import dev.veer.bpf.BpfMap;
import dev.veer.bpf.MapSpec;
import dev.veer.bpf.abi.VeerAbi;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One forwarding table, an inner map of the director's {@code wide_tables} or {@code narrow_tables}
 * ({@code veer_maps.h}): {@code 2^rowBits} rows of backend positions (1 for the table's first
 * backend, 0 ending the row), {@link VeerAbi#MAX_HOPS} a row when wide and {@link
 * VeerAbi#NARROW_HOPS} when narrow, then one entry per backend holding its backends-map index.
 * Built beside the live table and swapped in whole, so the data plane never sees half a table.
 */
public final class TableMap implements AutoCloseable {
  /** Every table and both templates carry these flags: the kernel compares them. */
  private static final int FLAGS = MapSpec.BPF_F_MMAPABLE | MapSpec.BPF_F_INNER_MAP;

  private final BpfMap map;
  private final int rowBits;
  private final boolean narrow;
  private final int backends;

  private TableMap(BpfMap map, int rowBits, boolean narrow, int backends) {
    this.map = map;
    this.rowBits = rowBits;
    this.narrow = narrow;
    this.backends = backends;
  }

  /** Whether rows of at most {@code maxHops} hops fit a narrow table. */
  public static boolean fitsNarrow(int maxHops) {
    return maxHops <= VeerAbi.NARROW_HOPS;
  }

  static TableMap create(int rowBits, boolean narrow, int backends) {
    MapSpec spec =
        MapSpec.array(
            "veer_table", 4, ENTRY, rowEntries(rowBits, narrow) + Math.max(1, backends), FLAGS);
    return new TableMap(BpfMap.create(spec), rowBits, narrow, backends);
  }

  /** The shape every table has but its size: the outer map's inner-map template. */
  static MapSpec template() {
    return MapSpec.array("veer_table", 4, ENTRY, 1, FLAGS);
  }

  /** Bytes of an entry: a wide row, two narrow rows, or one backend of the list. */
  private static final int ENTRY = 2 * VeerAbi.MAX_HOPS;

  private static int rowEntries(int rowBits, boolean narrow) {
    return narrow ? 1 << (rowBits - 1) : 1 << rowBits;
  }

  private static int hops(boolean narrow) {
    return narrow ? VeerAbi.NARROW_HOPS : VeerAbi.MAX_HOPS;
  }

  /**
   * A table of the director read back, of {@code 2^rowBits} rows: its width from which outer map
   * holds it.
   */
  static TableMap of(BpfMap map, int rowBits, boolean narrow) {
    int backends = map.maxEntries() - rowEntries(rowBits, narrow);
    if (backends < 0 || map.valueSize() != ENTRY) {
      throw new IllegalStateException(
          "a pinned table of "
              + map.maxEntries()
              + " entries of "
              + map.valueSize()
              + " bytes is no table of 2^"
              + rowBits
              + " rows: start the director with the row bits its pins were made with, or"
              + " remove the pins");
    }
    return new TableMap(map, rowBits, narrow, backends);
  }

  public int rowBits() {
    return rowBits;
  }

  public boolean narrow() {
    return narrow;
  }

  int fd() {
    return map.fd();
  }

  BpfMap map() {
    return map;
  }

  /** The memory the kernel charges for this table. */
  public long memlockBytes() {
    return map.memlockBytes();
  }

  /**
   * Writes every row of {@code table} and its list of backends: {@code kernelIndex[i]} is the
   * backends-map index of {@code table.backends().get(i)}. One pass straight into the mapped map.
   *
   * @throws IllegalArgumentException if the table has another row count, more backends than this
   *     map was made for, or a row longer than a narrow table's
   */
  public void write(HopTable table, int[] kernelIndex) {
    if (table.rowBits() != rowBits) {
      throw new IllegalArgumentException(
          "a table of 2^" + table.rowBits() + " rows does not fit 2^" + rowBits);
    }
    if (kernelIndex.length != table.backends().size() || kernelIndex.length > backends) {
      throw new IllegalArgumentException(
          kernelIndex.length + " backends do not fit a table made for " + backends);
    }
    if (narrow && !fitsNarrow(table.maxHops())) {
      throw new IllegalArgumentException(
          "rows of " + table.maxHops() + " hops do not fit a narrow table");
    }
    int hops = hops(narrow);
    int rows = 1 << rowBits;
    try (BpfMap.Mapping mapping = map.mmap()) {
      MemorySegment out = mapping.segment();
      long at = 0;
      for (int row = 0; row < rows; row++) {
        for (int hop = 0; hop < hops; hop++) {
          out.setAtIndex(
              ValueLayout.JAVA_CHAR_UNALIGNED, at++, (char) (table.hopIndex(row, hop) + 1));
        }
      }
      long list = (long) rowEntries(rowBits, narrow) * ENTRY;
      for (int i = 0; i < kernelIndex.length; i++) {
        out.set(ValueLayout.JAVA_INT_UNALIGNED, list + (long) i * ENTRY, kernelIndex[i]);
      }
    }
  }

  /**
   * Reads the table back as backends-map indices: {@link VeerAbi#MAX_HOPS} a row, 0 after the row's
   * last hop.
   *
   * @throws IllegalStateException if a row names a position past the table's list of backends
   */
  public int[] cells() {
    int hops = hops(narrow);
    int rows = 1 << rowBits;
    int[] cells = new int[rows * VeerAbi.MAX_HOPS];
    try (BpfMap.Mapping mapping = map.mmap()) {
      MemorySegment in = mapping.segment();
      int[] list = new int[backends];
      long at0 = (long) rowEntries(rowBits, narrow) * ENTRY;
      for (int i = 0; i < backends; i++) {
        list[i] = in.get(ValueLayout.JAVA_INT_UNALIGNED, at0 + (long) i * ENTRY);
      }
      long at = 0;
      for (int row = 0; row < rows; row++) {
        for (int hop = 0; hop < hops; hop++) {
          int position = in.getAtIndex(ValueLayout.JAVA_CHAR_UNALIGNED, at++);
          if (position > backends) {
            throw new IllegalStateException(
                "row " + row + " names backend " + position + " of a table of " + backends);
          }
          cells[row * VeerAbi.MAX_HOPS + hop] = position == 0 ? 0 : list[position - 1];
        }
      }
    }
    return cells;
  }

  /** Reads a row back: backends-map indices, 0 after the last hop. */
  public int[] row(int row) {
    int[] all = cells();
    int[] out = new int[VeerAbi.MAX_HOPS];
    System.arraycopy(all, row * VeerAbi.MAX_HOPS, out, 0, VeerAbi.MAX_HOPS);
    return out;
  }

  @Override
  public void close() {
    map.close();
  }
}
