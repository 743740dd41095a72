package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import dev.veer.bpf.abi.VeerAbi;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Where a service's table and counters live (struct veer_service). */
public record ServiceEntry(int tableSlot, int statsSlot, int rowBits, int flags) {
  static final int SIZE = 12;

  public ServiceEntry {
    checkArgument(
        tableSlot >= 0 && tableSlot < VeerAbi.MAX_TABLES, "table slot out of range: %s", tableSlot);
    checkArgument(
        statsSlot >= 0 && statsSlot < VeerAbi.MAX_SERVICES,
        "stats slot out of range: %s",
        statsSlot);
    RowBits.check(rowBits);
  }

  /** An entry as {@link #encode()} writes it. */
  static ServiceEntry decode(byte[] bytes, int offset) {
    ByteBuffer b = ByteBuffer.wrap(bytes, offset, SIZE).order(ByteOrder.LITTLE_ENDIAN);
    return new ServiceEntry(b.getInt(), b.getInt(), b.get() & 0xff, b.get() & 0xff);
  }

  byte[] encode() {
    return ByteBuffer.allocate(SIZE)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putInt(tableSlot)
        .putInt(statsSlot)
        .put((byte) rowBits)
        .put((byte) flags)
        .putShort((short) 0)
        .array();
  }
}
