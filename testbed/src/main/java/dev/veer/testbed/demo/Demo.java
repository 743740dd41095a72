package dev.veer.testbed.demo;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.coordinator.table.BackendState;
import dev.veer.testbed.TestBed;
import dev.veer.testbed.TestBed.Director;
import dev.veer.testbed.TestBed.Proxy;
import dev.veer.testbed.Tables;
import dev.veer.testbed.Traffic;
import dev.veer.testbed.net.Namespace;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The main job: brings up a test bed, sends real TCP traffic through Veer,
 * changes the table under running connections and reports what happened.
 *
 * <pre>./veer demo [--connections N] [--hold SECONDS]</pre>
 */
public final class Demo {
  private static final ServiceKey WEB = ServiceKey.tcp(TestBed.VIP4, TestBed.SERVICE_PORT);
  private static final InetSocketAddress VIP = new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);

  private final PrintStream out = System.out;
  private final TestBed bed;

  private Demo(TestBed bed) {
    this.bed = bed;
  }

  public static void main(String[] args) throws Exception {
    int connections = 1000;
    int holdSeconds = 0;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--connections" -> connections = Integer.parseInt(args[++i]);
        case "--hold" -> holdSeconds = Integer.parseInt(args[++i]);
        default -> {
          System.err.println("usage: ./veer demo [--connections N] [--hold SECONDS]");
          System.exit(2);
        }
      }
    }
    BpfSystem.requireRoot();
    Namespace.deleteLeftovers();
    System.out.println("Bringing up the test bed: client, ECMP router, 2 directors, 4 proxy hosts ...");
    try (TestBed bed = TestBed.create("demo", 2, 4)) {
      Thread hook = new Thread(bed::close);
      Runtime.getRuntime().addShutdownHook(hook);
      new Demo(bed).run(connections, holdSeconds);
      Runtime.getRuntime().removeShutdownHook(hook);
    }
    System.out.println("Test bed removed.");
  }

  private HopTable table(Map<Integer, BackendState> states) {
    Map<InetAddress, BackendState> backends = new LinkedHashMap<>();
    states.forEach((id, state) -> backends.put(bed.proxies().get(id - 1).address4(), state));
    return Tables.build(backends);
  }

  private void run(int connections, int holdSeconds) throws Exception {
    bed.installTables(WEB, table(Map.of(1, BackendState.ACTIVE, 2, BackendState.ACTIVE, 3, BackendState.ACTIVE)));
    out.printf("Service %s -> proxies 1-3 (65,536-row rendezvous table, 2 hops per row)%n%n", WEB);

    out.printf("1. %d short TCP connections from the client to %s%n", connections, WEB);
    Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP, connections, 50);
    for (Proxy p : bed.proxies()) {
      out.printf("   %-8s %5d connections%n", p.name(), burst.perServer().count(p.name()));
    }
    out.printf("   failed   %5d%n", burst.failures().size());
    burst.failures().stream().limit(5).forEach(f -> out.println("     " + f));
    printDirectors();
    if (!burst.failures().isEmpty()) {
      out.println("Connections failed: see the counters above; skipping the table changes.");
      printProxies();
      hold(holdSeconds);
      return;
    }

    out.printf("%n2. 200 long-lived connections, one request every 50 ms each; meanwhile:%n");
    try (Traffic.LongLived traffic = Traffic.LongLived.start(bed.client().handle(), VIP, 200,
        Duration.ofMillis(50), Duration.ofSeconds(60))) {
      Thread.sleep(500);
      out.println("   - proxy-4 is added (filling) on both directors");
      bed.installTables(WEB, table(Map.of(1, BackendState.ACTIVE, 2, BackendState.ACTIVE, 3, BackendState.ACTIVE,
          4, BackendState.FILLING)));
      Thread.sleep(1500);
      out.println("   - proxy-2 drains");
      bed.installTables(WEB, table(Map.of(1, BackendState.ACTIVE, 2, BackendState.DRAINING, 3, BackendState.ACTIVE,
          4, BackendState.ACTIVE)));
      Thread.sleep(1500);
      out.println("   - director 1 leaves the router's ECMP set");
      bed.setEcmp(List.of(bed.directors().get(1)));
      Thread.sleep(1500);
      out.printf("   requests answered: %d, connections broken: %d%n", traffic.answered(), traffic.failures().size());
      traffic.failures().stream().limit(5).forEach(f -> out.println("     " + f));
    }
    printProxies();
    hold(holdSeconds);
  }

  private void hold(int seconds) throws InterruptedException {
    if (seconds > 0) {
      out.printf("%nHolding the test bed for %d s (namespaces %s*) ...%n", seconds,
          bed.router().name().replace("router", ""));
      Thread.sleep(seconds * 1000L);
    }
  }

  private void printDirectors() {
    out.println("   packets per director:");
    for (Director d : bed.directors()) {
      EnumMap<DirectorVerdict, Long> v = d.dataplane().program().verdicts();
      out.printf("     director-%d  encapsulated %6d   passed %4d   dropped %4d%n", d.id(),
          v.get(DirectorVerdict.DIR_ENCAP_GUE), v.get(DirectorVerdict.DIR_PASS_NOT_SERVICE)
              + v.get(DirectorVerdict.DIR_PASS_NOT_IP), dropped(v));
    }
  }

  private void printProxies() {
    out.println("   per proxy:");
    for (Proxy p : bed.proxies()) {
      EnumMap<ProxyVerdict, Long> v = p.dataplane().verdicts();
      out.printf("     %-8s SYN %5d  flow table %6d  socket lookup %5d  second-chance forwards %5d  last-hop %3d"
          + "  open %3d%n", p.name(), v.get(ProxyVerdict.PRX_DELIVER_SYN), v.get(ProxyVerdict.PRX_DELIVER_FLOW),
          v.get(ProxyVerdict.PRX_DELIVER_SOCKET),
          v.get(ProxyVerdict.PRX_FORWARD), v.get(ProxyVerdict.PRX_DELIVER_LAST_HOP), p.server().openConnections());
    }
  }

  private static long dropped(EnumMap<DirectorVerdict, Long> v) {
    return v.entrySet().stream().filter(e -> e.getKey().name().contains("DROP")).mapToLong(Map.Entry::getValue)
        .sum();
  }
}
