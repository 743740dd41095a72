package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.veer.bpf.Structs.ObjectOpenOpts;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A BPF ELF object loaded into the kernel through libbpf: its programs and maps live until {@link
 * #close()} (unless pinned or attached elsewhere, which keeps them alive in the kernel).
 *
 * <p>Load failures throw {@link BpfException} whose detail holds libbpf's log, including the
 * verifier log of a rejected program. Not safe to close while other threads use it.
 */
public final class BpfObject implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(BpfObject.class);

  private final String name;
  private final MemorySegment handle;

  /** Holds the ELF image and strings libbpf may refer to until the object is closed. */
  private final Arena arena;

  private final Map<String, BpfProgram> programs;
  private final Map<Long, BpfMap> mapsByHandle;
  private final List<String> mapNames;
  private final AtomicBoolean closed = new AtomicBoolean();

  // Programs and maps keep a reference to their owner only to check it is open.
  @SuppressWarnings("this-escape")
  private BpfObject(String name, MemorySegment handle, Arena arena) {
    this.name = name;
    this.handle = handle;
    this.arena = arena;
    var programsByName = new LinkedHashMap<String, BpfProgram>();
    for (MemorySegment p = Libbpf.objectNextProgram(handle, MemorySegment.NULL);
        !p.equals(MemorySegment.NULL);
        p = Libbpf.objectNextProgram(handle, p)) {
      if (Libbpf.programFd(p) < 0) {
        LOG.debug("{}: program {} was not loaded (autoload off)", name, Libbpf.programName(p));
        continue;
      }
      BpfProgram program = BpfProgram.ofObject(this, p);
      programsByName.put(program.name(), program);
    }
    var maps = new HashMap<Long, BpfMap>();
    var names = new ArrayList<String>();
    for (MemorySegment m = Libbpf.objectNextMap(handle, MemorySegment.NULL);
        !m.equals(MemorySegment.NULL);
        m = Libbpf.objectNextMap(handle, m)) {
      if (Libbpf.mapFd(m) < 0) {
        LOG.debug("{}: map {} was not created", name, Libbpf.mapName(m));
        continue;
      }
      BpfMap map = BpfMap.ofObject(this, m);
      maps.put(m.address(), map);
      names.add(map.name());
    }
    this.programs = Collections.unmodifiableMap(programsByName);
    this.mapsByHandle = Map.copyOf(maps);
    this.mapNames = List.copyOf(names);
  }

  /** Loads a classpath resource such as {@code "/bpf/floor.o"} with default options. */
  public static BpfObject load(String resource) {
    return load(resource, LoadOptions.DEFAULT);
  }

  /** Loads a classpath resource such as {@code "/bpf/floor.o"} (bpf_object__open_mem). */
  public static BpfObject load(String resource, LoadOptions options) {
    String absolute = resource.startsWith("/") ? resource : "/" + resource;
    byte[] elf;
    try (InputStream in = BpfObject.class.getResourceAsStream(absolute)) {
      if (in == null) {
        throw new IllegalArgumentException("no BPF object " + absolute + " on the classpath");
      }
      elf = in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + absolute, e);
    }
    String fileName = absolute.substring(absolute.lastIndexOf('/') + 1);
    return open(
        fileName,
        options,
        (arena, opts, detail) -> {
          MemorySegment image = arena.allocate(elf.length, 8);
          MemorySegment.copy(elf, 0, image, JAVA_BYTE, 0, elf.length);
          return Libbpf.objectOpenMem(image, opts, absolute, detail);
        });
  }

  /** Loads a BPF ELF file with default options. */
  public static BpfObject load(Path file) {
    return load(file, LoadOptions.DEFAULT);
  }

  /** Loads a BPF ELF file (bpf_object__open_file). */
  public static BpfObject load(Path file, LoadOptions options) {
    Path fileName = file.getFileName();
    return open(
        fileName == null ? file.toString() : fileName.toString(),
        options,
        (arena, opts, detail) ->
            Libbpf.objectOpenFile(
                arena.allocateFrom(file.toString()), opts, file.toString(), detail));
  }

  /** The object's file name, e.g. {@code floor.o}. */
  public String name() {
    return name;
  }

  /** A program by its C function name. */
  public BpfProgram program(String programName) {
    ensureOpen();
    BpfProgram program = programs.get(programName);
    if (program == null) {
      throw new NoSuchElementException(
          name + " has no program '" + programName + "'; programs: " + programs.keySet());
    }
    return program;
  }

  /** A map by its name; global-data maps also by section name (".rodata", ".bss", ...). */
  public BpfMap map(String mapName) {
    ensureOpen();
    MemorySegment m = Libbpf.objectFindMap(handle, mapName);
    BpfMap map = m.equals(MemorySegment.NULL) ? null : mapsByHandle.get(m.address());
    if (map == null) {
      throw new NoSuchElementException(name + " has no map '" + mapName + "'; maps: " + mapNames);
    }
    return map;
  }

  public Set<String> programNames() {
    return programs.keySet();
  }

  public List<String> mapNames() {
    return mapNames;
  }

  /** Pins a program on a BPF filesystem so it outlives this object. */
  public void pinProgram(String programName, Path path) {
    program(programName).pin(path);
  }

  /**
   * Unloads the object: its programs and maps go away unless pinned, attached or referenced, and
   * its maps' mappings are unmapped. A second close does nothing.
   */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      mapsByHandle.values().forEach(BpfMap::closeMappings);
      Libbpf.objectClose(handle);
      arena.close();
    }
  }

  @Override
  public String toString() {
    return "BpfObject[" + name + ", programs " + programs.keySet() + ", maps " + mapNames + "]";
  }

  void ensureOpen() {
    if (closed.get()) {
      throw new IllegalStateException("BPF object " + name + " is closed");
    }
  }

  @FunctionalInterface
  private interface Opener {
    /**
     * Opens the bpf_object, keeping in {@code arena} what must outlive it; failures carry {@code
     * detail}.
     */
    MemorySegment open(Arena arena, MemorySegment opts, Supplier<String> detail);
  }

  private static BpfObject open(String fileName, LoadOptions options, Opener opener) {
    Arena arena = Arena.ofShared();
    try {
      return LibbpfLog.capturing(
          capture -> {
            MemorySegment opts = Structs.allocateOpts(arena, ObjectOpenOpts.LAYOUT);
            // libbpf names internal maps "<object>.rodata" etc. after the name up to the first dot.
            int dot = fileName.indexOf('.');
            ObjectOpenOpts.OBJECT_NAME.set(
                opts, arena.allocateFrom(dot > 0 ? fileName.substring(0, dot) : fileName));
            options
                .pinRoot()
                .ifPresent(
                    dir -> {
                      createDirectories(dir);
                      ObjectOpenOpts.PIN_ROOT_PATH.set(opts, arena.allocateFrom(dir.toString()));
                    });
            MemorySegment object = opener.open(arena, opts, capture::text);
            List<BpfMap> innerTemplates = new ArrayList<>();
            try {
              prepare(object, fileName, options, arena, innerTemplates);
              Libbpf.objectLoad(object, fileName, capture::text);
              return new BpfObject(fileName, object, arena);
            } catch (RuntimeException e) {
              Libbpf.objectClose(object);
              throw e;
            } finally {
              // The outer maps hold what they need of their templates once created.
              innerTemplates.forEach(BpfMap::close);
            }
          });
    } catch (RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  /** Applies the options that must be set between open and load. */
  private static void prepare(
      MemorySegment object,
      String fileName,
      LoadOptions options,
      Arena arena,
      List<BpfMap> innerTemplates) {
    if (options.pinRoot().isEmpty()) {
      // Without a pin root nothing is pinned: libbpf would otherwise pin LIBBPF_PIN_BY_NAME maps
      // in /sys/fs/bpf, where every loader of the object would share them.
      for (MemorySegment m = Libbpf.objectNextMap(object, MemorySegment.NULL);
          !m.equals(MemorySegment.NULL);
          m = Libbpf.objectNextMap(object, m)) {
        Libbpf.mapSetPinPath(m, MemorySegment.NULL, Libbpf.mapName(m) + ", NULL");
      }
    }
    options
        .device()
        .ifPresent(
            ifindex -> {
              for (MemorySegment p = Libbpf.objectNextProgram(object, MemorySegment.NULL);
                  !p.equals(MemorySegment.NULL);
                  p = Libbpf.objectNextProgram(object, p)) {
                Libbpf.programBindToDevice(
                    p, ifindex, Libbpf.programName(p) + " bound to device " + ifindex);
              }
            });
    options
        .innerMaps()
        .forEach(
            (mapName, spec) -> {
              MemorySegment map = findUnloadedMap(object, fileName, mapName);
              BpfMap template = BpfMap.create(spec);
              innerTemplates.add(template);
              Libbpf.mapSetInnerMapFd(map, template.fd(), mapName);
            });
    options
        .maxEntries()
        .forEach(
            (mapName, entries) -> {
              MemorySegment map = findUnloadedMap(object, fileName, mapName);
              Libbpf.mapSetMaxEntries(map, entries, mapName + ", " + entries);
            });
    options
        .initialValues()
        .forEach(
            (mapName, value) -> {
              MemorySegment map = findUnloadedMap(object, fileName, mapName);
              int size = Libbpf.mapValueSize(map);
              if (size != value.length) {
                throw new IllegalArgumentException(
                    "initial value of map "
                        + mapName
                        + " in "
                        + fileName
                        + " must be "
                        + size
                        + " bytes, got "
                        + value.length);
              }
              MemorySegment data = arena.allocate(Math.max(value.length, 1), 8);
              MemorySegment.copy(value, 0, data, JAVA_BYTE, 0, value.length);
              Libbpf.mapSetInitialValue(map, data.asSlice(0, value.length), mapName);
            });
  }

  private static MemorySegment findUnloadedMap(
      MemorySegment object, String fileName, String mapName) {
    MemorySegment map = Libbpf.objectFindMap(object, mapName);
    if (map.equals(MemorySegment.NULL)) {
      var names = new ArrayList<String>();
      for (MemorySegment m = Libbpf.objectNextMap(object, MemorySegment.NULL);
          !m.equals(MemorySegment.NULL);
          m = Libbpf.objectNextMap(object, m)) {
        names.add(Libbpf.mapName(m));
      }
      throw new IllegalArgumentException(
          "LoadOptions name map '"
              + mapName
              + "', which "
              + fileName
              + " does not have; maps: "
              + names);
    }
    return map;
  }

  private static void createDirectories(Path dir) {
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create pin directory " + dir, e);
    }
  }
}
