package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.function.Supplier;

/**
 * Bindings to libbpf 1.x. Functions returning int return a negative errno on failure (libbpf 1.x
 * semantics); those returning pointers return NULL and set errno, which is why they capture it.
 * Either failure is thrown as a {@link BpfException} named after the C function and a subject, e.g.
 * {@code bpf_map_update_elem(flows)}; the few expected errnos are results instead.
 */
final class Libbpf {
  private static final String LIBRARY = "libbpf.so.1";
  private static final SymbolLookup LIB = load();

  private static final FunctionDescriptor PTR_TO_INT = FunctionDescriptor.of(JAVA_INT, ADDRESS);
  private static final FunctionDescriptor PTR_PTR_TO_PTR =
      FunctionDescriptor.of(ADDRESS, ADDRESS, ADDRESS);
  private static final FunctionDescriptor PTR_PTR_TO_INT =
      FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
  private static final FunctionDescriptor INT_TO_INT = FunctionDescriptor.of(JAVA_INT, JAVA_INT);

  private static final MethodHandle SET_PRINT =
      Native.downcall(LIB, "libbpf_set_print", FunctionDescriptor.of(ADDRESS, ADDRESS));
  private static final MethodHandle STRERROR =
      Native.downcall(
          LIB, "libbpf_strerror", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG));
  private static final Downcall NUM_POSSIBLE_CPUS =
      Downcall.of("libbpf_num_possible_cpus", FunctionDescriptor.of(JAVA_INT));

  private static final Downcall OBJECT_OPEN_MEM =
      Downcall.withErrno(
          "bpf_object__open_mem", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
  private static final Downcall OBJECT_OPEN_FILE =
      Downcall.withErrno("bpf_object__open_file", PTR_PTR_TO_PTR);
  private static final Downcall OBJECT_LOAD = Downcall.of("bpf_object__load", PTR_TO_INT);
  private static final MethodHandle OBJECT_CLOSE =
      Native.downcall(LIB, "bpf_object__close", FunctionDescriptor.ofVoid(ADDRESS));
  private static final MethodHandle OBJECT_NEXT_PROGRAM =
      Native.downcall(LIB, "bpf_object__next_program", PTR_PTR_TO_PTR);
  private static final MethodHandle OBJECT_NEXT_MAP =
      Native.downcall(LIB, "bpf_object__next_map", PTR_PTR_TO_PTR);
  private static final MethodHandle OBJECT_FIND_MAP =
      Native.downcall(LIB, "bpf_object__find_map_by_name", PTR_PTR_TO_PTR);

  private static final MethodHandle PROGRAM_NAME =
      Native.downcall(LIB, "bpf_program__name", FunctionDescriptor.of(ADDRESS, ADDRESS));
  private static final MethodHandle PROGRAM_FD =
      Native.downcall(LIB, "bpf_program__fd", PTR_TO_INT);

  private static final MethodHandle MAP_NAME =
      Native.downcall(LIB, "bpf_map__name", FunctionDescriptor.of(ADDRESS, ADDRESS));
  private static final MethodHandle MAP_FD = Native.downcall(LIB, "bpf_map__fd", PTR_TO_INT);
  private static final MethodHandle MAP_TYPE = Native.downcall(LIB, "bpf_map__type", PTR_TO_INT);
  private static final MethodHandle MAP_KEY_SIZE =
      Native.downcall(LIB, "bpf_map__key_size", PTR_TO_INT);
  private static final MethodHandle MAP_VALUE_SIZE =
      Native.downcall(LIB, "bpf_map__value_size", PTR_TO_INT);
  private static final MethodHandle MAP_MAX_ENTRIES =
      Native.downcall(LIB, "bpf_map__max_entries", PTR_TO_INT);
  private static final MethodHandle MAP_FLAGS =
      Native.downcall(LIB, "bpf_map__map_flags", PTR_TO_INT);
  private static final Downcall MAP_SET_INNER_MAP_FD =
      Downcall.of("bpf_map__set_inner_map_fd", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
  private static final Downcall MAP_SET_MAX_ENTRIES =
      Downcall.of("bpf_map__set_max_entries", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
  private static final Downcall MAP_SET_INITIAL_VALUE =
      Downcall.of(
          "bpf_map__set_initial_value",
          FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
  private static final Downcall MAP_SET_PIN_PATH =
      Downcall.of("bpf_map__set_pin_path", PTR_PTR_TO_INT);

  private static final Downcall BPF_MAP_CREATE =
      Downcall.of(
          "bpf_map_create",
          FunctionDescriptor.of(
              JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
  private static final Downcall BPF_MAP_LOOKUP_ELEM =
      Downcall.of(
          "bpf_map_lookup_elem", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final Downcall BPF_MAP_UPDATE_ELEM =
      Downcall.of(
          "bpf_map_update_elem",
          FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
  private static final Downcall BPF_MAP_DELETE_ELEM =
      Downcall.of("bpf_map_delete_elem", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
  private static final Downcall BPF_MAP_GET_NEXT_KEY =
      Downcall.of(
          "bpf_map_get_next_key", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final Downcall BPF_MAP_UPDATE_BATCH =
      Downcall.of(
          "bpf_map_update_batch",
          FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
  private static final Downcall BPF_OBJ_PIN =
      Downcall.of("bpf_obj_pin", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
  private static final Downcall BPF_OBJ_GET = Downcall.of("bpf_obj_get", PTR_TO_INT);
  private static final Downcall BPF_OBJ_GET_INFO_BY_FD =
      Downcall.of(
          "bpf_obj_get_info_by_fd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final Downcall BPF_PROG_GET_FD_BY_ID =
      Downcall.of("bpf_prog_get_fd_by_id", INT_TO_INT);
  private static final Downcall BPF_MAP_GET_FD_BY_ID =
      Downcall.of("bpf_map_get_fd_by_id", INT_TO_INT);
  private static final Downcall BPF_ENABLE_STATS = Downcall.of("bpf_enable_stats", INT_TO_INT);

  /** BPF_STATS_RUN_TIME: every program's run time and run count. */
  static final int STATS_RUN_TIME = 0;

  private static final Downcall BPF_PROG_TEST_RUN_OPTS =
      Downcall.of("bpf_prog_test_run_opts", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

  private static final Downcall BPF_XDP_ATTACH =
      Downcall.of(
          "bpf_xdp_attach", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
  private static final Downcall BPF_XDP_DETACH =
      Downcall.of("bpf_xdp_detach", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
  private static final Downcall BPF_XDP_QUERY =
      Downcall.of("bpf_xdp_query", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));

  private static final Downcall PROGRAM_SET_IFINDEX =
      Downcall.of("bpf_program__set_ifindex", FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT));
  private static final MethodHandle PROGRAM_FLAGS =
      Native.downcall(LIB, "bpf_program__flags", PTR_TO_INT);
  private static final Downcall PROGRAM_SET_FLAGS =
      Downcall.of("bpf_program__set_flags", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));

  /** BPF_F_XDP_DEV_BOUND_ONLY: a program bound to one device's driver, for its metadata kfuncs. */
  static final int PROG_FLAG_XDP_DEV_BOUND_ONLY = 1 << 6;

  private static final Downcall PROGRAM_ATTACH_CGROUP =
      Downcall.withErrno(
          "bpf_program__attach_cgroup", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT));
  private static final Downcall LINK_DESTROY = Downcall.of("bpf_link__destroy", PTR_TO_INT);
  private static final Downcall LINK_PIN = Downcall.of("bpf_link__pin", PTR_PTR_TO_INT);
  private static final Downcall LINK_UNPIN = Downcall.of("bpf_link__unpin", PTR_TO_INT);

  static {
    // libbpf's print hook is process-global, so it is set exactly once, here, before any
    // other libbpf call can produce output. This is the library's only global state.
    MemorySegment previous =
        Native.call(() -> (MemorySegment) SET_PRINT.invokeExact(LibbpfLog.printCallback()));
  }

  private Libbpf() {}

  @SuppressWarnings("restricted")
  private static SymbolLookup load() {
    try {
      return SymbolLookup.libraryLookup(LIBRARY, Arena.global());
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException(
          LIBRARY + " not found: install libbpf 1.x" + " (Debian/Ubuntu package libbpf1)", e);
    }
  }

  static String strerror(int err) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment buffer = arena.allocate(256);
      int ignored =
          Native.callInt(() -> (int) STRERROR.invokeExact(err, buffer, buffer.byteSize()));
      return buffer.getString(0);
    }
  }

  /** Possible CPUs, i.e. the number of slots in a per-CPU map value. */
  static int numPossibleCpus() {
    return check(NUM_POSSIBLE_CPUS, "", h -> (int) h.invokeExact());
  }

  // -- bpf_object ---------------------------------------------------------------------------

  /** Opens an object from its ELF image, which must outlive the object. */
  static MemorySegment objectOpenMem(
      MemorySegment image, MemorySegment opts, String subject, Supplier<String> detail) {
    return checkPointer(
        OBJECT_OPEN_MEM,
        subject,
        detail,
        state ->
            (MemorySegment)
                OBJECT_OPEN_MEM.handle().invokeExact(state, image, image.byteSize(), opts));
  }

  static MemorySegment objectOpenFile(
      MemorySegment path, MemorySegment opts, String subject, Supplier<String> detail) {
    return checkPointer(
        OBJECT_OPEN_FILE,
        subject,
        detail,
        state -> (MemorySegment) OBJECT_OPEN_FILE.handle().invokeExact(state, path, opts));
  }

  static void objectLoad(MemorySegment object, String subject, Supplier<String> detail) {
    check(OBJECT_LOAD, subject, detail, h -> (int) h.invokeExact(object));
  }

  static void objectClose(MemorySegment object) {
    Native.call(
        () -> {
          OBJECT_CLOSE.invokeExact(object);
          return null;
        });
  }

  static MemorySegment objectNextProgram(MemorySegment object, MemorySegment previous) {
    return Native.call(() -> (MemorySegment) OBJECT_NEXT_PROGRAM.invokeExact(object, previous));
  }

  static MemorySegment objectNextMap(MemorySegment object, MemorySegment previous) {
    return Native.call(() -> (MemorySegment) OBJECT_NEXT_MAP.invokeExact(object, previous));
  }

  /** Also finds internal maps by their section name, e.g. ".rodata". NULL if absent. */
  static MemorySegment objectFindMap(MemorySegment object, String name) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cName = arena.allocateFrom(name);
      return Native.call(() -> (MemorySegment) OBJECT_FIND_MAP.invokeExact(object, cName));
    }
  }

  // -- bpf_program / bpf_map of an object ---------------------------------------------------

  static String programName(MemorySegment program) {
    return Native.string(Native.call(() -> (MemorySegment) PROGRAM_NAME.invokeExact(program)));
  }

  /**
   * Binds a program, before load, to the device {@code ifindex} (of the loading thread's network
   * namespace), for that driver's XDP metadata kfuncs.
   */
  static void programBindToDevice(MemorySegment program, int ifindex, String subject) {
    Native.call(
        () -> {
          PROGRAM_SET_IFINDEX.handle().invokeExact(program, ifindex);
          return null;
        });
    int flags = intOf(PROGRAM_FLAGS, program);
    check(
        PROGRAM_SET_FLAGS,
        subject,
        h -> (int) h.invokeExact(program, flags | PROG_FLAG_XDP_DEV_BOUND_ONLY));
  }

  static int programFd(MemorySegment program) {
    return intOf(PROGRAM_FD, program);
  }

  static String mapName(MemorySegment map) {
    return Native.string(Native.call(() -> (MemorySegment) MAP_NAME.invokeExact(map)));
  }

  static int mapFd(MemorySegment map) {
    return intOf(MAP_FD, map);
  }

  static int mapType(MemorySegment map) {
    return intOf(MAP_TYPE, map);
  }

  static int mapKeySize(MemorySegment map) {
    return intOf(MAP_KEY_SIZE, map);
  }

  static int mapValueSize(MemorySegment map) {
    return intOf(MAP_VALUE_SIZE, map);
  }

  static int mapMaxEntries(MemorySegment map) {
    return intOf(MAP_MAX_ENTRIES, map);
  }

  static int mapFlags(MemorySegment map) {
    return intOf(MAP_FLAGS, map);
  }

  /** Makes a map-in-map use the map behind {@code fd} as its inner-map template. */
  static void mapSetInnerMapFd(MemorySegment map, int fd, String subject) {
    check(MAP_SET_INNER_MAP_FD, subject, h -> (int) h.invokeExact(map, fd));
  }

  static void mapSetMaxEntries(MemorySegment map, int maxEntries, String subject) {
    check(MAP_SET_MAX_ENTRIES, subject, h -> (int) h.invokeExact(map, maxEntries));
  }

  /** Sets (or with NULL, clears) where a map is pinned and reused from at load. */
  static void mapSetPinPath(MemorySegment map, MemorySegment path, String subject) {
    check(MAP_SET_PIN_PATH, subject, h -> (int) h.invokeExact(map, path));
  }

  /** libbpf copies {@code value}. */
  static void mapSetInitialValue(MemorySegment map, MemorySegment value, String subject) {
    check(MAP_SET_INITIAL_VALUE, subject, h -> (int) h.invokeExact(map, value, value.byteSize()));
  }

  // -- BPF syscall wrappers -----------------------------------------------------------------

  static Fd mapCreate(
      int type,
      String name,
      int keySize,
      int valueSize,
      int maxEntries,
      MemorySegment opts,
      Supplier<String> detail) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cName = arena.allocateFrom(name);
      return fd(
          BPF_MAP_CREATE,
          name,
          detail,
          h -> (int) h.invokeExact(type, cName, keySize, valueSize, maxEntries, opts));
    }
  }

  /** False if there is no such key. */
  static boolean mapLookupElem(int fd, MemorySegment key, MemorySegment value, String subject) {
    return checkFound(BPF_MAP_LOOKUP_ELEM, subject, h -> (int) h.invokeExact(fd, key, value));
  }

  static void mapUpdateElem(
      int fd, MemorySegment key, MemorySegment value, long flags, String subject) {
    check(BPF_MAP_UPDATE_ELEM, subject, h -> (int) h.invokeExact(fd, key, value, flags));
  }

  /** False if there was no such key. */
  static boolean mapDeleteElem(int fd, MemorySegment key, String subject) {
    return checkFound(BPF_MAP_DELETE_ELEM, subject, h -> (int) h.invokeExact(fd, key));
  }

  /** The key after {@code key} (the first for NULL) into {@code nextKey}; false after the last. */
  static boolean mapGetNextKey(int fd, MemorySegment key, MemorySegment nextKey, String subject) {
    return checkFound(BPF_MAP_GET_NEXT_KEY, subject, h -> (int) h.invokeExact(fd, key, nextKey));
  }

  /** {@code detail} is asked for after the call, so it can read how far the batch got. */
  static void mapUpdateBatch(
      int fd,
      MemorySegment keys,
      MemorySegment values,
      MemorySegment count,
      MemorySegment opts,
      String subject,
      Supplier<String> detail) {
    check(
        BPF_MAP_UPDATE_BATCH,
        subject,
        detail,
        h -> (int) h.invokeExact(fd, keys, values, count, opts));
  }

  static void objPin(int fd, Path path, String subject) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cPath = arena.allocateFrom(path.toString());
      check(BPF_OBJ_PIN, subject, path::toString, h -> (int) h.invokeExact(fd, cPath));
    }
  }

  static Fd objGet(String path) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cPath = arena.allocateFrom(path);
      return fd(BPF_OBJ_GET, path, Native.NO_DETAIL, h -> (int) h.invokeExact(cPath));
    }
  }

  /**
   * The {@code layout} struct (bpf_map_info, ...) of the object behind {@code fd}, in {@code
   * arena}.
   */
  static MemorySegment objGetInfoByFd(int fd, StructLayout layout, Arena arena, String subject) {
    MemorySegment info = arena.allocate(layout);
    MemorySegment length = arena.allocateFrom(JAVA_INT, (int) layout.byteSize());
    check(BPF_OBJ_GET_INFO_BY_FD, subject, h -> (int) h.invokeExact(fd, info, length));
    return info;
  }

  static Fd mapGetFdById(int id) {
    return fd(
        BPF_MAP_GET_FD_BY_ID, Integer.toString(id), Native.NO_DETAIL, h -> (int) h.invokeExact(id));
  }

  static Fd progGetFdById(int id) {
    return fd(
        BPF_PROG_GET_FD_BY_ID,
        Integer.toString(id),
        Native.NO_DETAIL,
        h -> (int) h.invokeExact(id));
  }

  /** Turns a kind of statistics on until the returned descriptor is closed. */
  static Fd enableStats(int type) {
    return fd(
        BPF_ENABLE_STATS,
        "bpf_enable_stats(" + type + ")",
        Native.NO_DETAIL,
        h -> (int) h.invokeExact(type));
  }

  static void progTestRunOpts(int fd, MemorySegment opts, String subject, Supplier<String> detail) {
    check(BPF_PROG_TEST_RUN_OPTS, subject, detail, h -> (int) h.invokeExact(fd, opts));
  }

  // -- cgroup links ----------------------------------------------------------------------

  /** A {@code struct bpf_link *}. */
  static MemorySegment programAttachCgroup(
      MemorySegment program, int cgroupFd, String subject, Supplier<String> detail) {
    return checkPointer(
        PROGRAM_ATTACH_CGROUP,
        subject,
        detail,
        state ->
            (MemorySegment) PROGRAM_ATTACH_CGROUP.handle().invokeExact(state, program, cgroupFd));
  }

  static void linkDestroy(MemorySegment link, String subject) {
    check(LINK_DESTROY, subject, h -> (int) h.invokeExact(link));
  }

  static void linkPin(MemorySegment link, Path path, String subject) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cPath = arena.allocateFrom(path.toString());
      check(LINK_PIN, subject, path::toString, h -> (int) h.invokeExact(link, cPath));
    }
  }

  static void linkUnpin(MemorySegment link, String subject) {
    check(LINK_UNPIN, subject, h -> (int) h.invokeExact(link));
  }

  // -- XDP over netlink (in the calling thread's network namespace) ------------------------

  static void xdpAttach(
      int ifindex,
      int progFd,
      int flags,
      MemorySegment opts,
      String subject,
      Supplier<String> detail) {
    check(BPF_XDP_ATTACH, subject, detail, h -> (int) h.invokeExact(ifindex, progFd, flags, opts));
  }

  static void xdpDetach(
      int ifindex, int flags, MemorySegment opts, String subject, Supplier<String> detail) {
    check(BPF_XDP_DETACH, subject, detail, h -> (int) h.invokeExact(ifindex, flags, opts));
  }

  static void xdpQuery(int ifindex, int flags, MemorySegment opts, String subject) {
    check(BPF_XDP_QUERY, subject, h -> (int) h.invokeExact(ifindex, flags, opts));
  }

  // -- calling -----------------------------------------------------------------------------

  /** A bound libbpf function and its C name, which its failures are reported under. */
  private record Downcall(String name, MethodHandle handle) {
    static Downcall of(String name, FunctionDescriptor descriptor) {
      return new Downcall(name, Native.downcall(LIB, name, descriptor));
    }

    /** For functions reporting failure by NULL and errno: the handle takes the call state first. */
    static Downcall withErrno(String name, FunctionDescriptor descriptor) {
      return new Downcall(name, Native.downcallWithErrno(LIB, name, descriptor));
    }

    String operation(String subject) {
      return name + "(" + subject + ")";
    }
  }

  /** An invocation of a Downcall's int function through the handle it is given. */
  @FunctionalInterface
  private interface Invocation {
    int invoke(MethodHandle handle) throws Throwable;
  }

  /**
   * Calls an int function of libbpf 1.x, which returns -errno on failure (errno itself need not be
   * captured). A failure is thrown as the BpfException of {@code name(subject)} with {@code
   * detail}, which is only asked for then; otherwise returns the result.
   */
  private static int check(
      Downcall function, String subject, Supplier<String> detail, Invocation invocation) {
    int result = Native.callInt(() -> invocation.invoke(function.handle()));
    if (result < 0) {
      throw new BpfException(function.operation(subject), -result, detail.get());
    }
    return result;
  }

  private static int check(Downcall function, String subject, Invocation invocation) {
    return check(function, subject, Native.NO_DETAIL, invocation);
  }

  /** {@link #check}, except that ENOENT (no such key, no next key) returns false. */
  private static boolean checkFound(Downcall function, String subject, Invocation invocation) {
    int result = Native.callInt(() -> invocation.invoke(function.handle()));
    if (result == -BpfException.ENOENT) {
      return false;
    }
    if (result < 0) {
      throw new BpfException(function.operation(subject), -result);
    }
    return true;
  }

  /** {@link #check} for a function returning a new fd, which the caller then owns. */
  private static Fd fd(
      Downcall function, String subject, Supplier<String> detail, Invocation invocation) {
    return new Fd(check(function, subject, detail, invocation), function.operation(subject));
  }

  /** For a function that returns NULL and sets errno on failure. */
  private static MemorySegment checkPointer(
      Downcall function,
      String subject,
      Supplier<String> detail,
      Native.ErrnoCall<MemorySegment> call) {
    return Native.callOrThrow(
        function.operation(subject), MemorySegment.NULL::equals, detail, call);
  }

  private static int intOf(MethodHandle handle, MemorySegment pointer) {
    return Native.callInt(() -> (int) handle.invokeExact(pointer));
  }
}
