package dev.veer.bpf;

/** BPF map types, numbered as the kernel's {@code enum bpf_map_type}. */
public enum MapType {
  UNSPEC(0),
  HASH(1),
  ARRAY(2),
  PROG_ARRAY(3),
  PERF_EVENT_ARRAY(4),
  PERCPU_HASH(5),
  PERCPU_ARRAY(6),
  STACK_TRACE(7),
  CGROUP_ARRAY(8),
  LRU_HASH(9),
  LRU_PERCPU_HASH(10),
  LPM_TRIE(11),
  ARRAY_OF_MAPS(12),
  HASH_OF_MAPS(13),
  DEVMAP(14),
  SOCKMAP(15),
  CPUMAP(16),
  XSKMAP(17),
  SOCKHASH(18),
  CGROUP_STORAGE(19),
  REUSEPORT_SOCKARRAY(20),
  PERCPU_CGROUP_STORAGE(21),
  QUEUE(22),
  STACK(23),
  SK_STORAGE(24),
  DEVMAP_HASH(25),
  STRUCT_OPS(26),
  RINGBUF(27),
  INODE_STORAGE(28),
  TASK_STORAGE(29),
  BLOOM_FILTER(30),
  USER_RINGBUF(31),
  CGRP_STORAGE(32),
  ARENA(33),
  /** A type newer than this library; {@link #code()} is then -1. */
  UNKNOWN(-1);

  private static final MapType[] BY_CODE = new MapType[34];

  static {
    for (MapType type : values()) {
      if (type.code >= 0) {
        BY_CODE[type.code] = type;
      }
    }
  }

  private final int code;

  MapType(int code) {
    this.code = code;
  }

  /** The kernel's number for this type. */
  public int code() {
    return code;
  }

  /** Values of these types hold one slot per possible CPU. */
  public boolean isPerCpu() {
    return this == PERCPU_HASH
        || this == PERCPU_ARRAY
        || this == LRU_PERCPU_HASH
        || this == PERCPU_CGROUP_STORAGE;
  }

  public static MapType of(int code) {
    return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : UNKNOWN;
  }
}
