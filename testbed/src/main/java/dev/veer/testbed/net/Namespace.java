package dev.veer.testbed.net;

import com.google.common.collect.ObjectArrays;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.Shell;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A network namespace this process created with {@code ip netns add}; closing it deletes the
 * namespace and with it every interface inside (veth peers in other namespaces go too, and XDP
 * programs attached to them are detached).
 */
public final class Namespace implements AutoCloseable {
  /**
   * Every namespace Veer's test bed makes is named {@code veer-<pid>-<role>}, after the process
   * that made it, so leftovers of dead processes can be told from namespaces a live run is using.
   */
  private static final String PREFIX = "veer-";

  private static final Pattern ROLE = Pattern.compile("[a-z0-9-]{1,40}");
  private static final String BPF_FS = "/sys/fs/bpf";
  private static final Pattern LEFTOVER = Pattern.compile("veer-(\\d+)-.*");

  private final String name;
  private boolean closed;

  private Namespace(String name) {
    this.name = name;
  }

  /** Creates {@code veer-<this pid>-<role>}. */
  public static Namespace create(String role) {
    if (!ROLE.matcher(role).matches()) {
      throw new IllegalArgumentException("namespace roles must match " + ROLE + ": " + role);
    }
    String name = PREFIX + ProcessHandle.current().pid() + "-" + role;
    Shell.run("ip", "netns", "add", name);
    Namespace ns = new Namespace(name);
    try {
      ns.exec("ip", "link", "set", "lo", "up");
      return ns;
    } catch (RuntimeException e) {
      ns.close();
      throw e;
    }
  }

  public String name() {
    return name;
  }

  /** The namespace for in-process work (sockets, XDP attachment) through FFM. */
  public NetworkNamespace handle() {
    return NetworkNamespace.named(name);
  }

  /** Runs a command inside the namespace. */
  public String exec(String... command) {
    return Shell.run(
        ObjectArrays.concat(new String[] {"ip", "netns", "exec", name}, command, String.class));
  }

  public Shell.Result tryExec(String... command) {
    return Shell.tryRun(
        ObjectArrays.concat(new String[] {"ip", "netns", "exec", name}, command, String.class));
  }

  public void sysctl(String key, String value) {
    exec("sysctl", "-q", "-w", key + "=" + value);
  }

  /**
   * Deletes what Veer processes that died before they could clean up left behind: their namespaces,
   * and the maps and links they pinned under the namespaces' names in /sys/fs/bpf.
   */
  public static void deleteLeftovers() {
    for (String line : Shell.run("ip", "netns", "list").split("\n")) {
      String ns = line.split(" ")[0].trim();
      Matcher m = LEFTOVER.matcher(ns);
      if (m.matches() && ProcessHandle.of(Long.parseLong(m.group(1))).isEmpty()) {
        killProcesses(ns);
        Shell.tryRun("ip", "netns", "delete", ns);
      }
    }
    java.io.File[] pins = new java.io.File(BPF_FS).listFiles();
    for (java.io.File dir : pins == null ? new java.io.File[0] : pins) {
      Matcher m = LEFTOVER.matcher(dir.getName());
      if (dir.isDirectory()
          && m.matches()
          && ProcessHandle.of(Long.parseLong(m.group(1))).isEmpty()) {
        BpfSystem.removePins(dir.toPath());
      }
    }
  }

  /**
   * Where the daemons of this namespace pin their objects: named after it, so a stale run's are
   * found.
   */
  public Path pinDirectory() {
    return Path.of(BPF_FS, name);
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      killProcesses(name);
      Shell.tryRun("ip", "netns", "delete", name);
    }
  }

  /** Whatever still runs in the namespace (a speaker, a daemon of a failed run) goes with it. */
  private static void killProcesses(String ns) {
    for (String pid : Shell.tryRun("ip", "netns", "pids", ns).output().split("\\s+")) {
      if (pid.matches("[0-9]+")) {
        ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
      }
    }
  }

  @Override
  public String toString() {
    return name;
  }
}
