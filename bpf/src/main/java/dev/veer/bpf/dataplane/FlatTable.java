package dev.veer.bpf.dataplane;

import dev.veer.bpf.BpfMap;
import dev.veer.bpf.MapSpec;
import dev.veer.bpf.abi.VeerAbi;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

/**
 * Builds and installs the exact-match tables of veer_flat.h: a fixed array of
 * {@link VeerAbi#FLAT_SLOTS} slots (20-byte key, a used word, the value), each
 * key within {@link VeerAbi#FLAT_PROBES} slots of its home. A table is built
 * whole into a new inner map and swapped in with one update of the outer map,
 * so the data plane sees the old set or the new one.
 */
final class FlatTable {
  static final int KEY_SIZE = 20;
  private static final int USED_OFFSET = KEY_SIZE;

  private FlatTable() {}

  /** The home slot of a key; the same function as veer_flat_home() in C. */
  static int home(byte[] key) {
    ByteBuffer b = ByteBuffer.wrap(key).order(ByteOrder.LITTLE_ENDIAN);
    int h = (b.getInt(0) ^ b.getInt(8) ^ b.getInt(16)) * 0x9e3779b1;
    h ^= (b.getInt(4) ^ b.getInt(12)) * 0x85ebca77;
    h ^= h >>> 15;
    return h & (VeerAbi.FLAT_SLOTS - 1);
  }

  /**
   * Lays the entries out in slots of {@code slotSize} bytes, values at
   * {@code valueOffset}. Fails, changing nothing, when a key cannot be placed
   * within the probe limit.
   */
  static byte[] layout(Map<byte[], byte[]> entries, int slotSize, int valueOffset) {
    if (entries.size() > VeerAbi.FLAT_SLOTS / 2) {
      throw new IllegalArgumentException("at most " + VeerAbi.FLAT_SLOTS / 2 + " entries fit, got " + entries.size());
    }
    byte[] slots = new byte[VeerAbi.FLAT_SLOTS * slotSize];
    ByteBuffer b = ByteBuffer.wrap(slots).order(ByteOrder.LITTLE_ENDIAN);
    for (Map.Entry<byte[], byte[]> e : entries.entrySet()) {
      int home = home(e.getKey());
      int placed = -1;
      for (int i = 0; i < VeerAbi.FLAT_PROBES && placed < 0; i++) {
        int slot = (home + i) & (VeerAbi.FLAT_SLOTS - 1);
        if (b.getInt(slot * slotSize + USED_OFFSET) == 0) {
          placed = slot;
        }
      }
      if (placed < 0) {
        throw new IllegalStateException("cannot place a key within " + VeerAbi.FLAT_PROBES
            + " slots of its home: too many keys collide (" + entries.size() + " entries)");
      }
      int at = placed * slotSize;
      b.put(at, e.getKey()).putInt(at + USED_OFFSET, 1).put(at + valueOffset, e.getValue());
    }
    return slots;
  }

  /** Writes a laid-out table into a new inner map and points {@code outer[0]} at it. */
  static void install(BpfMap outer, String name, byte[] slots, int slotSize) {
    try (BpfMap inner = BpfMap.create(MapSpec.array(name, 4, slotSize, VeerAbi.FLAT_SLOTS, 0))) {
      ByteBuffer keys = ByteBuffer.allocate(VeerAbi.FLAT_SLOTS * 4).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < VeerAbi.FLAT_SLOTS; i++) {
        keys.putInt(i);
      }
      inner.updateBatch(keys.array(), slots, VeerAbi.FLAT_SLOTS);
      outer.update(MapLayouts.u32(0), MapLayouts.u32(inner.fd()));
    }
  }
}
