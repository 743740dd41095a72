package dev.veer.bpf;

import dev.veer.bpf.Structs.ProgInfo;
import dev.veer.bpf.Structs.XdpAttachOpts;
import dev.veer.bpf.Structs.XdpQueryOpts;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An XDP program attached to a network interface (over netlink, inside a {@link NetworkNamespace}).
 *
 * <p>The attachment belongs to the interface, not to this process: it stays in place, and keeps the
 * program loaded, after the JVM exits unless {@link #close()} detaches it (or the interface goes
 * away). {@link #detachAll} cleans up after a process that did not close.
 */
public final class XdpAttachment implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(XdpAttachment.class);

  private static final int XDP_FLAGS_UPDATE_IF_NOEXIST = 1;
  private static final int XDP_FLAGS_SKB_MODE = 1 << 1;
  private static final int XDP_FLAGS_DRV_MODE = 1 << 2;
  private static final int XDP_FLAGS_HW_MODE = 1 << 3;

  /** The kernel keeps 15 characters of a program's name. */
  private static final int PROG_NAME_MAX = Structs.OBJ_NAME_LEN - 1;

  private final NetworkNamespace namespace;
  private final String ifname;
  private final int ifindex;
  private final XdpMode mode;
  private final String programName;
  private final int programId;
  private final AtomicBoolean closed = new AtomicBoolean();

  private XdpAttachment(
      NetworkNamespace namespace,
      String ifname,
      int ifindex,
      XdpMode mode,
      String programName,
      int programId) {
    this.namespace = namespace;
    this.ifname = ifname;
    this.ifindex = ifindex;
    this.mode = mode;
    this.programName = programName;
    this.programId = programId;
  }

  /**
   * Attaches {@code program} to {@code ifname} in {@code namespace}. Never replaces a program
   * already attached there: that fails with EBUSY (or EEXIST for a program in the other mode).
   */
  public static XdpAttachment attach(
      BpfProgram program, NetworkNamespace namespace, String ifname, XdpMode mode) {
    int programFd = program.fd();
    String subject = ifname + ", " + program.name() + ", " + mode;
    return namespace.call(
        () ->
            LibbpfLog.capturing(
                capture -> {
                  int ifindex = namespace.ifindexHere(ifname);
                  try {
                    Libbpf.xdpAttach(
                        ifindex,
                        programFd,
                        mode.flags | XDP_FLAGS_UPDATE_IF_NOEXIST,
                        MemorySegment.NULL,
                        subject,
                        capture::text);
                  } catch (BpfException e) {
                    if (e.errno() != BpfException.EBUSY && e.errno() != BpfException.EEXIST) {
                      throw e;
                    }
                    throw new BpfException(
                        e.operation(),
                        e.errno(),
                        e.detail()
                            + query(ifindex, ifname)
                                .anyId()
                                .map(
                                    id ->
                                        "interface "
                                            + ifname
                                            + " in "
                                            + namespace
                                            + " already runs XDP program id "
                                            + id
                                            + "; XdpAttachment.detachAll removes it")
                                .orElse(""));
                  }
                  LOG.info(
                      "attached XDP program {} (id {}) to {} in {} ({})",
                      program.name(),
                      program.id(),
                      ifname,
                      namespace,
                      mode);
                  return new XdpAttachment(
                      namespace, ifname, ifindex, mode, program.name(), program.id());
                }));
  }

  /**
   * Attaches {@code program}, atomically replacing a program of the same name that an earlier run
   * left attached (a restarted daemon taking over: packets never meet an interface without a
   * program). A program of another name is never replaced: that fails as {@link #attach} does.
   */
  public static XdpAttachment attachOrReplace(
      BpfProgram program, NetworkNamespace namespace, String ifname, XdpMode mode) {
    return attachOrReplace(program, namespace, ifname, mode, Optional.empty());
  }

  /**
   * {@link #attachOrReplace}, the attached program pinned at {@code programPin}: the next daemon
   * opens the program it replaces through that pin, which needs no {@code CAP_SYS_ADMIN} (opening a
   * program by its id does).
   */
  public static XdpAttachment attachOrReplace(
      BpfProgram program,
      NetworkNamespace namespace,
      String ifname,
      XdpMode mode,
      Optional<Path> programPin) {
    XdpAttachment attached = replaceOrAttach(program, namespace, ifname, mode, programPin);
    programPin.ifPresent(pin -> pinProgram(program, pin));
    return attached;
  }

  private static XdpAttachment replaceOrAttach(
      BpfProgram program,
      NetworkNamespace namespace,
      String ifname,
      XdpMode mode,
      Optional<Path> programPin) {
    int programFd = program.fd();
    String subject = ifname + ", " + program.name() + ", " + mode + ", replace";
    Optional<XdpAttachment> replaced =
        namespace.call(
            () ->
                LibbpfLog.capturing(
                    capture -> {
                      int ifindex = namespace.ifindexHere(ifname);
                      Optional<Integer> current = query(ifindex, ifname).anyId();
                      if (current.isEmpty()) {
                        return Optional.<XdpAttachment>empty();
                      }
                      Fd oldFd;
                      try {
                        oldFd = openAttached(current.get(), programPin);
                      } catch (BpfException e) {
                        if (e.errno() != BpfException.ENOENT) {
                          throw e;
                        }
                        return Optional
                            .<XdpAttachment>empty(); // gone since the query: nothing to replace
                      }
                      try (oldFd;
                          Arena arena = Arena.ofConfined()) {
                        String oldName = programName(oldFd.intValue());
                        if (!oldName.equals(truncatedName(program.name()))) {
                          throw new BpfException(
                              "bpf_xdp_attach(" + subject + ")",
                              BpfException.EBUSY,
                              "interface "
                                  + ifname
                                  + " in "
                                  + namespace
                                  + " runs XDP program '"
                                  + oldName
                                  + "' (id "
                                  + current.get()
                                  + "), not an earlier "
                                  + program.name()
                                  + ": not replacing someone else's program");
                        }
                        Libbpf.xdpAttach(
                            ifindex,
                            programFd,
                            mode.flags,
                            replacing(arena, oldFd),
                            subject,
                            capture::text);
                        LOG.info(
                            "replaced XDP program {} (id {}) on {} in {} with id {}",
                            oldName,
                            current.get(),
                            ifname,
                            namespace,
                            program.id());
                        return Optional.of(
                            new XdpAttachment(
                                namespace, ifname, ifindex, mode, program.name(), program.id()));
                      }
                    }));
    return replaced.orElseGet(() -> attach(program, namespace, ifname, mode));
  }

  /**
   * The attached program with id {@code id}: through its pin when the pin is that program, else by
   * id (which needs CAP_SYS_ADMIN).
   */
  private static Fd openAttached(int id, Optional<Path> pin) {
    if (pin.isPresent() && Files.exists(pin.get())) {
      Fd fd = Libbpf.objGet(pin.get().toString());
      if (BpfProgram.programId(fd.intValue(), "attached program") == id) {
        return fd;
      }
      fd.close();
    }
    try {
      return Libbpf.progGetFdById(id);
    } catch (BpfException e) {
      if (e.errno() == BpfException.EPERM) {
        throw new BpfException(
            "opening XDP program " + id + " to replace it",
            e.errno(),
            "it is not pinned where this daemon looks, and opening a program by id needs"
                + " CAP_SYS_ADMIN; detach it first (ip link set dev IFNAME xdp off) or run with"
                + " that capability");
      }
      throw e;
    }
  }

  private static void pinProgram(BpfProgram program, Path pin) {
    BpfSystem.replacePin(pin, next -> Libbpf.objPin(program.fd(), next, program.name()));
  }

  private static String truncatedName(String name) {
    return name.length() > PROG_NAME_MAX ? name.substring(0, PROG_NAME_MAX) : name;
  }

  private static String programName(int fd) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment info = Libbpf.objGetInfoByFd(fd, ProgInfo.LAYOUT, arena, "program");
      return Structs.string(info, ProgInfo.LAYOUT, "name");
    }
  }

  /**
   * Options under which libbpf adds XDP_FLAGS_REPLACE: only {@code expected}'s program is affected.
   */
  private static MemorySegment replacing(Arena arena, Fd expected) {
    MemorySegment opts = Structs.allocateOpts(arena, XdpAttachOpts.LAYOUT);
    XdpAttachOpts.OLD_PROG_FD.set(opts, expected.intValue());
    return opts;
  }

  /**
   * Detaches every XDP program (any mode) from {@code ifname} in {@code namespace}, whoever
   * attached it. Does nothing if the interface does not exist.
   */
  public static void detachAll(NetworkNamespace namespace, String ifname) {
    namespace.run(
        () ->
            LibbpfLog.capturing(
                capture -> {
                  int ifindex = Libc.ifNameToIndex(ifname);
                  if (ifindex == 0) {
                    LOG.debug("no interface {} in {}: nothing to detach", ifname, namespace);
                    return null;
                  }
                  Query attached = query(ifindex, ifname);
                  int[][] modes = {
                    {XDP_FLAGS_DRV_MODE, attached.driverId()},
                    {XDP_FLAGS_SKB_MODE, attached.genericId()},
                    {XDP_FLAGS_HW_MODE, attached.hardwareId()},
                  };
                  for (int[] flagsAndId : modes) {
                    if (flagsAndId[1] == 0) {
                      continue;
                    }
                    Libbpf.xdpDetach(
                        ifindex, flagsAndId[0], MemorySegment.NULL, ifname, capture::text);
                    LOG.info(
                        "detached XDP program id {} from {} in {}",
                        flagsAndId[1],
                        ifname,
                        namespace);
                  }
                  return null;
                }));
  }

  /**
   * This attachment if its program is still the one attached to its interface; else a new
   * attachment of {@code program} (the same program) to the interface of that name: after a driver
   * reset, another tool detaching it, or the interface deleted and created again. A program someone
   * else attached meanwhile is not replaced, and this throws, saying whose it is.
   *
   * @throws IllegalStateException if the interface does not exist (now), or runs another program
   */
  public XdpAttachment ensureAttached(BpfProgram program) {
    if (program.id() != programId) {
      throw new IllegalArgumentException(
          "attachment of program id " + programId + ", asked to keep id " + program.id());
    }
    Optional<Integer> current =
        namespace.call(
            () -> {
              int index = Libc.ifNameToIndex(ifname);
              if (index == 0) {
                throw new IllegalStateException(
                    "interface " + ifname + " does not exist in " + namespace);
              }
              return query(index, ifname).anyId();
            });
    if (current.isPresent() && current.get() == programId) {
      return this;
    }
    if (current.isPresent()) {
      throw new IllegalStateException(
          "interface "
              + ifname
              + " in "
              + namespace
              + " runs XDP program id "
              + current.get()
              + " now, not "
              + programName
              + " (id "
              + programId
              + "): someone else attached it; not replacing it");
    }
    closed.set(true); // nothing of this attachment is left to detach
    LOG.warn(
        "XDP program {} (id {}) was no longer attached to {} in {}: attaching it again",
        programName,
        programId,
        ifname,
        namespace);
    return attach(program, namespace, ifname, mode);
  }

  /** The id of the XDP program attached to {@code ifname} in {@code namespace}, if any. */
  public static Optional<Integer> attachedProgramId(NetworkNamespace namespace, String ifname) {
    return namespace.call(() -> query(namespace.ifindexHere(ifname), ifname).anyId());
  }

  public NetworkNamespace namespace() {
    return namespace;
  }

  public String ifname() {
    return ifname;
  }

  public XdpMode mode() {
    return mode;
  }

  /** The kernel id of the attached program. */
  public int programId() {
    return programId;
  }

  /**
   * Detaches the program if it is still the one attached; a program someone else attached meanwhile
   * is left alone. Idempotent.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    namespace.run(
        () ->
            LibbpfLog.capturing(
                capture -> {
                  detachOwn(capture);
                  return null;
                }));
  }

  @Override
  public String toString() {
    return "XdpAttachment["
        + programName
        + " (id "
        + programId
        + ") on "
        + ifname
        + " in "
        + namespace
        + ", "
        + mode
        + "]";
  }

  private void detachOwn(LibbpfLog.Capture capture) {
    // The expected-program check needs an fd; the program's id works even after its
    // BpfObject was closed, because the attachment keeps the program alive.
    Fd fd;
    try {
      fd = Libbpf.progGetFdById(programId);
    } catch (BpfException e) {
      if (e.errno() != BpfException.ENOENT) {
        throw e;
      }
      LOG.debug("XDP program id {} no longer exists: nothing to detach from {}", programId, ifname);
      return;
    }
    try (fd;
        Arena arena = Arena.ofConfined()) {
      Libbpf.xdpDetach(ifindex, mode.flags, replacing(arena, fd), ifname, capture::text);
      LOG.info(
          "detached XDP program {} (id {}) from {} in {}",
          programName,
          programId,
          ifname,
          namespace);
    } catch (BpfException e) {
      switch (e.errno()) {
        case BpfException.EEXIST ->
            LOG.warn(
                "not detaching from {} in {}: XDP program id {} is no longer the one" + " attached",
                ifname,
                namespace,
                programId);
        case BpfException.ENODEV ->
            LOG.debug(
                "interface {} in {} is gone, and with it XDP program id {}",
                ifname,
                namespace,
                programId);
        default -> throw e;
      }
    }
  }

  /** Program ids per mode; 0 where none. */
  private record Query(int id, int driverId, int hardwareId, int genericId) {
    Optional<Integer> anyId() {
      for (int candidate : new int[] {id, driverId, genericId, hardwareId}) {
        if (candidate != 0) {
          return Optional.of(candidate);
        }
      }
      return Optional.empty();
    }
  }

  /** Must run in the interface's namespace. */
  private static Query query(int ifindex, String ifname) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment opts = Structs.allocateOpts(arena, XdpQueryOpts.LAYOUT);
      Libbpf.xdpQuery(ifindex, 0, opts, ifname);
      return new Query(
          (int) XdpQueryOpts.PROG_ID.get(opts),
          (int) XdpQueryOpts.DRV_PROG_ID.get(opts),
          (int) XdpQueryOpts.HW_PROG_ID.get(opts),
          (int) XdpQueryOpts.SKB_PROG_ID.get(opts));
    }
  }
}
