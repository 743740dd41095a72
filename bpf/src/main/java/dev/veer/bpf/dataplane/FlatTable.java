package dev.veer.bpf.dataplane;

import dev.veer.bpf.BpfMap;
import dev.veer.bpf.MapSpec;
import dev.veer.bpf.abi.VeerAbi;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;

/**
 * Builds and installs the exact-match tables of veer_flat.h: a fixed array of a power-of-two number
 * of slots, the table's own (20-byte key, a used word, the value), each key within {@link
 * VeerAbi#FLAT_PROBES} slots of its home. A table is built whole into a new inner map and swapped
 * in with one update of the outer map, so the data plane sees the old set or the new one.
 */
final class FlatTable {
  static final int KEY_SIZE = 20;

  /** The director's services table. */
  static final FlatTable SERVICES = new FlatTable(VeerAbi.SERVICE_SLOTS);

  /** A proxy's allowed and served tables. */
  static final FlatTable PEERS = new FlatTable(VeerAbi.PEER_SLOTS);

  private static final int USED_OFFSET = KEY_SIZE;

  private final int slots;

  private FlatTable(int slots) {
    this.slots = slots;
  }

  int slots() {
    return slots;
  }

  /** Entries a table takes: a quarter of its slots, so probe sequences stay short. */
  int capacity() {
    return slots / 4;
  }

  /** The home slot of a key; the same function as veer_flat_home() in C. */
  int home(byte[] key) {
    ByteBuffer b = ByteBuffer.wrap(key).order(ByteOrder.LITTLE_ENDIAN);
    int h =
        b.getInt(0)
            + Integer.rotateLeft(b.getInt(4), 7)
            + Integer.rotateLeft(b.getInt(8), 14)
            + Integer.rotateLeft(b.getInt(12), 21)
            + Integer.rotateLeft(b.getInt(16), 28);
    h ^= h >>> 16;
    h *= 0x85ebca6b;
    h ^= h >>> 13;
    h *= 0xc2b2ae35;
    h ^= h >>> 16;
    return h & (slots - 1);
  }

  /**
   * Lays the entries out in slots of {@code slotSize} bytes, values at {@code valueOffset}, by
   * Robin Hood insertion: a key that has come further from its home takes the slot of one that has
   * come less far, which keeps the longest distance short (the data plane probes at most {@link
   * VeerAbi#FLAT_PROBES} slots, stopping at the first empty one). Fails, changing nothing, when a
   * key cannot be placed that close.
   */
  byte[] layout(Map<byte[], byte[]> entries, int slotSize, int valueOffset) {
    if (entries.size() > capacity()) {
      throw new IllegalArgumentException(
          "at most " + capacity() + " entries fit, got " + entries.size());
    }
    byte[][] keys = new byte[slots][];
    byte[][] values = new byte[slots][];
    int[] homes = new int[slots];
    for (Map.Entry<byte[], byte[]> e : entries.entrySet()) {
      byte[] key = e.getKey();
      byte[] value = e.getValue();
      int home = home(key);
      for (int distance = 0; ; distance++) {
        if (distance >= VeerAbi.FLAT_PROBES) {
          throw new IllegalStateException(
              "cannot place a key within "
                  + VeerAbi.FLAT_PROBES
                  + " slots of its home ("
                  + entries.size()
                  + " entries)");
        }
        int slot = (home + distance) & (slots - 1);
        if (keys[slot] == null) {
          keys[slot] = key;
          values[slot] = value;
          homes[slot] = home;
          break;
        }
        int residentDistance = (slot - homes[slot]) & (slots - 1);
        if (residentDistance < distance) {
          byte[] k = keys[slot];
          byte[] v = values[slot];
          int h = homes[slot];
          keys[slot] = key;
          values[slot] = value;
          homes[slot] = home;
          key = k;
          value = v;
          home = h;
          distance = residentDistance;
        }
      }
    }
    byte[] out = new byte[slots * slotSize];
    ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
    for (int slot = 0; slot < slots; slot++) {
      if (keys[slot] != null) {
        int at = slot * slotSize;
        b.put(at, keys[slot]).putInt(at + USED_OFFSET, 1).put(at + valueOffset, values[slot]);
      }
    }
    return out;
  }

  /** Lays {@code entries} out ({@link #layout}) and installs them ({@link #install}). */
  void build(
      BpfMap outer, String name, Map<byte[], byte[]> entries, int slotSize, int valueOffset) {
    install(outer, name, layout(entries, slotSize, valueOffset), slotSize);
  }

  /** Writes a laid-out table into a new inner map and points {@code outer[0]} at it. */
  void install(BpfMap outer, String name, byte[] laidOut, int slotSize) {
    install(outer, name, laidOut, slotSize, inner -> {});
  }

  /**
   * {@link #install}, {@code beforeSwap} seeing the filled inner map before the outer points at it.
   */
  void install(
      BpfMap outer,
      String name,
      byte[] laidOut,
      int slotSize,
      java.util.function.Consumer<BpfMap> beforeSwap) {
    try (BpfMap inner = BpfMap.create(MapSpec.array(name, 4, slotSize, slots, 0))) {
      // A new array is all zeros, the empty slot: only the used slots are written, so a change
      // costs the entries, not the table's 2^17 slots.
      ByteBuffer keys = ByteBuffer.allocate(slots * 4).order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer values = ByteBuffer.allocate(laidOut.length);
      ByteBuffer in = ByteBuffer.wrap(laidOut).order(ByteOrder.LITTLE_ENDIAN);
      int used = 0;
      for (int i = 0; i < slots; i++) {
        if (in.getInt(i * slotSize + USED_OFFSET) != 0) {
          keys.putInt(i);
          values.put(laidOut, i * slotSize, slotSize);
          used++;
        }
      }
      inner.updateBatch(
          java.util.Arrays.copyOf(keys.array(), used * 4),
          java.util.Arrays.copyOf(values.array(), used * slotSize),
          used);
      beforeSwap.accept(inner);
      outer.update(MapLayouts.u32(0), MapLayouts.u32(inner.fd()));
    }
  }
}
