package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A BPF map, either one of a {@link BpfObject}'s maps (owned by the object: {@link #close()}
 * does nothing) or one this process opened by {@link #create} or {@link #openPinned} (owns its
 * fd: {@link #close()} closes it; the kernel frees the map when nothing else refers to it).
 *
 * <p>Keys and values are the raw bytes of the C structs, in host byte order. Per-CPU maps
 * take and return one value per possible CPU ({@link #lookupPerCpu}, {@link #updatePerCpu}).
 * Operations are single BPF syscalls and safe to call from several threads.
 */
public final class BpfMap implements AutoCloseable {
  /** How an update treats an existing or missing key (BPF_ANY, BPF_NOEXIST, BPF_EXIST). */
  public enum UpdateMode {
    /** Create or replace. */
    ANY(0),
    /** Create only; fails with EEXIST if the key exists. */
    NOEXIST(1),
    /** Replace only; fails with ENOENT if the key is missing. */
    EXIST(2);

    final long flags;

    UpdateMode(long flags) {
      this.flags = flags;
    }
  }

  private static final int MAP_INFO_SIZE = 88;
  private static final int OBJ_NAME_LEN = 16;
  private static final long BATCH_OPTS_SIZE = 24;
  private static final long CREATE_OPTS_SIZE = 48;

  private final String name;
  private final int fd;
  private final int id;
  private final MapType type;
  private final int keySize;
  private final int valueSize;
  private final int maxEntries;
  private final int flags;
  /** Null when this map owns its fd. */
  private final BpfObject owner;
  private final AtomicBoolean closed = new AtomicBoolean();

  private BpfMap(String name, int fd, int id, MapType type, int keySize, int valueSize, int maxEntries,
      int flags, BpfObject owner) {
    this.name = name;
    this.fd = fd;
    this.id = id;
    this.type = type;
    this.keySize = keySize;
    this.valueSize = valueSize;
    this.maxEntries = maxEntries;
    this.flags = flags;
    this.owner = owner;
  }

  /** One of a loaded object's maps. */
  static BpfMap ofObject(BpfObject owner, MemorySegment map) {
    int fd = Libbpf.mapFd(map);
    return new BpfMap(Libbpf.mapName(map), fd, info(fd, "bpf_map").id(), MapType.of(Libbpf.mapType(map)),
        Libbpf.mapKeySize(map), Libbpf.mapValueSize(map), Libbpf.mapMaxEntries(map),
        Libbpf.mapFlags(map), owner);
  }

  /** Creates a map (bpf_map_create); the returned map owns the fd. */
  public static BpfMap create(MapSpec spec) {
    int fd;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment opts = arena.allocate(CREATE_OPTS_SIZE, 8);
      opts.set(JAVA_LONG, 0, CREATE_OPTS_SIZE); // sz
      opts.set(JAVA_INT, 28, spec.flags()); // map_flags
      fd = Libbpf.mapCreate(spec.type().code(), arena.allocateFrom(spec.name()), spec.keySize(),
          spec.valueSize(), spec.maxEntries(), opts);
    }
    if (fd < 0) {
      throw new BpfException("bpf_map_create(" + spec.name() + ")", -fd, spec.toString());
    }
    return ownedFd(fd, spec.name());
  }

  /** Opens a pinned map (bpf_obj_get); the returned map owns the fd. */
  public static BpfMap openPinned(Path path) {
    int fd;
    try (Arena arena = Arena.ofConfined()) {
      fd = Libbpf.objGet(arena.allocateFrom(path.toString()));
    }
    if (fd < 0) {
      throw new BpfException("bpf_obj_get(" + path + ")", -fd);
    }
    if (!isMapFd(fd)) {
      Libc.close(fd);
      throw new IllegalArgumentException(path + " is a pinned BPF object but not a map");
    }
    return ownedFd(fd, path.toString());
  }

  /** Opens a map by its kernel id (an inner map, say); the returned map owns the fd. */
  public static BpfMap openById(int id) {
    int fd = Libbpf.mapGetFdById(id);
    if (fd < 0) {
      throw new BpfException("bpf_map_get_fd_by_id(" + id + ")", -fd);
    }
    return ownedFd(fd, "map id " + id);
  }

  private static BpfMap ownedFd(int fd, String what) {
    try {
      MapInfo info = info(fd, what);
      return new BpfMap(info.name(), fd, info.id(), MapType.of(info.type()), info.keySize(),
          info.valueSize(), info.maxEntries(), info.flags(), null);
    } catch (RuntimeException e) {
      Libc.close(fd);
      throw e;
    }
  }

  /** The kernel's name (at most 15 characters) or, for an object's map, libbpf's name. */
  public String name() {
    return name;
  }

  /** The map's fd; valid until this map (or its object) is closed. */
  public int fd() {
    ensureOpen();
    return fd;
  }

  /** The kernel's id of the map, as map-in-map lookups return it. */
  public int id() {
    return id;
  }

  public MapType type() {
    return type;
  }

  public int keySize() {
    return keySize;
  }

  public int valueSize() {
    return valueSize;
  }

  public int maxEntries() {
    return maxEntries;
  }

  /** map_flags the map was created with. */
  public int flags() {
    return flags;
  }

  /** The value stored under {@code key}, or empty if there is none. Not for per-CPU maps. */
  public Optional<byte[]> lookup(byte[] key) {
    checkKey(key);
    requireNotPerCpu("lookup", "lookupPerCpu");
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment value = arena.allocate(Math.max(valueSize, 1));
      int err = Libbpf.mapLookupElem(fd(), segment(arena, key), value);
      if (err == -BpfException.ENOENT) {
        return Optional.empty();
      }
      check(err, "bpf_map_lookup_elem");
      return Optional.of(value.asSlice(0, valueSize).toArray(JAVA_BYTE));
    }
  }

  /** Creates or replaces the value under {@code key}. Not for per-CPU maps. */
  public void update(byte[] key, byte[] value) {
    update(key, value, UpdateMode.ANY);
  }

  public void update(byte[] key, byte[] value, UpdateMode mode) {
    checkKey(key);
    checkSize("value", valueSize, value.length);
    requireNotPerCpu("update", "updatePerCpu");
    try (Arena arena = Arena.ofConfined()) {
      check(Libbpf.mapUpdateElem(fd(), segment(arena, key), segment(arena, value), mode.flags),
          "bpf_map_update_elem");
    }
  }

  /** Deletes the entry; false if there was none. Array maps cannot delete (EINVAL). */
  public boolean delete(byte[] key) {
    checkKey(key);
    try (Arena arena = Arena.ofConfined()) {
      int err = Libbpf.mapDeleteElem(fd(), segment(arena, key));
      if (err == -BpfException.ENOENT) {
        return false;
      }
      check(err, "bpf_map_delete_elem");
      return true;
    }
  }

  /**
   * All keys, by walking bpf_map_get_next_key. Not atomic: entries changed meanwhile may be
   * missed or repeated; at most {@link #maxEntries()} keys are returned.
   */
  public List<byte[]> keys() {
    List<byte[]> keys = new ArrayList<>();
    long limit = maxEntries == 0 ? Long.MAX_VALUE : maxEntries;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment current = arena.allocate(Math.max(keySize, 1));
      MemorySegment next = arena.allocate(Math.max(keySize, 1));
      int err = Libbpf.mapGetNextKey(fd(), MemorySegment.NULL, next);
      while (err == 0 && keys.size() < limit) {
        keys.add(next.asSlice(0, keySize).toArray(JAVA_BYTE));
        MemorySegment swap = current;
        current = next;
        next = swap;
        err = Libbpf.mapGetNextKey(fd, current, next);
      }
      if (err != -BpfException.ENOENT) {
        check(err, "bpf_map_get_next_key");
      }
    }
    return keys;
  }

  /**
   * The value of each possible CPU under {@code key} (index = CPU number, each
   * {@link #valueSize()} bytes), or an empty array if a per-CPU hash has no such key.
   */
  public byte[][] lookupPerCpu(byte[] key) {
    checkKey(key);
    requirePerCpu("lookupPerCpu");
    int cpus = Libbpf.numPossibleCpus();
    long stride = perCpuStride();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment values = arena.allocate(stride * cpus, 8);
      int err = Libbpf.mapLookupElem(fd(), segment(arena, key), values);
      if (err == -BpfException.ENOENT) {
        return new byte[0][];
      }
      check(err, "bpf_map_lookup_elem");
      byte[][] result = new byte[cpus][];
      for (int cpu = 0; cpu < cpus; cpu++) {
        result[cpu] = values.asSlice(cpu * stride, valueSize).toArray(JAVA_BYTE);
      }
      return result;
    }
  }

  /** Sets the value of every possible CPU under {@code key}; one value per CPU, in CPU order. */
  public void updatePerCpu(byte[] key, byte[][] perCpuValues) {
    updatePerCpu(key, perCpuValues, UpdateMode.ANY);
  }

  public void updatePerCpu(byte[] key, byte[][] perCpuValues, UpdateMode mode) {
    checkKey(key);
    requirePerCpu("updatePerCpu");
    int cpus = Libbpf.numPossibleCpus();
    checkSize("per-CPU value count", cpus, perCpuValues.length);
    long stride = perCpuStride();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment values = arena.allocate(stride * cpus, 8);
      for (int cpu = 0; cpu < cpus; cpu++) {
        checkSize("value", valueSize, perCpuValues[cpu].length);
        MemorySegment.copy(perCpuValues[cpu], 0, values, JAVA_BYTE, cpu * stride, valueSize);
      }
      check(Libbpf.mapUpdateElem(fd(), segment(arena, key), values, mode.flags), "bpf_map_update_elem");
    }
  }

  /**
   * Creates or replaces {@code count} entries in one syscall (bpf_map_update_batch):
   * {@code keys} holds count keys back to back, {@code values} count values. Not for per-CPU
   * maps. On failure the exception's detail says how many entries were written.
   */
  public void updateBatch(byte[] keys, byte[] values, int count) {
    requireNotPerCpu("updateBatch", "updatePerCpu");
    if (count < 0) {
      throw new IllegalArgumentException("count must not be negative: " + count);
    }
    checkSize("keys (" + count + " x " + keySize + ")", (long) count * keySize, keys.length);
    checkSize("values (" + count + " x " + valueSize + ")", (long) count * valueSize, values.length);
    if (count == 0) {
      return;
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment countInOut = arena.allocate(JAVA_INT);
      countInOut.set(JAVA_INT, 0, count);
      MemorySegment opts = arena.allocate(BATCH_OPTS_SIZE, 8);
      opts.set(JAVA_LONG, 0, BATCH_OPTS_SIZE); // sz; elem_flags and flags stay 0 (BPF_ANY)
      int err = Libbpf.mapUpdateBatch(fd(), segment(arena, keys), segment(arena, values), countInOut, opts);
      if (err < 0) {
        throw new BpfException("bpf_map_update_batch(" + name + ")", -err,
            countInOut.get(JAVA_INT, 0) + " of " + count + " entries were written");
      }
    }
  }

  /** Pins the map at {@code path}, which must be on a BPF filesystem (e.g. under /sys/fs/bpf). */
  public void pin(Path path) {
    try (Arena arena = Arena.ofConfined()) {
      check(Libbpf.objPin(fd(), arena.allocateFrom(path.toString())), "bpf_obj_pin", path.toString());
    }
  }

  /**
   * Maps the values of an array created with {@link MapSpec#BPF_F_MMAPABLE} into this process:
   * writes through the segment are the map's values, with no system call per element. Values
   * are laid out every {@code valueSize} rounded up to 8 bytes. Close the mapping when done.
   */
  public Mapping mmap() {
    if (type != MapType.ARRAY || (flags & MapSpec.BPF_F_MMAPABLE) == 0) {
      throw new IllegalStateException(name + " is not an array created with BPF_F_MMAPABLE");
    }
    long stride = (valueSize + 7L) & ~7L;
    long pages = (stride * maxEntries + PAGE - 1) / PAGE;
    return new Mapping(Libc.mmapShared(fd(), pages * PAGE, name), name);
  }

  private static final long PAGE = 4096;

  /** A map's values mapped into memory; {@link #close()} unmaps them. */
  public static final class Mapping implements AutoCloseable {
    private final MemorySegment segment;
    private final String name;

    private Mapping(MemorySegment segment, String name) {
      this.segment = segment;
      this.name = name;
    }

    public MemorySegment segment() {
      return segment;
    }

    @Override
    public void close() {
      Libc.munmap(segment, name);
    }
  }

  /** Possible CPUs: the number of values per key in a per-CPU map. */
  public static int possibleCpus() {
    return Libbpf.numPossibleCpus();
  }

  /** Closes the fd of a created or opened map; does nothing for an object's map. */
  @Override
  public void close() {
    if (owner == null && closed.compareAndSet(false, true)) {
      Libc.close(fd);
    }
  }

  @Override
  public String toString() {
    return "BpfMap[" + name + ", " + type + ", key " + keySize + ", value " + valueSize + ", max "
        + maxEntries + "]";
  }

  private void ensureOpen() {
    if (owner != null) {
      owner.ensureOpen();
    } else if (closed.get()) {
      throw new IllegalStateException("map " + name + " is closed");
    }
  }

  private long perCpuStride() {
    return (valueSize + 7L) & ~7L;
  }

  private void checkKey(byte[] key) {
    checkSize("key", keySize, key.length);
  }

  private void checkSize(String what, long expected, long actual) {
    if (expected != actual) {
      throw new IllegalArgumentException(
          "map " + name + ": " + what + " must be " + expected + " bytes, got " + actual);
    }
  }

  private void requireNotPerCpu(String operation, String instead) {
    if (type.isPerCpu()) {
      throw new IllegalStateException(operation + " on per-CPU map " + name + ": use " + instead);
    }
  }

  private void requirePerCpu(String operation) {
    if (!type.isPerCpu()) {
      throw new IllegalStateException(operation + " on " + type + " map " + name + ", which is not per-CPU");
    }
  }

  private void check(int err, String function) {
    check(err, function, "");
  }

  private void check(int err, String function, String detail) {
    if (err < 0) {
      throw new BpfException(function + "(" + name + ")", -err, detail);
    }
  }

  private static MemorySegment segment(Arena arena, byte[] bytes) {
    // Zero-length keys (queue/stack maps) still need a valid pointer.
    return bytes.length == 0 ? arena.allocate(1) : arena.allocateFrom(JAVA_BYTE, bytes);
  }

  private static boolean isMapFd(int fd) {
    try {
      return Files.readString(Path.of("/proc/self/fdinfo/" + fd)).contains("map_type:");
    } catch (IOException e) {
      return true; // cannot tell; the info query that follows still validates the fd
    }
  }

  private record MapInfo(int type, int id, int keySize, int valueSize, int maxEntries, int flags, String name) {}

  private static MapInfo info(int fd, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment info = arena.allocate(MAP_INFO_SIZE, 8);
      MemorySegment length = arena.allocate(JAVA_INT);
      length.set(JAVA_INT, 0, MAP_INFO_SIZE);
      int err = Libbpf.objGetInfoByFd(fd, info, length);
      if (err < 0) {
        throw new BpfException("bpf_obj_get_info_by_fd(" + what + ")", -err);
      }
      // struct bpf_map_info: type, id, key_size, value_size, max_entries, map_flags, name[16]
      byte[] rawName = info.asSlice(24, OBJ_NAME_LEN).toArray(JAVA_BYTE);
      int end = 0;
      while (end < rawName.length && rawName[end] != 0) {
        end++;
      }
      return new MapInfo(info.get(JAVA_INT, 0), info.get(JAVA_INT, 4), info.get(JAVA_INT, 8),
          info.get(JAVA_INT, 12), info.get(JAVA_INT, 16), info.get(JAVA_INT, 20),
          new String(rawName, 0, end, StandardCharsets.US_ASCII));
    }
  }
}
