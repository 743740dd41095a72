package dev.veer.director.sync;

import com.google.common.collect.ImmutableMap;
import com.google.common.collect.MapDifference;
import com.google.common.collect.Maps;
import com.google.protobuf.ByteString;
import dev.veer.bpf.BpfMap;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DirectorProgram;
import dev.veer.bpf.dataplane.ServiceKey;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The director program's maps as the kernel holds them: read back with {@link BpfMap} lookups and
 * decoded here from the layouts of veer_maps.h, not by the classes that wrote them.
 */
final class KernelMaps {
  /** struct veer_service_slot: key (20), used (4), struct veer_service (12). */
  private static final int SLOT_USED = 20;

  private static final int SLOT_TABLE = 24;
  private static final int SLOT_ROW_BITS = 32;
  private static final int SLOT_FLAGS = 33;

  /** struct veer_backend: next-hop cache (32), address (16), family (1). */
  private static final int BACKEND_ADDRESS = 32;

  private static final int BACKEND_FAMILY = 48;

  private final BpfMap services;
  private final BpfMap tables;
  private final BpfMap backends;
  private final BpfMap config;

  KernelMaps(DirectorProgram program) {
    Map<String, BpfMap> maps = program.maps();
    this.services = maps.get("services");
    this.tables = maps.get("hop_tables");
    this.backends = maps.get("backends");
    this.config = maps.get("config");
  }

  /**
   * Every non-zero entry of the maps a packet reads, by "map/key": the config, the services table
   * and each table (by the inner map's id and by content), the backends.
   */
  ImmutableMap<String, ByteString> image() {
    Map<String, ByteString> out = new TreeMap<>();
    put(out, "config", config.lookup(u32(0)));
    Optional<byte[]> servicesId = services.lookup(u32(0));
    put(out, "services", servicesId);
    servicesId.ifPresent(id -> readInner(id, "services/", out));
    for (int slot = 0; slot < tables.maxEntries(); slot++) {
      Optional<byte[]> tableId = tables.lookup(u32(slot));
      put(out, "tables/" + slot, tableId);
      int at = slot;
      tableId.ifPresent(id -> readInner(id, "tables/" + at + "/", out));
    }
    for (int index = 0; index < backends.maxEntries(); index++) {
      put(out, "backends/" + index, backends.lookup(u32(index)));
    }
    return ImmutableMap.copyOf(out);
  }

  /** "" if the images are equal, else a short account of what differs. */
  static String difference(Map<String, ByteString> before, Map<String, ByteString> after) {
    MapDifference<String, ByteString> d = Maps.difference(before, after);
    if (d.areEqual()) {
      return "";
    }
    return "gone "
        + first(d.entriesOnlyOnLeft().keySet())
        + ", new "
        + first(d.entriesOnlyOnRight().keySet())
        + ", changed "
        + first(d.entriesDiffering().keySet());
  }

  private static String first(java.util.Set<String> keys) {
    return keys.size() + " " + keys.stream().limit(5).toList();
  }

  /** The flow-hash key in the config map (struct veer_director_config: k0, k1 first). */
  byte[] hashKey() {
    return Arrays.copyOf(config.lookup(u32(0)).orElseThrow(), 16);
  }

  /**
   * Each service's rows as the data plane walks them: its slot in the services table, the table in
   * the slot it names, each row's backend indices looked up in the backends map.
   */
  Map<ServiceKey, List<List<InetAddress>>> services() {
    Map<ServiceKey, List<List<InetAddress>>> out = new LinkedHashMap<>();
    Optional<byte[]> servicesId = services.lookup(u32(0));
    if (servicesId.isEmpty()) {
      return out;
    }
    try (BpfMap slots = BpfMap.openById(readU32(servicesId.get(), 0))) {
      for (int slot = 0; slot < slots.maxEntries(); slot++) {
        byte[] value = slots.lookup(u32(slot)).orElseThrow();
        int protocol = value[18] & 0xff;
        if (readU32(value, SLOT_USED) == 0 || protocol == 0) {
          continue; // empty, or a VIP's mark
        }
        InetAddress vip = address(value, 0, value[19]);
        int port = (value[16] & 0xff) << 8 | (value[17] & 0xff);
        boolean narrow = (value[SLOT_FLAGS] & VeerAbi.SVC_NARROW_ROWS) != 0;
        out.put(
            new ServiceKey(vip, port, protocol),
            rows(readU32(value, SLOT_TABLE), narrow, value[SLOT_ROW_BITS]));
      }
    }
    return out;
  }

  /**
   * A table's rows: {@code 2^rowBits} rows of backend positions (a wide row an 8-byte entry, two
   * narrow ones an entry), then each position's backends-map index, an entry each.
   */
  private List<List<InetAddress>> rows(int tableSlot, boolean narrow, int rowBits) {
    int hopsPerRow = narrow ? VeerAbi.NARROW_HOPS : VeerAbi.MAX_HOPS;
    byte[] id =
        tables
            .lookup(u32(tableSlot))
            .orElseThrow(() -> new AssertionError("no table in slot " + tableSlot));
    List<List<InetAddress>> out = new ArrayList<>();
    int rows = 1 << rowBits;
    int list = narrow ? rows / 2 : rows;
    try (BpfMap table = BpfMap.openById(readU32(id, 0))) {
      for (int row = 0; row < rows; row++) {
        ByteBuffer cells =
            ByteBuffer.wrap(table.lookup(u32(narrow ? row / 2 : row)).orElseThrow())
                .order(ByteOrder.LITTLE_ENDIAN);
        if (narrow && row % 2 == 1) {
          cells.position(2 * VeerAbi.NARROW_HOPS);
        }
        List<InetAddress> hops = new ArrayList<>();
        for (int hop = 0; hop < hopsPerRow; hop++) {
          int position = cells.getShort() & 0xffff;
          if (position != 0) {
            int index = readU32(table.lookup(u32(list + position - 1)).orElseThrow(), 0);
            byte[] backend = backends.lookup(u32(index)).orElseThrow();
            hops.add(address(backend, BACKEND_ADDRESS, backend[BACKEND_FAMILY]));
          }
        }
        out.add(hops);
      }
    }
    return out;
  }

  private static void readInner(byte[] id, String prefix, Map<String, ByteString> out) {
    try (BpfMap inner = BpfMap.openById(readU32(id, 0))) {
      for (int key = 0; key < inner.maxEntries(); key++) {
        put(out, prefix + key, inner.lookup(u32(key)));
      }
    }
  }

  private static void put(Map<String, ByteString> out, String key, Optional<byte[]> value) {
    value
        .filter(v -> !Arrays.equals(v, new byte[v.length]))
        .ifPresent(v -> out.put(key, ByteString.copyFrom(v)));
  }

  private static InetAddress address(byte[] bytes, int offset, byte family) {
    int length = family == VeerAbi.FAMILY_IPV4 ? 4 : 16;
    try {
      return InetAddress.getByAddress(Arrays.copyOfRange(bytes, offset, offset + length));
    } catch (UnknownHostException e) {
      throw new AssertionError(e);
    }
  }

  private static byte[] u32(int value) {
    return ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(value).array();
  }

  private static int readU32(byte[] bytes, int offset) {
    return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getInt(offset);
  }
}
