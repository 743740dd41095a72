package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import dev.veer.bpf.Structs.MapBatchOpts;
import dev.veer.bpf.Structs.MapCreateOpts;
import dev.veer.bpf.Structs.MapInfo;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A BPF map, either one of a {@link BpfObject}'s maps (owned by the object: {@link #close()} does
 * nothing) or one this process opened by {@link #create} or {@link #openPinned} (owns its fd:
 * {@link #close()} closes it; the kernel frees the map when nothing else refers to it). Closing the
 * map, or its object, also unmaps what {@link #mmap} mapped.
 *
 * <p>Keys and values are the raw bytes of the C structs, in host byte order. Per-CPU maps take and
 * return one value per possible CPU ({@link #lookupPerCpu}, {@link #updatePerCpu}). Operations are
 * single BPF syscalls and safe to call from several threads.
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

  private final String name;

  /** Valid while the map (or its object) is open. */
  private final int fd;

  /** The fd when this map owns it; null for an object's map, whose fd libbpf owns. */
  private final Fd ownedFd;

  private final int id;
  private final MapType type;
  private final int keySize;
  private final int valueSize;
  private final int maxEntries;
  private final int flags;

  /** Null when this map owns its fd. */
  private final BpfObject owner;

  /** Mappings not yet closed; closing the map closes them. */
  private final Set<Mapping> mappings = ConcurrentHashMap.newKeySet();

  private BpfMap(
      String name,
      int fd,
      Fd ownedFd,
      int id,
      MapType type,
      int keySize,
      int valueSize,
      int maxEntries,
      int flags,
      BpfObject owner) {
    this.name = name;
    this.fd = fd;
    this.ownedFd = ownedFd;
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
    return new BpfMap(
        Libbpf.mapName(map),
        fd,
        null,
        info(fd, "bpf_map").id(),
        MapType.of(Libbpf.mapType(map)),
        Libbpf.mapKeySize(map),
        Libbpf.mapValueSize(map),
        Libbpf.mapMaxEntries(map),
        Libbpf.mapFlags(map),
        owner);
  }

  /** Creates a map (bpf_map_create); the returned map owns the fd. */
  public static BpfMap create(MapSpec spec) {
    Fd fd;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment opts = Structs.allocateOpts(arena, MapCreateOpts.LAYOUT);
      MapCreateOpts.MAP_FLAGS.set(opts, spec.flags());
      fd =
          Libbpf.mapCreate(
              spec.type().code(),
              spec.name(),
              spec.keySize(),
              spec.valueSize(),
              spec.maxEntries(),
              opts,
              spec::toString);
    }
    return ownedFd(fd, spec.name());
  }

  /** Opens a pinned map (bpf_obj_get); the returned map owns the fd. */
  public static BpfMap openPinned(Path path) {
    Fd fd = Libbpf.objGet(path.toString());
    if (!isMapFd(fd.intValue())) {
      fd.close();
      throw new IllegalArgumentException(path + " is a pinned BPF object but not a map");
    }
    return ownedFd(fd, path.toString());
  }

  /** Opens a map by its kernel id (an inner map, say); the returned map owns the fd. */
  public static BpfMap openById(int id) {
    return ownedFd(Libbpf.mapGetFdById(id), "map id " + id);
  }

  private static BpfMap ownedFd(Fd fd, String what) {
    try {
      Info info = info(fd.intValue(), what);
      return new BpfMap(
          info.name(),
          fd.intValue(),
          fd,
          info.id(),
          MapType.of(info.type()),
          info.keySize(),
          info.valueSize(),
          info.maxEntries(),
          info.flags(),
          null);
    } catch (RuntimeException e) {
      fd.close();
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
      if (!Libbpf.mapLookupElem(fd(), segment(arena, key), value, name)) {
        return Optional.empty();
      }
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
      Libbpf.mapUpdateElem(fd(), segment(arena, key), segment(arena, value), mode.flags, name);
    }
  }

  /** Deletes the entry; false if there was none. Array maps cannot delete (EINVAL). */
  public boolean delete(byte[] key) {
    checkKey(key);
    try (Arena arena = Arena.ofConfined()) {
      return Libbpf.mapDeleteElem(fd(), segment(arena, key), name);
    }
  }

  /**
   * All keys, by walking bpf_map_get_next_key. Not atomic: entries changed meanwhile may be missed
   * or repeated; at most {@link #maxEntries()} keys are returned.
   */
  public List<byte[]> keys() {
    List<byte[]> keys = new ArrayList<>();
    long limit = maxEntries == 0 ? Long.MAX_VALUE : maxEntries;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment current = arena.allocate(Math.max(keySize, 1));
      MemorySegment next = arena.allocate(Math.max(keySize, 1));
      boolean more = Libbpf.mapGetNextKey(fd(), MemorySegment.NULL, next, name);
      while (more && keys.size() < limit) {
        keys.add(next.asSlice(0, keySize).toArray(JAVA_BYTE));
        MemorySegment swap = current;
        current = next;
        next = swap;
        more = Libbpf.mapGetNextKey(fd, current, next, name);
      }
    }
    return keys;
  }

  /**
   * The value of each possible CPU under {@code key} (index = CPU number, each {@link #valueSize()}
   * bytes), or an empty array if a per-CPU hash has no such key.
   */
  public byte[][] lookupPerCpu(byte[] key) {
    checkKey(key);
    requirePerCpu("lookupPerCpu");
    int cpus = Libbpf.numPossibleCpus();
    long stride = perCpuStride();
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment values = arena.allocate(stride * cpus, 8);
      if (!Libbpf.mapLookupElem(fd(), segment(arena, key), values, name)) {
        return new byte[0][];
      }
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
      Libbpf.mapUpdateElem(fd(), segment(arena, key), values, mode.flags, name);
    }
  }

  /**
   * Creates or replaces {@code count} entries in one syscall (bpf_map_update_batch): {@code keys}
   * holds count keys back to back, {@code values} count values. Not for per-CPU maps. On failure
   * the exception's detail says how many entries were written.
   */
  public void updateBatch(byte[] keys, byte[] values, int count) {
    requireNotPerCpu("updateBatch", "updatePerCpu");
    if (count < 0) {
      throw new IllegalArgumentException("count must not be negative: " + count);
    }
    checkSize("keys (" + count + " x " + keySize + ")", (long) count * keySize, keys.length);
    checkSize(
        "values (" + count + " x " + valueSize + ")", (long) count * valueSize, values.length);
    if (count == 0) {
      return;
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment countInOut = arena.allocateFrom(JAVA_INT, count);
      // elem_flags and flags stay 0 (BPF_ANY)
      MemorySegment opts = Structs.allocateOpts(arena, MapBatchOpts.LAYOUT);
      Libbpf.mapUpdateBatch(
          fd(),
          segment(arena, keys),
          segment(arena, values),
          countInOut,
          opts,
          name,
          () -> countInOut.get(JAVA_INT, 0) + " of " + count + " entries were written");
    }
  }

  /** Pins the map at {@code path}, which must be on a BPF filesystem (e.g. under /sys/fs/bpf). */
  public void pin(Path path) {
    Libbpf.objPin(fd(), path, name);
  }

  /**
   * Maps the values of an array created with {@link MapSpec#BPF_F_MMAPABLE} into this process:
   * writes through the segment are the map's values, with no system call per element. Values are
   * laid out every {@code valueSize} rounded up to 8 bytes. Close the mapping when done; closing
   * the map closes it too.
   */
  public Mapping mmap() {
    if (type != MapType.ARRAY || (flags & MapSpec.BPF_F_MMAPABLE) == 0) {
      throw new IllegalStateException(name + " is not an array created with BPF_F_MMAPABLE");
    }
    long stride = (valueSize + 7L) & ~7L;
    long pages = (stride * maxEntries + PAGE - 1) / PAGE;
    Mapping mapping = new Mapping(this, fd(), pages * PAGE);
    mappings.add(mapping);
    return mapping;
  }

  private static final long PAGE = 4096;

  /**
   * A map's values mapped into memory; {@link #close()} unmaps them. The segment belongs to an
   * arena the mapping closes: used after that, it throws {@link IllegalStateException}. It can be
   * used from any thread, but not while another thread closes the mapping.
   */
  public static final class Mapping implements AutoCloseable {
    private final BpfMap map;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment segment;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Mapping(BpfMap map, int fd, long length) {
      this.map = map;
      try {
        this.segment = Libc.mmapShared(fd, length, map.name, arena);
      } catch (RuntimeException e) {
        arena.close();
        throw e;
      }
    }

    /** The mapped values; fails once the mapping is closed. */
    public MemorySegment segment() {
      if (closed.get()) {
        throw new IllegalStateException("the mapping of map " + map.name + " is closed");
      }
      return segment;
    }

    /** Unmaps the values; does nothing if already closed. */
    @Override
    public void close() {
      if (closed.compareAndSet(false, true)) {
        map.mappings.remove(this);
        arena.close();
      }
    }
  }

  /** Possible CPUs: the number of values per key in a per-CPU map. */
  public static int possibleCpus() {
    return Libbpf.numPossibleCpus();
  }

  /**
   * Closes the fd and the mappings of a created or opened map; does nothing for an object's map,
   * which its object closes. A second close does nothing.
   */
  @Override
  public void close() {
    if (ownedFd != null) {
      closeMappings();
      ownedFd.close();
    }
  }

  /** Unmaps what {@link #mmap} mapped and is still open; for the owner as it closes. */
  void closeMappings() {
    // Each close removes its mapping from the set, hence the copy.
    List.copyOf(mappings).forEach(Mapping::close);
  }

  @Override
  public String toString() {
    return "BpfMap["
        + name
        + ", "
        + type
        + ", key "
        + keySize
        + ", value "
        + valueSize
        + ", max "
        + maxEntries
        + "]";
  }

  private void ensureOpen() {
    if (owner != null) {
      owner.ensureOpen();
    } else if (ownedFd.isClosed()) {
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
      throw new IllegalStateException(
          operation + " on " + type + " map " + name + ", which is not per-CPU");
    }
  }

  private static MemorySegment segment(Arena arena, byte[] bytes) {
    // Zero-length keys (queue/stack maps) still need a valid pointer.
    return bytes.length == 0 ? arena.allocate(1) : arena.allocateFrom(JAVA_BYTE, bytes);
  }

  /** The memory the kernel charges for this map (its fdinfo's memlock), or 0 if it cannot say. */
  public long memlockBytes() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd()))) {
        if (line.startsWith("memlock:")) {
          return Long.parseLong(line.substring("memlock:".length()).trim());
        }
      }
    } catch (IOException | NumberFormatException e) {
      // not told
    }
    return 0;
  }

  private static boolean isMapFd(int fd) {
    try {
      return Files.readString(Path.of("/proc/self/fdinfo/" + fd)).contains("map_type:");
    } catch (IOException e) {
      return true; // cannot tell; the info query that follows still validates the fd
    }
  }

  /** What the kernel says of a map (struct bpf_map_info). */
  private record Info(
      int type, int id, int keySize, int valueSize, int maxEntries, int flags, String name) {}

  private static Info info(int fd, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment info = Libbpf.objGetInfoByFd(fd, MapInfo.LAYOUT, arena, what);
      return new Info(
          (int) MapInfo.TYPE.get(info),
          (int) MapInfo.ID.get(info),
          (int) MapInfo.KEY_SIZE.get(info),
          (int) MapInfo.VALUE_SIZE.get(info),
          (int) MapInfo.MAX_ENTRIES.get(info),
          (int) MapInfo.MAP_FLAGS.get(info),
          Structs.string(info, MapInfo.LAYOUT, "name"));
    }
  }
}
