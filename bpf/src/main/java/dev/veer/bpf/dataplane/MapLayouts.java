package dev.veer.bpf.dataplane;

import dev.veer.bpf.BpfMap;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Byte-level helpers shared by the map codecs. */
final class MapLayouts {
  /** struct veer_nexthop: filled in by the data plane, zero when written from here. */
  static final int NEXTHOP_SIZE = 32;

  private MapLayouts() {}

  /** Fails when a map's sizes disagree with the Java codec: veer_maps.h and Java drifted apart. */
  static void check(BpfMap map, int keySize, int valueSize) {
    if (map.keySize() != keySize || map.valueSize() != valueSize) {
      throw new IllegalStateException(
          String.format(
              "map %s has key/value sizes %d/%d but Veer's Java codec expects %d/%d: veer_maps.h and "
                  + "dev.veer.bpf.dataplane disagree (rebuild both from one commit)",
              map.name(), map.keySize(), map.valueSize(), keySize, valueSize));
    }
  }

  static byte[] u32(int value) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array();
  }

  /** The little-endian u32 at {@code offset}. */
  static int readU32(byte[] bytes, int offset) {
    return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getInt(offset);
  }

  static int readU32(byte[] bytes) {
    return readU32(bytes, 0);
  }

  /** Sums a little-endian u64 at {@code offset} across per-CPU values. */
  static long sumPerCpu(byte[][] perCpu, int offset) {
    long sum = 0;
    for (byte[] value : perCpu) {
      sum += ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN).getLong(offset);
    }
    return sum;
  }

  static int possibleCpus() {
    return BpfMap.possibleCpus();
  }
}
