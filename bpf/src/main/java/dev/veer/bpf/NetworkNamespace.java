package dev.veer.bpf;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionException;

/**
 * A Linux network namespace, named by its nsfs file. Work runs inside it through {@link #call}:
 * sockets created there, interface lookups and XDP attachments made there belong to this namespace.
 *
 * <p>Namespaces are per thread, so {@link #call} runs its task on a fresh platform thread that
 * first joins the namespace (setns) and then does nothing else; virtual threads could not be used,
 * as they hop between carrier threads.
 */
public final class NetworkNamespace {
  private static final String NETNS_DIR = "/run/netns";

  private final String name;
  private final Path path;

  private NetworkNamespace(String name, Path path) {
    this.name = name;
    this.path = path;
  }

  /** The namespace {@code ip netns add <name>} created, /run/netns/&lt;name&gt;. */
  public static NetworkNamespace named(String name) {
    if (name.isEmpty() || name.contains("/") || name.equals(".") || name.equals("..")) {
      throw new IllegalArgumentException("invalid network namespace name '" + name + "'");
    }
    return new NetworkNamespace(name, Path.of(NETNS_DIR, name));
  }

  /** The namespace this JVM process started in (that of its initial thread). */
  public static NetworkNamespace current() {
    return new NetworkNamespace("(process)", Path.of("/proc/self/ns/net"));
  }

  public String name() {
    return name;
  }

  /** The name to give {@code ip -n}, or empty for the process's own namespace. */
  public Optional<String> netnsName() {
    return path.startsWith(NETNS_DIR) ? Optional.of(name) : Optional.empty();
  }

  /** The nsfs file this namespace is entered through. */
  public Path path() {
    return path;
  }

  /**
   * Runs {@code task} inside this namespace on a new platform thread and waits for it. Unchecked
   * exceptions come back as they are; checked ones wrapped in an {@link UncheckedIOException} (for
   * {@link IOException}) or a {@link CompletionException}. Interrupting the caller interrupts the
   * task; the caller still waits for it to end.
   */
  public <T> T call(Callable<T> task) {
    var outcome = new Outcome<T>();
    Thread worker =
        Thread.ofPlatform()
            .name("veer-netns-" + name)
            .daemon(true)
            .unstarted(
                () -> {
                  try {
                    enter();
                    outcome.value = task.call();
                  } catch (Throwable t) {
                    outcome.failure = t;
                  }
                });
    worker.start();
    boolean interrupted = false;
    while (true) {
      try {
        worker.join();
        break;
      } catch (InterruptedException e) {
        interrupted = true;
        worker.interrupt();
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    Throwable failure = outcome.failure;
    if (failure == null) {
      return outcome.value;
    }
    // The failure's own trace shows the worker; keep where the caller was too.
    failure.addSuppressed(
        new Exception(
            "called in network namespace "
                + name
                + " from thread "
                + Thread.currentThread().getName()));
    switch (failure) {
      case RuntimeException e -> throw e;
      case Error e -> throw e;
      case IOException e -> throw new UncheckedIOException(e.getMessage(), e);
      default -> throw new CompletionException(failure.getMessage(), failure);
    }
  }

  /** {@link #call} for work without a result. */
  public void run(Runnable task) {
    call(
        () -> {
          task.run();
          return null;
        });
  }

  /** The kernel's cookie for this namespace, as {@code bpf_get_netns_cookie} returns it. */
  public long cookie() {
    return call(Libc::netnsCookie);
  }

  /** The index of interface {@code ifname} in this namespace. */
  public int ifindex(String ifname) {
    return call(() -> ifindexHere(ifname));
  }

  /** Resolves {@code ifname} in the namespace the calling thread is in, which must be this one. */
  int ifindexHere(String ifname) {
    int index = Libc.ifNameToIndex(ifname);
    if (index == 0) {
      throw new BpfException(
          "if_nametoindex(" + ifname + ")",
          BpfException.ENODEV,
          "no interface '" + ifname + "' in network namespace " + name);
    }
    return index;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof NetworkNamespace other && path.equals(other.path);
  }

  @Override
  public int hashCode() {
    return path.hashCode();
  }

  @Override
  public String toString() {
    return "NetworkNamespace[" + name + "]";
  }

  private void enter() {
    // A thread already in the namespace (the process's own, for a daemon run inside it) stays:
    // setns needs CAP_SYS_ADMIN, which a daemon confined to its unit's capabilities lacks.
    if (alreadyIn()) {
      return;
    }
    Fd fd;
    try {
      fd = Libc.open(path.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
    } catch (BpfException e) {
      if (e.errno() == BpfException.ENOENT) {
        throw new BpfException(
            e.operation(),
            e.errno(),
            "network namespace "
                + name
                + " does not exist (create it with: ip netns add "
                + name
                + ")",
            e);
      }
      throw e;
    }
    try (fd) {
      Libc.setns(fd, Libc.CLONE_NEWNET, path.toString());
    }
  }

  private boolean alreadyIn() {
    try {
      return identity(Path.of("/proc/thread-self/ns/net")).equals(identity(path));
    } catch (IOException e) {
      return false;
    }
  }

  /** The namespace's identity: its nsfs inode (device and inode of the file it is entered by). */
  private static Object identity(Path nsfs) throws IOException {
    return Files.readAttributes(nsfs, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
  }

  /** Written by the worker, read by the caller after join (which orders the two). */
  private static final class Outcome<T> {
    private T value;
    private Throwable failure;
  }
}
