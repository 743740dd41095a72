package dev.veer.testbed.net;

import com.google.common.collect.ObjectArrays;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.Shell;
import java.util.regex.Pattern;

/**
 * A network namespace this process created with {@code ip netns add}; closing
 * it deletes the namespace and with it every interface inside (veth peers in
 * other namespaces go too, and XDP programs attached to them are detached).
 */
public final class Namespace implements AutoCloseable {
  /** Every namespace Veer's test bed makes starts with this, so leftovers can be found. */
  public static final String PREFIX = "veer-";
  private static final Pattern NAME = Pattern.compile("veer-[a-z0-9-]{1,40}");

  private final String name;
  private boolean closed;

  private Namespace(String name) {
    this.name = name;
  }

  public static Namespace create(String name) {
    if (!NAME.matcher(name).matches()) {
      throw new IllegalArgumentException("namespace names must match " + NAME + ": " + name);
    }
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
    return Shell.run(ObjectArrays.concat(new String[] {"ip", "netns", "exec", name}, command, String.class));
  }

  public Shell.Result tryExec(String... command) {
    return Shell.tryRun(ObjectArrays.concat(new String[] {"ip", "netns", "exec", name}, command, String.class));
  }

  public void sysctl(String key, String value) {
    exec("sysctl", "-q", "-w", key + "=" + value);
  }

  /** Deletes namespaces left behind by a run that died before it could clean up. */
  public static void deleteLeftovers(String prefix) {
    for (String line : Shell.run("ip", "netns", "list").split("\n")) {
      String ns = line.split(" ")[0].trim();
      if (ns.startsWith(prefix)) {
        Shell.tryRun("ip", "netns", "delete", ns);
      }
    }
  }

  @Override
  public synchronized void close() {
    if (!closed) {
      closed = true;
      Shell.tryRun("ip", "netns", "delete", name);
    }
  }

  @Override
  public String toString() {
    return name;
  }
}
