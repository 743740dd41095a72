package dev.veer.bpf;

import java.util.regex.Pattern;

/**
 * What {@link BpfMap#create} creates.
 *
 * @param name kernel map name: at most 15 characters of [A-Za-z0-9_.]
 * @param flags map_flags, e.g. {@link #BPF_F_INNER_MAP}
 */
public record MapSpec(
    MapType type, String name, int keySize, int valueSize, int maxEntries, int flags) {
  public static final int BPF_F_NO_PREALLOC = 1;
  public static final int BPF_F_RDONLY_PROG = 1 << 7;
  public static final int BPF_F_WRONLY_PROG = 1 << 8;
  public static final int BPF_F_MMAPABLE = 1 << 10;

  /** Lets the map be an inner map of map-in-maps whose template has a different max_entries. */
  public static final int BPF_F_INNER_MAP = 1 << 12;

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.]{0,15}");

  public MapSpec {
    if (type == null || type == MapType.UNKNOWN || type == MapType.UNSPEC) {
      throw new IllegalArgumentException("map type must be a concrete type, got " + type);
    }
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "map name must be at most 15 characters of [A-Za-z0-9_.], got '" + name + "'");
    }
    if (keySize < 0 || valueSize < 0 || maxEntries < 0) {
      throw new IllegalArgumentException(
          "sizes must not be negative: " + keySize + "/" + valueSize + "/" + maxEntries);
    }
  }

  public static MapSpec of(MapType type, String name, int keySize, int valueSize, int maxEntries) {
    return new MapSpec(type, name, keySize, valueSize, maxEntries, 0);
  }

  public static MapSpec array(String name, int keySize, int valueSize, int maxEntries, int flags) {
    return new MapSpec(MapType.ARRAY, name, keySize, valueSize, maxEntries, flags);
  }

  public MapSpec withFlags(int newFlags) {
    return new MapSpec(type, name, keySize, valueSize, maxEntries, newFlags);
  }
}
