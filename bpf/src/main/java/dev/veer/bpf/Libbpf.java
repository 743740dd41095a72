package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * Bindings to libbpf 1.x. Functions returning int return a negative errno on failure (libbpf 1.x
 * semantics); those returning pointers return NULL and set errno, which is why they capture it.
 */
final class Libbpf {
  private static final String LIBRARY = "libbpf.so.1";
  private static final SymbolLookup LIB = load();

  private static final FunctionDescriptor PTR_TO_INT = FunctionDescriptor.of(JAVA_INT, ADDRESS);
  private static final FunctionDescriptor PTR_PTR_TO_PTR = FunctionDescriptor.of(ADDRESS, ADDRESS, ADDRESS);

  private static final MethodHandle SET_PRINT =
      Native.downcall(LIB, "libbpf_set_print", FunctionDescriptor.of(ADDRESS, ADDRESS));
  private static final MethodHandle STRERROR = Native.downcall(LIB, "libbpf_strerror",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG));
  private static final MethodHandle NUM_POSSIBLE_CPUS =
      Native.downcall(LIB, "libbpf_num_possible_cpus", FunctionDescriptor.of(JAVA_INT));

  private static final MethodHandle OBJECT_OPEN_MEM = Native.downcallWithErrno(LIB, "bpf_object__open_mem",
      FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
  private static final MethodHandle OBJECT_OPEN_FILE =
      Native.downcallWithErrno(LIB, "bpf_object__open_file", PTR_PTR_TO_PTR);
  private static final MethodHandle OBJECT_LOAD = Native.downcall(LIB, "bpf_object__load", PTR_TO_INT);
  private static final MethodHandle OBJECT_CLOSE =
      Native.downcall(LIB, "bpf_object__close", FunctionDescriptor.ofVoid(ADDRESS));
  private static final MethodHandle OBJECT_NEXT_PROGRAM =
      Native.downcall(LIB, "bpf_object__next_program", PTR_PTR_TO_PTR);
  private static final MethodHandle OBJECT_NEXT_MAP = Native.downcall(LIB, "bpf_object__next_map", PTR_PTR_TO_PTR);
  private static final MethodHandle OBJECT_FIND_MAP =
      Native.downcall(LIB, "bpf_object__find_map_by_name", PTR_PTR_TO_PTR);

  private static final MethodHandle PROGRAM_NAME =
      Native.downcall(LIB, "bpf_program__name", FunctionDescriptor.of(ADDRESS, ADDRESS));
  private static final MethodHandle PROGRAM_FD = Native.downcall(LIB, "bpf_program__fd", PTR_TO_INT);

  private static final MethodHandle MAP_NAME =
      Native.downcall(LIB, "bpf_map__name", FunctionDescriptor.of(ADDRESS, ADDRESS));
  private static final MethodHandle MAP_FD = Native.downcall(LIB, "bpf_map__fd", PTR_TO_INT);
  private static final MethodHandle MAP_TYPE = Native.downcall(LIB, "bpf_map__type", PTR_TO_INT);
  private static final MethodHandle MAP_KEY_SIZE = Native.downcall(LIB, "bpf_map__key_size", PTR_TO_INT);
  private static final MethodHandle MAP_VALUE_SIZE = Native.downcall(LIB, "bpf_map__value_size", PTR_TO_INT);
  private static final MethodHandle MAP_MAX_ENTRIES = Native.downcall(LIB, "bpf_map__max_entries", PTR_TO_INT);
  private static final MethodHandle MAP_FLAGS = Native.downcall(LIB, "bpf_map__map_flags", PTR_TO_INT);
  private static final MethodHandle MAP_SET_INNER_MAP_FD = Native.downcall(LIB, "bpf_map__set_inner_map_fd",
      FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle MAP_SET_MAX_ENTRIES = Native.downcall(LIB, "bpf_map__set_max_entries",
      FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle MAP_SET_INITIAL_VALUE = Native.downcall(LIB, "bpf_map__set_initial_value",
      FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));

  private static final MethodHandle MAP_SET_PIN_PATH = Native.downcall(LIB, "bpf_map__set_pin_path",
      FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));

  private static final MethodHandle BPF_MAP_CREATE = Native.downcall(LIB, "bpf_map_create",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
  private static final MethodHandle BPF_MAP_LOOKUP_ELEM = Native.downcall(LIB, "bpf_map_lookup_elem",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final MethodHandle BPF_MAP_UPDATE_ELEM = Native.downcall(LIB, "bpf_map_update_elem",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
  private static final MethodHandle BPF_MAP_DELETE_ELEM = Native.downcall(LIB, "bpf_map_delete_elem",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
  private static final MethodHandle BPF_MAP_GET_NEXT_KEY = Native.downcall(LIB, "bpf_map_get_next_key",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final MethodHandle BPF_MAP_UPDATE_BATCH = Native.downcall(LIB, "bpf_map_update_batch",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
  private static final MethodHandle BPF_OBJ_PIN =
      Native.downcall(LIB, "bpf_obj_pin", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
  private static final MethodHandle BPF_OBJ_GET = Native.downcall(LIB, "bpf_obj_get", PTR_TO_INT);
  private static final MethodHandle BPF_OBJ_GET_INFO_BY_FD = Native.downcall(LIB, "bpf_obj_get_info_by_fd",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final MethodHandle BPF_PROG_GET_FD_BY_ID =
      Native.downcall(LIB, "bpf_prog_get_fd_by_id", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
  private static final MethodHandle BPF_MAP_GET_FD_BY_ID =
      Native.downcall(LIB, "bpf_map_get_fd_by_id", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
  private static final MethodHandle BPF_PROG_TEST_RUN_OPTS = Native.downcall(LIB, "bpf_prog_test_run_opts",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));

  private static final MethodHandle BPF_XDP_ATTACH = Native.downcall(LIB, "bpf_xdp_attach",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
  private static final MethodHandle BPF_XDP_DETACH = Native.downcall(LIB, "bpf_xdp_detach",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
  private static final MethodHandle BPF_XDP_QUERY = Native.downcall(LIB, "bpf_xdp_query",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));

  private static final MethodHandle PROGRAM_ATTACH_CGROUP = Native.downcallWithErrno(LIB,
      "bpf_program__attach_cgroup", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT));
  private static final MethodHandle LINK_DESTROY = Native.downcall(LIB, "bpf_link__destroy", PTR_TO_INT);
  private static final MethodHandle LINK_PIN = Native.downcall(LIB, "bpf_link__pin",
      FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
  private static final MethodHandle LINK_UNPIN = Native.downcall(LIB, "bpf_link__unpin", PTR_TO_INT);

  static {
    // libbpf's print hook is process-global, so it is set exactly once, here, before any
    // other libbpf call can produce output. This is the library's only global state.
    try {
      MemorySegment previous = (MemorySegment) SET_PRINT.invokeExact(LibbpfLog.printCallback());
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  private Libbpf() {}

  @SuppressWarnings("restricted")
  private static SymbolLookup load() {
    try {
      return SymbolLookup.libraryLookup(LIBRARY, Arena.global());
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException(LIBRARY + " not found: install libbpf 1.x"
          + " (Debian/Ubuntu package libbpf1)", e);
    }
  }

  static String strerror(int err) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment buffer = arena.allocate(256);
      int ignored = (int) STRERROR.invokeExact(err, buffer, 256L);
      return buffer.getString(0);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** Possible CPUs, i.e. the number of slots in a per-CPU map value. */
  static int numPossibleCpus() {
    int n;
    try {
      n = (int) NUM_POSSIBLE_CPUS.invokeExact();
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
    if (n < 0) {
      throw new BpfException("libbpf_num_possible_cpus()", -n);
    }
    return n;
  }

  // -- bpf_object ---------------------------------------------------------------------------

  /** NULL on failure, errno in {@code callState}. */
  static MemorySegment objectOpenMem(MemorySegment callState, MemorySegment buffer, MemorySegment opts) {
    try {
      return (MemorySegment) OBJECT_OPEN_MEM.invokeExact(callState, buffer, buffer.byteSize(), opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** NULL on failure, errno in {@code callState}. */
  static MemorySegment objectOpenFile(MemorySegment callState, MemorySegment path, MemorySegment opts) {
    try {
      return (MemorySegment) OBJECT_OPEN_FILE.invokeExact(callState, path, opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int objectLoad(MemorySegment object) {
    try {
      return (int) OBJECT_LOAD.invokeExact(object);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static void objectClose(MemorySegment object) {
    try {
      OBJECT_CLOSE.invokeExact(object);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static MemorySegment objectNextProgram(MemorySegment object, MemorySegment previous) {
    try {
      return (MemorySegment) OBJECT_NEXT_PROGRAM.invokeExact(object, previous);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static MemorySegment objectNextMap(MemorySegment object, MemorySegment previous) {
    try {
      return (MemorySegment) OBJECT_NEXT_MAP.invokeExact(object, previous);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** Also finds internal maps by their section name, e.g. ".rodata". NULL if absent. */
  static MemorySegment objectFindMap(MemorySegment object, String name) {
    try (Arena arena = Arena.ofConfined()) {
      return (MemorySegment) OBJECT_FIND_MAP.invokeExact(object, arena.allocateFrom(name));
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  // -- bpf_program / bpf_map of an object ---------------------------------------------------

  static String programName(MemorySegment program) {
    try {
      return Native.string((MemorySegment) PROGRAM_NAME.invokeExact(program));
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int programFd(MemorySegment program) {
    return intOf(PROGRAM_FD, program);
  }

  static String mapName(MemorySegment map) {
    try {
      return Native.string((MemorySegment) MAP_NAME.invokeExact(map));
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
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
  static int mapSetInnerMapFd(MemorySegment map, int fd) {
    try {
      return (int) MAP_SET_INNER_MAP_FD.invokeExact(map, fd);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapSetMaxEntries(MemorySegment map, int maxEntries) {
    try {
      return (int) MAP_SET_MAX_ENTRIES.invokeExact(map, maxEntries);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** Sets (or with NULL, clears) where a map is pinned and reused from at load. */
  static int mapSetPinPath(MemorySegment map, MemorySegment path) {
    try {
      return (int) MAP_SET_PIN_PATH.invokeExact(map, path);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapSetInitialValue(MemorySegment map, MemorySegment value) {
    try {
      return (int) MAP_SET_INITIAL_VALUE.invokeExact(map, value, value.byteSize());
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  // -- BPF syscall wrappers -----------------------------------------------------------------

  static int mapCreate(int type, MemorySegment name, int keySize, int valueSize, int maxEntries,
      MemorySegment opts) {
    try {
      return (int) BPF_MAP_CREATE.invokeExact(type, name, keySize, valueSize, maxEntries, opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapLookupElem(int fd, MemorySegment key, MemorySegment value) {
    try {
      return (int) BPF_MAP_LOOKUP_ELEM.invokeExact(fd, key, value);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapUpdateElem(int fd, MemorySegment key, MemorySegment value, long flags) {
    try {
      return (int) BPF_MAP_UPDATE_ELEM.invokeExact(fd, key, value, flags);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapDeleteElem(int fd, MemorySegment key) {
    try {
      return (int) BPF_MAP_DELETE_ELEM.invokeExact(fd, key);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapGetNextKey(int fd, MemorySegment key, MemorySegment nextKey) {
    try {
      return (int) BPF_MAP_GET_NEXT_KEY.invokeExact(fd, key, nextKey);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapUpdateBatch(int fd, MemorySegment keys, MemorySegment values, MemorySegment count,
      MemorySegment opts) {
    try {
      return (int) BPF_MAP_UPDATE_BATCH.invokeExact(fd, keys, values, count, opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int objPin(int fd, MemorySegment path) {
    try {
      return (int) BPF_OBJ_PIN.invokeExact(fd, path);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int objGet(MemorySegment path) {
    return intOf(BPF_OBJ_GET, path);
  }

  static int objGetInfoByFd(int fd, MemorySegment info, MemorySegment infoLength) {
    try {
      return (int) BPF_OBJ_GET_INFO_BY_FD.invokeExact(fd, info, infoLength);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int mapGetFdById(int id) {
    try {
      return (int) BPF_MAP_GET_FD_BY_ID.invokeExact(id);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int progGetFdById(int id) {
    try {
      return (int) BPF_PROG_GET_FD_BY_ID.invokeExact(id);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int progTestRunOpts(int fd, MemorySegment opts) {
    try {
      return (int) BPF_PROG_TEST_RUN_OPTS.invokeExact(fd, opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  // -- XDP over netlink (in the calling thread's network namespace) ------------------------

  /** A {@code struct bpf_link *}, or NULL with errno in {@code callState}. */
  static MemorySegment programAttachCgroup(MemorySegment callState, MemorySegment program, int cgroupFd) {
    try {
      return (MemorySegment) PROGRAM_ATTACH_CGROUP.invokeExact(callState, program, cgroupFd);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int linkDestroy(MemorySegment link) {
    try {
      return (int) LINK_DESTROY.invokeExact(link);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int linkPin(MemorySegment link, MemorySegment path) {
    try {
      return (int) LINK_PIN.invokeExact(link, path);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int linkUnpin(MemorySegment link) {
    try {
      return (int) LINK_UNPIN.invokeExact(link);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int xdpAttach(int ifindex, int progFd, int flags, MemorySegment opts) {
    try {
      return (int) BPF_XDP_ATTACH.invokeExact(ifindex, progFd, flags, opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int xdpDetach(int ifindex, int flags, MemorySegment opts) {
    try {
      return (int) BPF_XDP_DETACH.invokeExact(ifindex, flags, opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int xdpQuery(int ifindex, int flags, MemorySegment opts) {
    try {
      return (int) BPF_XDP_QUERY.invokeExact(ifindex, flags, opts);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  private static int intOf(MethodHandle handle, MemorySegment pointer) {
    try {
      return (int) handle.invokeExact(pointer);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }
}
