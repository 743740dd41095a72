package dev.veer.bpf;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Checks that this process can use BPF at all, failing with an error that says what to do. */
public final class BpfSystem {
  private static final int CAP_NET_ADMIN = 12;
  private static final int CAP_SYS_ADMIN = 21;
  private static final int CAP_BPF = 39;
  private static final Path BPFFS = Path.of("/sys/fs/bpf");
  private static final Logger LOG = LoggerFactory.getLogger(BpfSystem.class);

  private BpfSystem() {}

  /**
   * Fails unless the process has CAP_BPF (or, on kernels before 5.8, CAP_SYS_ADMIN) and
   * CAP_NET_ADMIN, which loading and attaching XDP programs need.
   */
  public static void requireRoot() {
    String missing = missingPrivileges();
    if (!missing.isEmpty()) {
      throw new IllegalStateException(missing);
    }
  }

  /**
   * {@link #requireRoot()}, then checks that a BPF filesystem is mounted at /sys/fs/bpf and that
   * the bpf() syscall works, by creating and closing a one-entry map.
   */
  public static void requireUsable() {
    requireRoot();
    if (!bpffsMounted()) {
      throw new IllegalStateException(
          "no BPF filesystem at " + BPFFS + "; mount one as root: mount -t bpf bpf " + BPFFS);
    }
    try (BpfMap probe = BpfMap.create(MapSpec.of(MapType.ARRAY, "veer_probe", 4, 4, 1))) {
      probe.fd();
    } catch (BpfException e) {
      String hint =
          e.errno() == BpfException.EPERM
              ? "the bpf() syscall is denied although the capabilities are there: a seccomp filter or"
                  + " container policy blocks it (run the container privileged)"
              : "the kernel's BPF support is missing or restricted";
      throw new IllegalStateException(hint + ": " + e.getMessage(), e);
    } catch (LinkageError e) {
      // libbpf missing: the binding class failed to initialise.
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new IllegalStateException("libbpf cannot be used: " + cause.getMessage(), e);
    }
  }

  /** Empty if the process has the capabilities, else the actionable complaint. */
  static String missingPrivileges() {
    long caps = effectiveCapabilities();
    List<String> missing = new ArrayList<>();
    if (!has(caps, CAP_BPF) && !has(caps, CAP_SYS_ADMIN)) {
      missing.add("CAP_BPF");
    }
    if (!has(caps, CAP_NET_ADMIN)) {
      missing.add("CAP_NET_ADMIN");
    }
    return missing.isEmpty()
        ? ""
        : "Veer's data plane needs root (CAP_BPF, CAP_NET_ADMIN); run as root"
            + " (this process lacks "
            + String.join(", ", missing)
            + ")";
  }

  private static boolean has(long caps, int capability) {
    return (caps & (1L << capability)) != 0;
  }

  private static long effectiveCapabilities() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("CapEff:")) {
          return Long.parseUnsignedLong(line.substring("CapEff:".length()).strip(), 16);
        }
      }
    } catch (IOException | NumberFormatException e) {
      throw new IllegalStateException(
          "cannot read this process's capabilities from /proc/self/status", e);
    }
    throw new IllegalStateException("no CapEff line in /proc/self/status");
  }

  /**
   * Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup on unified systems,
   * /sys/fs/cgroup/unified on hybrid ones), if it is.
   */
  public static Optional<Path> cgroupV2Root() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
        String[] fields = line.split(" ");
        if (fields.length > 2 && fields[2].equals("cgroup2")) {
          return Optional.of(Path.of(fields[1]));
        }
      }
      return Optional.empty();
    } catch (IOException e) {
      throw new IllegalStateException("cannot read /proc/self/mounts", e);
    }
  }

  /** The last mount on /sys/fs/bpf is the visible one (a sysfs may lie underneath). */
  private static boolean bpffsMounted() {
    try {
      String type = null;
      for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
        String[] fields = line.split(" ");
        if (fields.length > 2 && fields[1].equals(BPFFS.toString())) {
          type = fields[2];
        }
      }
      return "bpf".equals(type);
    } catch (IOException e) {
      throw new IllegalStateException("cannot read /proc/self/mounts", e);
    }
  }

  /**
   * Removes what a daemon pinned in {@code dir} (maps, links) and the directory, for one that can
   * no longer do it itself (killed, or handed over for good). Objects still in use by something
   * attached stay alive until that goes; a pinned link is detached.
   */
  /**
   * Makes {@code pin} the object {@code pinAt} pins, replacing what was pinned there in one rename:
   * a reader sees the old object or the new one, never none. The object is first pinned beside it
   * ({@code <name>-next}: bpffs refuses names with a dot).
   */
  public static void replacePin(Path pin, java.util.function.Consumer<Path> pinAt) {
    Path next = pin.resolveSibling(pin.getFileName() + "-next");
    try {
      Files.deleteIfExists(next);
      pinAt.accept(next);
      Files.move(
          next,
          pin,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot pin " + pin + ": " + e.getMessage(), e);
    }
  }

  /**
   * Turns on the kernel's run-time statistics of every program ({@link BpfProgram#runStats}) until
   * the returned handle is closed, without touching the kernel.bpf_stats_enabled sysctl.
   */
  public static RunTimeStatistics runTimeStatistics() {
    return new RunTimeStatistics(Libbpf.enableStats(Libbpf.STATS_RUN_TIME));
  }

  /** Run-time statistics kept on while this is open. */
  public static final class RunTimeStatistics implements AutoCloseable {
    private final Fd fd;

    private RunTimeStatistics(Fd fd) {
      this.fd = fd;
    }

    @Override
    public void close() {
      fd.close();
    }
  }

  public static void removePins(Path dir) {
    try (var pins = Files.list(dir)) {
      for (Path pin : pins.toList()) {
        Files.deleteIfExists(pin);
      }
      Files.deleteIfExists(dir);
    } catch (java.nio.file.NoSuchFileException e) {
      // nothing pinned
    } catch (IOException e) {
      LOG.warn("could not remove the pins in {}: {}", dir, e.toString());
    }
  }
}
