package dev.veer.bpf.dataplane;

import com.google.common.base.Splitter;
import com.google.common.net.InetAddresses;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.Shell;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the kernel's neighbour entry for the next hop towards an address resolved. Veer's XDP
 * programs read next-hop MACs from the neighbour table but cannot ask the kernel to resolve one, so
 * without this a director (or a proxy forwarding a second chance) whose host had sent nothing
 * towards a next hop would drop every packet as {@code NO_NEIGH}. A "managed" entry (Linux 5.16+)
 * is one the kernel resolves and keeps reachable on its own. Uses iproute2; the next hops already
 * kept are remembered.
 */
public final class NeighbourKeeper {
  private static final Logger log = LoggerFactory.getLogger(NeighbourKeeper.class);

  private final List<String> ip;
  private final Set<String> kept = ConcurrentHashMap.newKeySet();

  public NeighbourKeeper(NetworkNamespace ns) {
    List<String> command = new ArrayList<>(List.of("ip"));
    ns.netnsName().ifPresent(name -> command.addAll(List.of("-n", name)));
    this.ip = List.copyOf(command);
  }

  /**
   * Keeps the next hop towards {@code backend} resolved; returns it, or empty (logged) when there
   * is no route.
   */
  public Optional<InetAddress> keep(InetAddress backend) {
    String family = backend instanceof Inet6Address ? "-6" : "-4";
    Shell.Result route = Shell.tryRun(command(family, "route", "get", backend.getHostAddress()));
    if (route.exitCode() != 0) {
      log.warn("no route to backend {}: {}", backend.getHostAddress(), route.output().strip());
      return Optional.empty();
    }
    List<String> words =
        Splitter.on(' ').omitEmptyStrings().trimResults().splitToList(route.output());
    if (!words.isEmpty() && words.getFirst().equals("local")) {
      return Optional.empty(); // this host's own address: no neighbour involved
    }
    String nextHop = after(words, "via").orElse(backend.getHostAddress());
    Optional<String> dev = after(words, "dev");
    if (dev.isEmpty()) {
      log.warn(
          "route to backend {} names no device: {}",
          backend.getHostAddress(),
          route.output().strip());
      return Optional.empty();
    }
    if (!kept.add(nextHop + "%" + dev.get())) {
      return Optional.of(InetAddresses.forString(nextHop));
    }
    String current =
        Shell.tryRun(command(family, "neigh", "show", "to", nextHop, "dev", dev.get())).output();
    if (!current.contains("PERMANENT") && !current.contains("managed")) {
      Shell.Result set =
          Shell.tryRun(command(family, "neigh", "replace", nextHop, "dev", dev.get(), "managed"));
      if (set.exitCode() != 0) {
        log.warn(
            "cannot keep neighbour {} on {} resolved: {}",
            nextHop,
            dev.get(),
            set.output().strip());
      }
    }
    return Optional.of(InetAddresses.forString(nextHop));
  }

  private String[] command(String... args) {
    List<String> out = new ArrayList<>(ip);
    out.addAll(List.of(args));
    return out.toArray(String[]::new);
  }

  private static Optional<String> after(List<String> words, String key) {
    int i = words.indexOf(key);
    return i >= 0 && i + 1 < words.size() ? Optional.of(words.get(i + 1)) : Optional.empty();
  }
}
