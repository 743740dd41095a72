package dev.veer.bpf.dataplane;

import dev.veer.bpf.BpfMap;
import dev.veer.bpf.MapSpec;
import dev.veer.bpf.abi.VeerAbi;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One forwarding table (an inner map of the director's {@code tables}): rows of {@link
 * VeerAbi#MAX_HOPS} 16-bit backend indices. Built beside the live table and swapped in whole, so
 * the data plane never sees half a table.
 */
public final class TableMap implements AutoCloseable {
  private static final int ROW_SIZE = 2 * VeerAbi.MAX_HOPS;

  private final BpfMap map;
  private final int rowBits;

  private TableMap(BpfMap map, int rowBits) {
    this.map = map;
    this.rowBits = rowBits;
  }

  static TableMap create(int rowBits) {
    return new TableMap(BpfMap.create(spec(rowBits)), rowBits);
  }

  /** The shape of a table with {@code 2^rowBits} rows; also the director's inner-map template. */
  static MapSpec spec(int rowBits) {
    // Mappable: a table of 2^16 rows is written with one copy instead of a batch of 65,536 updates.
    return MapSpec.array("veer_table", 4, ROW_SIZE, 1 << rowBits, MapSpec.BPF_F_MMAPABLE);
  }

  public int rowBits() {
    return rowBits;
  }

  int fd() {
    return map.fd();
  }

  /** The memory the kernel charges for this table. */
  public long memlockBytes() {
    return map.memlockBytes();
  }

  BpfMap map() {
    return map;
  }

  /**
   * Writes every row of {@code table}, translating its backend positions into backends-map indices:
   * {@code kernelIndex[i]} is the map index of {@code table.backends().get(i)}. One pass straight
   * into the mapped map.
   */
  public void write(HopTable table, int[] kernelIndex) {
    if (table.rowBits() != rowBits) {
      throw new IllegalArgumentException(
          "a table of 2^" + table.rowBits() + " rows does not fit 2^" + rowBits);
    }
    char[] translate = new char[kernelIndex.length + 1];
    for (int i = 0; i < kernelIndex.length; i++) {
      translate[i + 1] = (char) kernelIndex[i];
    }
    try (BpfMap.Mapping mapping = map.mmap()) {
      MemorySegment rows = mapping.segment();
      for (int i = 0; i < table.cellCount(); i++) {
        rows.setAtIndex(ValueLayout.JAVA_CHAR_UNALIGNED, i, translate[table.cell(i)]);
      }
    }
  }

  /** Reads a row back: backend indices, 0 after the last hop. */
  public int[] row(int row) {
    byte[] value = map.lookup(MapLayouts.u32(row)).orElseThrow();
    ByteBuffer b = ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN);
    int[] out = new int[VeerAbi.MAX_HOPS];
    for (int i = 0; i < out.length; i++) {
      out[i] = b.getShort() & 0xffff;
    }
    return out;
  }

  @Override
  public void close() {
    map.close();
  }
}
