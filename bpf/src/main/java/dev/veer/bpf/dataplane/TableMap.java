package dev.veer.bpf.dataplane;

import dev.veer.bpf.BpfMap;
import dev.veer.bpf.MapSpec;
import dev.veer.bpf.abi.VeerAbi;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One forwarding table (an inner map of the director's {@code tables}): rows
 * of {@link VeerAbi#MAX_HOPS} 16-bit backend indices. Built beside the live
 * table and swapped in whole, so the data plane never sees half a table.
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
    return MapSpec.array("veer_table", 4, ROW_SIZE, 1 << rowBits, 0);
  }

  public int rowBits() {
    return rowBits;
  }

  int fd() {
    return map.fd();
  }

  /**
   * Writes every row in one batch. {@code backendIndices[row * MAX_HOPS + i]}
   * is a backends-map index, 0 after the row's last hop.
   */
  public void write(int[] backendIndices) {
    int rows = 1 << rowBits;
    if (backendIndices.length != rows * VeerAbi.MAX_HOPS) {
      throw new IllegalArgumentException("expected " + rows * VeerAbi.MAX_HOPS + " entries, got "
          + backendIndices.length);
    }
    ByteBuffer keys = ByteBuffer.allocate(rows * 4).order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer values = ByteBuffer.allocate(rows * ROW_SIZE).order(ByteOrder.LITTLE_ENDIAN);
    for (int row = 0; row < rows; row++) {
      keys.putInt(row);
    }
    for (int index : backendIndices) {
      values.putShort((short) index);
    }
    map.updateBatch(keys.array(), values.array(), rows);
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
