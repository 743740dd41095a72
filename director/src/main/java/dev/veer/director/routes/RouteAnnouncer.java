package dev.veer.director.routes;

import com.google.common.collect.ImmutableSet;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.Shell;
import dev.veer.bpf.XdpAttachment;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.director.sync.SnapshotApplier;
import dev.veer.metrics.Metric;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Route health injection: the VIPs this director can forward, as host routes in a kernel routing
 * table of its own, which the host's BGP speaker (BIRD's kernel protocol, {@code learn}) announces
 * to the router. A VIP is in the table while
 *
 * <ul>
 *   <li>this director's program is attached to its interface, and the interface is up;
 *   <li>the tables of a snapshot are applied (until the first one this process applies, the table
 *       is left as it is: a daemon that takes over a pinned program keeps its routes, so a restart
 *       does not flap them; nor does a coordinator outage, since the program forwards on);
 *   <li>its service has at least {@code min_healthy} backends that are healthy and take new
 *       connections.
 * </ul>
 *
 * The kernel table is the interface to the speaker: routes outlive this daemon, and the speaker
 * picks changes up at once over netlink. Routes carry protocol {@value #PROTOCOL}, so nothing else
 * in the table is touched.
 */
public final class RouteAnnouncer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RouteAnnouncer.class);

  /** The kernel route protocol Veer's routes carry ('V'). */
  public static final int PROTOCOL = 86;

  private static final Duration PERIOD = Duration.ofMillis(250);
  private static final Pattern DESTINATION = Pattern.compile("\"dst\":\"([^\"/]+)");

  private final NetworkNamespace namespace;
  private final String ifname;
  private final int table;
  private final SnapshotApplier applier;
  private final DirectorDataplane dataplane;
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-routes").daemon(true).factory());
  private final AtomicLong changes = new AtomicLong();
  private volatile ImmutableSet<InetAddress> announced;
  private volatile String lastChange = "none yet";

  public RouteAnnouncer(
      NetworkNamespace namespace,
      String ifname,
      int table,
      SnapshotApplier applier,
      DirectorDataplane dataplane) {
    this.namespace = namespace;
    this.ifname = ifname;
    this.table = table;
    this.applier = applier;
    this.dataplane = dataplane;
    this.announced = read(namespace, table);
    if (!announced.isEmpty()) {
      log.info("routes announced before this daemon started, kept: {}", announced);
    }
  }

  public void start() {
    timer.scheduleWithFixedDelay(this::refreshSafely, 0, PERIOD.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The VIPs announced now. */
  public ImmutableSet<InetAddress> announced() {
    return announced;
  }

  /** The last change of the announced VIPs and why. */
  public String lastChange() {
    return lastChange;
  }

  private void refreshSafely() {
    try {
      refresh();
    } catch (RuntimeException e) {
      log.warn("route announcements: {}", e.toString());
    }
  }

  /** Brings the table to what should be announced now; returns why, when it changed anything. */
  synchronized void refresh() {
    if (applier.appliedVersion() == 0) {
      return;
    }
    Optional<String> down = down();
    Set<InetAddress> wanted = new HashSet<>();
    StringBuilder why = new StringBuilder();
    for (SnapshotApplier.Announcement a : applier.announcements()) {
      if (down.isEmpty() && a.healthyBackends() >= a.minHealthy()) {
        wanted.add(a.vip());
      } else if (announced.contains(a.vip())) {
        why.append(
            down.orElse(
                "service "
                    + a.service()
                    + " has "
                    + a.healthyBackends()
                    + " healthy backends, fewer than "
                    + a.minHealthy()));
      }
    }
    if (!wanted.equals(announced)) {
      set(wanted, why.length() > 0 ? why.toString() : "tables applied");
    }
  }

  /** Why this director cannot forward now, if it cannot. */
  private Optional<String> down() {
    int ours = dataplane.program().program().id();
    Optional<Integer> attached = XdpAttachment.attachedProgramId(namespace, ifname);
    if (attached.isEmpty() || attached.get() != ours) {
      return Optional.of("the director's program is not attached to " + ifname);
    }
    String link = namespace.call(() -> Shell.run("ip", "-j", "link", "show", "dev", ifname));
    if (!link.contains("\"operstate\":\"UP\"")) {
      return Optional.of(ifname + " is down");
    }
    return Optional.empty();
  }

  private void set(Set<InetAddress> wanted, String why) {
    for (InetAddress vip : announced) {
      if (!wanted.contains(vip)) {
        route("del", vip);
        log.info("withdrawn {}: {}", vip.getHostAddress(), why);
      }
    }
    for (InetAddress vip : wanted) {
      if (!announced.contains(vip)) {
        route("replace", vip);
        log.info("announced {}", vip.getHostAddress());
      }
    }
    announced = ImmutableSet.copyOf(wanted);
    changes.incrementAndGet();
    lastChange = why;
  }

  /** Withdraws every route, for a director taken out for good. */
  public synchronized void withdrawAll(String why) {
    timer.shutdownNow();
    set(Set.of(), why);
  }

  private void route(String verb, InetAddress vip) {
    boolean v6 = vip instanceof Inet6Address;
    namespace.call(
        () ->
            Shell.run(
                "ip",
                v6 ? "-6" : "-4",
                "route",
                verb,
                vip.getHostAddress() + (v6 ? "/128" : "/32"),
                "dev",
                "lo",
                "table",
                Integer.toString(table),
                "proto",
                Integer.toString(PROTOCOL)));
  }

  /**
   * Withdraws every route Veer put into {@code table} in {@code namespace}, with no daemon running
   * (a director taken out for good); returns the VIPs withdrawn.
   */
  public static ImmutableSet<InetAddress> withdrawAll(NetworkNamespace namespace, int table) {
    ImmutableSet<InetAddress> present = read(namespace, table);
    for (String family : List.of("-4", "-6")) {
      namespace.call(
          () ->
              Shell.tryRun(
                  "ip",
                  family,
                  "route",
                  "flush",
                  "table",
                  Integer.toString(table),
                  "proto",
                  Integer.toString(PROTOCOL)));
    }
    ImmutableSet<InetAddress> left = read(namespace, table);
    if (!left.isEmpty()) {
      throw new IllegalStateException("routes left in table " + table + " after a flush: " + left);
    }
    return present;
  }

  /** Veer's routes in the table now. */
  private static ImmutableSet<InetAddress> read(NetworkNamespace namespace, int table) {
    ImmutableSet.Builder<InetAddress> out = ImmutableSet.builder();
    for (String family : List.of("-4", "-6")) {
      Shell.Result shown =
          namespace.call(
              () ->
                  Shell.tryRun(
                      "ip",
                      "-j",
                      family,
                      "route",
                      "show",
                      "table",
                      Integer.toString(table),
                      "proto",
                      Integer.toString(PROTOCOL)));
      if (shown.exitCode() != 0) {
        if (shown.output().contains("does not exist")) {
          continue; // the kernel creates a table with its first route
        }
        throw new IllegalStateException(
            "cannot read routing table " + table + ": " + shown.output().strip());
      }
      Matcher m = DESTINATION.matcher(shown.output());
      while (m.find()) {
        out.add(com.google.common.net.InetAddresses.forString(m.group(1)));
      }
    }
    return out.build();
  }

  public List<Metric> metrics() {
    return List.of(
        Metric.gauge(
            "veer_director_announced_vips",
            "VIPs this director announces (route health injection).",
            announced.size()),
        Metric.counter(
            "veer_director_announcement_changes_total",
            "Changes to the set of announced VIPs.",
            List.of(Metric.Sample.of(changes.get()))),
        Metric.gauge(
            "veer_director_announcement_info",
            "The last change of the announced VIPs and why (always 1).",
            List.of(Metric.Sample.of(Map.of("why", lastChange), 1))));
  }

  /** Stops following; the routes stay (a hand-over or a restart must not flap them). */
  @Override
  public void close() {
    timer.shutdownNow();
  }
}
