package dev.veer.testbed.demo;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.coordinator.Coordinator;
import dev.veer.coordinator.status.StatusPage;
import dev.veer.lifecycle.Logging;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Health;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.testbed.Await;
import dev.veer.testbed.ConnectionLoops;
import dev.veer.testbed.TestBed;
import dev.veer.testbed.TestBed.Director;
import dev.veer.testbed.TestBed.Proxy;
import dev.veer.testbed.http.HttpClients;
import dev.veer.testbed.http.HttpSite;
import dev.veer.testbed.net.Namespace;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.BooleanSupplier;

/**
 * The main job: a whole Veer cluster on this machine, in network namespaces: a coordinator on an
 * embedded ZooKeeper, director daemons behind an ECMP router, proxy hosts with agents and a real
 * HTTP server on the VIP. Real HTTP clients go through it while an operator's changes (through the
 * same admin API as {@code veer ctl}) add a proxy, drain another and take a director away; the
 * screen shows, live, what every part does.
 *
 * <pre>
 * ./veer demo [--directors D] [--proxies P] [--co-located] [--connections N] [--short] [--keep]
 * </pre>
 *
 * With {@code --co-located} there is no director tier: the router spreads the VIP over the proxy
 * hosts themselves, each a director and a proxy at once ("be the load balancer yourself").
 *
 * <p>The daemons' logs go to a file whose path the demo prints, so the terminal shows only the
 * story. It exits 1 if any request failed.
 */
public final class Demo {
  /**
   * Where every log line of the demo's daemons goes. First of the static fields: the others load
   * classes that make their loggers, and the logger reads its destination once.
   */
  private static final Path LOG_FILE =
      Logging.toFile(
          Path.of(
              System.getProperty("java.io.tmpdir"),
              "veer-demo-" + ProcessHandle.current().pid() + ".log"));

  /** The demo's HTTP service: its own port on the bed's VIP. */
  private static final InetSocketAddress VIP = new InetSocketAddress(TestBed.VIP4, 8080);

  private final PrintStream out = System.out;
  private final boolean live = System.console() != null;
  private final TestBed bed;
  private final Coordinator coordinator;
  private final AdminServiceGrpc.AdminServiceBlockingStub admin;
  private final List<HttpSite> sites;
  private final Pace pace;
  private final boolean coLocated;

  /**
   * How long each step runs: the full story, or a short one (CI runs it on every change) with the
   * same events, closer together and fewer clients.
   */
  record Pace(
      Duration firstStep, int keepAliveClients, int seconds, int joinAt, int drainAt, int leaveAt) {
    static final Pace FULL = new Pace(Duration.ofSeconds(3), 200, 12, 2, 5, 8);
    static final Pace SHORT = new Pace(Duration.ofSeconds(2), 100, 6, 1, 2, 4);
  }

  private Demo(
      TestBed bed,
      Coordinator coordinator,
      AdminServiceGrpc.AdminServiceBlockingStub admin,
      List<HttpSite> sites,
      Pace pace,
      boolean coLocated) {
    this.coLocated = coLocated;
    this.bed = bed;
    this.coordinator = coordinator;
    this.admin = admin;
    this.sites = sites;
    this.pace = pace;
  }

  public static void main(String[] args) throws Exception {
    int directors = 2;
    int proxies = 4;
    Integer connections = null;
    boolean keep = false;
    boolean coLocated = false;
    Pace pace = Pace.FULL;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--directors" -> directors = Integer.parseInt(args[++i]);
        case "--proxies" -> proxies = Integer.parseInt(args[++i]);
        case "--connections" -> connections = Integer.parseInt(args[++i]);
        case "--short" -> pace = Pace.SHORT;
        case "--keep" -> keep = true;
        case "--co-located" -> coLocated = true;
        default -> {
          System.err.println(
              "usage: ./veer demo [--directors D (2-8)] [--proxies P (4-16)] [--co-located]"
                  + " [--connections N] [--short] [--keep]");
          System.exit(2);
        }
      }
    }
    if (connections == null) {
      connections = pace == Pace.SHORT ? 300 : 1000;
    }
    if (directors < 2 || directors > 8 || proxies < 4 || proxies > 16) {
      System.err.println("veer demo: 2-8 directors and 4-16 proxies");
      System.exit(2);
    }
    if (coLocated && proxies > 8) {
      System.err.println("veer demo: 4-8 co-located hosts (--proxies)");
      System.exit(2);
    }
    System.out.println("Daemon logs: " + LOG_FILE);
    BpfSystem.requireUsable();
    // The JDK's HTTP server closes idle keep-alive connections beyond 200 by default; the demo's
    // clients keep a thousand open. Read once, when the first server of the JVM starts.
    System.setProperty("sun.net.httpserver.maxIdleConnections", "10000");
    // What a demo that crashed left behind.
    Namespace.deleteLeftovers();
    Path data = Files.createTempDirectory("veer-demo");
    long failed = 0;
    System.out.println("Starting a coordinator on an embedded ZooKeeper ...");
    try (Coordinator coordinator =
        Coordinator.start(
            Coordinator.Config.local("demo", data)
                .withCluster(Coordinator.ClusterDefaults.DEFAULT.withChecks(500, 250, 2)))) {
      String target = "127.0.0.1:" + coordinator.port();
      if (coLocated) {
        System.out.printf(
            "Building the test bed: a client, a router (BIRD, BGP with BFD) and %d co-located"
                + " hosts, each a director daemon announcing the VIPs through BIRD and a proxy"
                + " with its agent on one interface: no director tier ...%n",
            proxies);
      } else {
        System.out.printf(
            "Building the test bed: a client, a router (BIRD, BGP with BFD), %d director daemons"
                + " announcing their VIPs through BIRD, and %d proxy hosts with agents ...%n",
            directors, proxies);
      }
      TestBed.Builder builder = TestBed.builder("demo").coordinators(List.of(target)).agents();
      if (coLocated) {
        builder.coLocated(proxies);
      } else {
        builder.directors(directors).proxies(proxies);
      }
      try (TestBed bed = builder.build()) {
        Thread hook =
            new Thread(
                () -> {
                  bed.close();
                  try {
                    coordinator.close();
                  } catch (Exception e) {
                    // exiting anyway
                  }
                  deleteTree(data);
                });
        Runtime.getRuntime().addShutdownHook(hook);
        ManagedChannel channel = Transport.channel(target, Optional.empty());
        List<HttpSite> sites = new java.util.ArrayList<>();
        try (StatusPage page =
            StatusPage.start(new InetSocketAddress("127.0.0.1", 0), coordinator.admin())) {
          for (Proxy p : bed.proxies()) {
            sites.add(HttpSite.start(p.ns().handle(), VIP.getPort(), p.name()));
          }
          System.out.println("Status page: http://127.0.0.1:" + page.port() + "/");
          failed =
              new Demo(
                      bed,
                      coordinator,
                      AdminServiceGrpc.newBlockingStub(channel),
                      sites,
                      pace,
                      coLocated)
                  .run(connections, keep, target);
        } finally {
          sites.forEach(HttpSite::close);
          Transport.close(channel);
        }
        Runtime.getRuntime().removeShutdownHook(hook);
      }
    } finally {
      deleteTree(data);
    }
    System.out.println("Cluster removed.");
    if (failed > 0) {
      System.out.println(failed + " connections failed: see " + LOG_FILE);
      System.exit(1);
    }
  }

  /** Runs the story; returns how many requests failed. */
  private long run(int connections, boolean keep, String target) throws Exception {
    admin.createService(
        CreateServiceRequest.newBuilder()
            .setSpec(
                ServiceSpec.newBuilder()
                    .setName("web")
                    .setVip(VIP.getAddress().getHostAddress())
                    .setPort(VIP.getPort())
                    .setProtocol(Protocol.TCP))
            .build());
    for (int p = 1; p <= 3; p++) {
      addBackend(p, BackendState.ACTIVE);
    }
    out.println(
        "Service web (HTTP) on "
            + VIP.getAddress().getHostAddress()
            + ":"
            + VIP.getPort()
            + (coLocated ? " -> hosts 1-3" : " -> proxies 1-3")
            + "; waiting for their agents' checks and the directors' tables ...");
    await(
        () -> service().getBackendsList().stream().allMatch(b -> b.getHealth() == Health.HEALTHY));
    awaitDirectors();
    // The router's ECMP route comes from the directors' announcements (route health injection).
    await(() -> bed.routerNextHops4().size() == bed.directors().size());
    out.println(
        "The router learnt "
            + VIP.getAddress().getHostAddress()
            + " over BGP from every director: ECMP via "
            + String.join(", ", bed.routerNextHops4()));

    long failed = 0;
    out.printf(
        "%n1. %d HTTP clients, each on its own connection, a GET every 200 ms for %d s%n",
        connections, pace.firstStep().toSeconds());
    try (HttpClients clients =
        HttpClients.start(bed.client().handle(), VIP, connections, Duration.ofMillis(200))) {
      Thread.sleep(pace.firstStep().toMillis());
      for (Proxy p : bed.proxies()) {
        out.printf("   %-8s %5d connections%n", p.name(), clients.perServer().count(p.name()));
      }
      ConnectionLoops.Result result = clients.stop();
      out.printf(
          "   requests answered %,d, connections failed %d%n",
          result.answered(), result.failed().size());
      result.failed().stream().limit(5).forEach(f -> out.println("     " + f));
      failed += result.failed().size();
    }
    showLocalShare();

    out.printf(
        "%n2. %d keep-alive HTTP clients, a GET every 50 ms each, while the operator changes things%n",
        pace.keepAliveClients());
    String[] events = {"", "", ""};
    long afterChanges = 0;
    try (HttpClients traffic =
        HttpClients.start(
            bed.client().handle(), VIP, pace.keepAliveClients(), Duration.ofMillis(50))) {
      for (int second = 1; second <= pace.seconds(); second++) {
        Thread.sleep(1000);
        if (second == pace.joinAt()) {
          addBackend(4, BackendState.FILLING);
          events[0] =
              "t="
                  + second
                  + "s  veer ctl backend add web "
                  + address(4)
                  + "      ("
                  + name(4)
                  + " joins)";
        } else if (second == pace.drainAt()) {
          admin.setBackendState(
              SetBackendStateRequest.newBuilder()
                  .setService("web")
                  .setAddress(address(2))
                  .setState(BackendState.DRAINING)
                  .build());
          events[1] =
              "t="
                  + second
                  + "s  veer ctl backend drain web "
                  + address(2)
                  + "    ("
                  + name(2)
                  + " drains)";
        } else if (second == pace.leaveAt()) {
          bed.setEcmp(bed.directors().subList(1, bed.directors().size()));
          events[2] =
              "t="
                  + second
                  + "s  birdc disable uplink on "
                  + (coLocated ? "host-1" : "director-1")
                  + " (it leaves the router's ECMP set)";
          afterChanges = traffic.mark();
        }
        // A terminal redraws every second; a log gets a frame every 3 s.
        if (live || second % 3 == 0) {
          show(second, traffic, events);
        }
      }
      // Counted once every request in flight has been answered or timed out: a connection whose
      // packets went nowhere fails only then. Each must also have answered after the last change.
      ConnectionLoops.Result result = traffic.stop();
      List<ConnectionLoops.Connection> broken = result.brokenSince(afterChanges);
      out.printf(
          "%n   requests answered: %,d   connections broken: %d of %d%n",
          result.answered(), broken.size(), result.connections().size());
      broken.stream().limit(5).forEach(f -> out.println("     " + f));
      failed += broken.size();
    }
    showLocalShare();
    out.println(
        "   The clients closed their connections: "
            + name(2)
            + "'s drain ends by itself once its agent sees none left.");
    await(
        () ->
            service().getBackendsList().stream()
                .filter(b -> b.getAddress().equals(address(2)))
                .allMatch(b -> b.getState() == BackendState.INACTIVE));
    out.println(
        "   "
            + name(2)
            + " is now inactive: `veer ctl backend remove web "
            + address(2)
            + "` would take it out.");

    if (keep) {
      out.printf(
          "%nThe cluster stays up until Ctrl-C. Try:%n  ./veer ctl --coordinators %s status%n"
              + "  ./veer ctl --coordinators %s service get web%n  ./veer ctl --coordinators %s table web%n",
          target, target, target);
      Thread.currentThread().join();
    }
    return failed;
  }

  /**
   * Co-located hosts only: how many of the packets to the service arrived at the host that owned
   * their flow, and were delivered there without encapsulation.
   */
  private void showLocalShare() {
    if (!coLocated) {
      return;
    }
    long local = 0;
    long sent = 0;
    for (TestBed.Director d : bed.directors()) {
      local +=
          d.dataplane().program().colocatedVerdicts().values().stream()
              .mapToLong(Long::longValue)
              .sum();
      sent +=
          d.dataplane()
              .program()
              .verdicts()
              .get(dev.veer.bpf.abi.VeerAbi.DirectorVerdict.DIR_ENCAP_GUE);
    }
    out.printf(
        Locale.ROOT,
        "   co-located: %,d packets delivered where they arrived (%.0f%%), %,d sent on to their"
            + " owner in GUE%n",
        local,
        100.0 * local / Math.max(1, local + sent),
        sent);
  }

  /** Proxy host {@code n}'s name ("proxy-n", or "host-n" when co-located). */
  private String name(int n) {
    return bed.proxies().get(n - 1).name();
  }

  /** One frame of the live view: redrawn in place on a terminal, appended otherwise. */
  private void show(int second, HttpClients traffic, String[] events) {
    StringBuilder frame = new StringBuilder();
    if (live) {
      frame.append("\033[H\033[2J");
    }
    frame.append(
        String.format(
            Locale.ROOT, "   t=%2ds  requests answered %,9d%n", second, traffic.answered()));
    frame.append(
        String.format(
            Locale.ROOT,
            "   %-10s %-10s %-9s %6s %10s %10s %14s%n",
            "proxy",
            "state",
            "health",
            "live",
            "http reqs",
            "flow hits",
            "2nd-chance fwd"));
    List<Backend> backends = service().getBackendsList();
    for (Proxy p : bed.proxies()) {
      Optional<Backend> b =
          backends.stream()
              .filter(x -> x.getAddress().equals(p.address4().getHostAddress()))
              .findFirst();
      EnumMap<ProxyVerdict, Long> v = p.dataplane().verdicts();
      frame.append(
          String.format(
              Locale.ROOT,
              "   %-10s %-10s %-9s %6s %10d %10d %14d%n",
              p.name(),
              b.map(x -> x.getState().name().toLowerCase(Locale.ROOT)).orElse("-"),
              b.map(x -> x.getHealth().name().toLowerCase(Locale.ROOT).replace("health_", ""))
                  .orElse("-"),
              b.map(x -> x.getLiveConnections() < 0 ? "-" : Long.toString(x.getLiveConnections()))
                  .orElse("-"),
              sites.get(p.id() - 1).requests(),
              v.get(ProxyVerdict.PRX_DELIVER_FLOW),
              v.get(ProxyVerdict.PRX_FORWARD)));
    }
    frame.append(
        String.format(
            Locale.ROOT,
            "   %-10s %-10s %10s %8s%n",
            "director",
            "in ECMP",
            "encapsulated",
            "version"));
    long current = coordinator.store().current().getVersion();
    for (Director d : bed.directors()) {
      EnumMap<DirectorVerdict, Long> v = d.dataplane().program().verdicts();
      long version = d.daemon().map(x -> x.appliedVersion()).orElse(0L);
      frame.append(
          String.format(
              Locale.ROOT,
              "   %-10s %-10s %10d %8s%n",
              d.name(),
              bed.routerNextHops4().contains(d.address4().getHostAddress()) ? "yes" : "no",
              v.get(DirectorVerdict.DIR_ENCAP_GUE),
              version + (version == current ? "" : " (to " + current + ")")));
    }
    for (String event : events) {
      if (!event.isEmpty()) {
        frame.append("   ").append(event).append('\n');
      }
    }
    out.print(frame);
    if (!live) {
      out.println();
    }
  }

  private void addBackend(int proxy, BackendState state) {
    admin.addBackend(
        AddBackendRequest.newBuilder()
            .setService("web")
            .setAddress(address(proxy))
            .setState(state)
            .build());
  }

  private String address(int proxy) {
    return bed.proxies().get(proxy - 1).address4().getHostAddress();
  }

  private dev.veer.proto.admin.v1.Service service() {
    return admin.getService(GetServiceRequest.newBuilder().setName("web").build());
  }

  private void awaitDirectors() throws InterruptedException {
    await(
        () ->
            bed.directors().stream()
                .allMatch(
                    d ->
                        d.daemon().orElseThrow().appliedVersion()
                            == coordinator.store().current().getVersion()));
  }

  private static void await(BooleanSupplier condition) throws InterruptedException {
    Await.until("the cluster to settle", condition, Duration.ofSeconds(30));
  }

  private static void deleteTree(Path dir) {
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (java.io.IOException e) {
      System.err.println("could not remove " + dir + ": " + e.getMessage());
    }
  }
}
