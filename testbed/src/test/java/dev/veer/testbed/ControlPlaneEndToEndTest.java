package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.coordinator.Coordinator;
import dev.veer.coordinator.cluster.EmbeddedZooKeeper;
import dev.veer.ctl.ExitCodes;
import dev.veer.ctl.VeerCtl;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.testbed.TestBed.Director;
import dev.veer.testbed.TestBed.Proxy;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane end to end: a coordinator on an embedded ZooKeeper, two director daemons
 * following it (XDP attached in the bed), and {@code veer ctl} doing what an operator does. Real
 * TCP connections go through the VIP and follow the tables the coordinator builds.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ControlPlaneEndToEndTest {
  static final InetSocketAddress VIP4 = new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);

  @TempDir static Path dataDir;

  static Coordinator coordinator;
  static TestBed bed;
  static String target;

  @BeforeAll
  static void setUp() throws Exception {
    coordinator = Coordinator.start(Coordinator.Config.local("c1", dataDir));
    target = "127.0.0.1:" + coordinator.port();
    bed = TestBed.builder("ctl").coordinators(List.of(target)).build();
  }

  @AfterAll
  static void tearDown() throws Exception {
    try {
      if (bed != null) {
        bed.close();
      }
    } finally {
      if (coordinator != null) {
        coordinator.close();
      }
    }
  }

  /** Runs {@code veer ctl} against the coordinator; the output, after asserting the exit code. */
  static String ctl(int expectedExit, String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    List<String> all = new ArrayList<>(List.of("--coordinator", target));
    all.addAll(List.of(args));
    int exit =
        VeerCtl.run(
            all.toArray(String[]::new), new PrintWriter(out, true), new PrintWriter(err, true));
    if (expectedExit >= 0) {
      assertThat(exit)
          .as("veer ctl %s: %s%s", String.join(" ", args), out, err)
          .isEqualTo(expectedExit);
    }
    return out + err.toString();
  }

  static void awaitDirectors() throws InterruptedException {
    long version = coordinator.store().current().getVersion();
    for (Director d : bed.directors()) {
      assertThat(d.daemon().orElseThrow().awaitVersion(version, Duration.ofSeconds(10)))
          .as("%s applied version %s", d.name(), version)
          .isTrue();
    }
  }

  static String address(Proxy p) {
    return p.address4().getHostAddress();
  }

  /** Service "web" on the bed's VIP with proxies 1-3 active, made once. */
  static void ensureWeb() throws InterruptedException {
    if (ctl(-1, "service", "get", "web").contains("NOT_FOUND")) {
      ctl(ExitCodes.OK, "service", "create", "web", "--vip", "203.0.113.10", "--port", "80");
      for (int p = 0; p < 3; p++) {
        ctl(
            ExitCodes.OK,
            "backend",
            "add",
            "web",
            address(bed.proxies().get(p)),
            "--state",
            "active");
      }
    }
    awaitDirectors();
    bed.awaitEcmp(TestBed.VIP4);
  }

  @Test
  @Order(1)
  void anOperatorBuildsAServiceWithTheCliAndRealPacketsFollowItsTables() throws Exception {
    ensureWeb();
    Traffic.BurstResult first = Traffic.burst(bed.client().handle(), VIP4, 300, 30);
    assertThat(first.failures()).isEmpty();
    assertThat(first.perServer().elementSet())
        .containsExactlyInAnyOrder("proxy-1", "proxy-2", "proxy-3");

    // The coordinator's flow lookup names the proxy a real connection from that port reaches.
    String lookup = ctl(ExitCodes.OK, "lookup", "web", TestBed.CLIENT4.getHostAddress(), "40123");
    Matcher primary = Pattern.compile("-> row \\d+: (\\S+)").matcher(lookup);
    assertThat(primary.find()).as(lookup).isTrue();
    String expected =
        "proxy-"
            + (bed.proxies().stream()
                .filter(p -> address(p).equals(primary.group(1)))
                .findFirst()
                .orElseThrow()
                .id());
    assertThat(Traffic.from(bed.client().handle(), 40123, VIP4)).isEqualTo(expected);

    long forwardsBefore =
        bed.proxies().stream()
            .mapToLong(p -> p.dataplane().verdicts().get(ProxyVerdict.PRX_FORWARD))
            .sum();
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, 100, Duration.ofMillis(50), Duration.ofSeconds(60))) {
      Thread.sleep(300);
      // A fourth proxy joins through the CLI: new connections reach it, old ones survive.
      ctl(ExitCodes.OK, "backend", "add", "web", address(bed.proxies().get(3)));
      awaitDirectors();
      Thread.sleep(500);
      Traffic.BurstResult after = Traffic.burst(bed.client().handle(), VIP4, 300, 30);
      assertThat(after.failures()).isEmpty();
      assertThat(after.perServer().count("proxy-4")).isPositive();
      long added = traffic.mark();
      Thread.sleep(500);
      assertThat(traffic.stop().brokenSince(added)).isEmpty();
    }
    long forwards =
        bed.proxies().stream()
            .mapToLong(p -> p.dataplane().verdicts().get(ProxyVerdict.PRX_FORWARD))
            .sum();
    assertThat(forwards).as("second-chance forwards after the add").isGreaterThan(forwardsBefore);

    // Health writes from the directors' probes may add versions; the directors follow.
    Await.until(
        "both directors at the state's version",
        () -> ctl(ExitCodes.OK, "status").contains("2 of 2 directors run version"),
        Duration.ofSeconds(5));
    assertThat(ctl(ExitCodes.OK, "--json", "service", "get", "web"))
        .contains("\"address\": \"192.0.2.146\"");
  }

  @Test
  @Order(2)
  void aRestartedDirectorTakesOverItsPinnedProgramAndMapsWithoutBreakingAConnection()
      throws Exception {
    ensureWeb();
    Director before = bed.directors().get(0);
    int programBefore = XdpAttachment.attachedProgramId(before.ns().handle(), "eth0").orElseThrow();
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, 100, Duration.ofMillis(50), Duration.ofSeconds(60))) {
      Thread.sleep(300);
      Director after = bed.restartDirector(1);
      // The new daemon knows the tables it took over before any coordinator speaks to it.
      assertThat(after.dataplane().tables())
          .containsKey(dev.veer.bpf.dataplane.ServiceKey.tcp(TestBed.VIP4, 80));
      assertThat(XdpAttachment.attachedProgramId(after.ns().handle(), "eth0"))
          .get()
          .isNotEqualTo(programBefore);
      assertThat(after.ns().pinDirectory().resolve("hop_tables")).exists();
      awaitDirectors();
      // Changes reach it as before.
      ctl(ExitCodes.OK, "backend", "drain", "web", address(bed.proxies().get(2)));
      awaitDirectors();
      ctl(ExitCodes.OK, "backend", "set-state", "web", address(bed.proxies().get(2)), "active");
      awaitDirectors();
      long changed = traffic.mark();
      Thread.sleep(500);
      assertThat(traffic.stop().brokenSince(changed)).isEmpty();
    }
    Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP4, 200, 20);
    assertThat(burst.failures()).isEmpty();
  }

  @Test
  @Order(4)
  void directorsKeepForwardingWithTheirLastTablesWhenNoCoordinatorIsLeft() throws Exception {
    ensureWeb();
    int port = coordinator.port();
    coordinator.close();
    try {
      // Their streams end; the tables in their maps stay, and so does forwarding.
      Thread.sleep(500);
      Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP4, 200, 20);
      assertThat(burst.failures()).isEmpty();
      assertThat(burst.perServer().elementSet()).hasSizeGreaterThanOrEqualTo(3);
    } finally {
      // The coordinator comes back where the directors look for it, with its state, for the tests
      // after.
      coordinator =
          Coordinator.start(
              Coordinator.Config.local("c1", dataDir)
                  .withListen(new java.net.InetSocketAddress("127.0.0.1", port)));
    }
    awaitDirectors();
  }

  @Test
  @Order(5)
  void aClusterWrittenInTheOneZnodeLayoutIsUpgradedInPlaceUnderTraffic() throws Exception {
    ensureWeb();
    ClusterState written = coordinator.store().read();
    int port = coordinator.port();
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, 100, Duration.ofMillis(100), Duration.ofSeconds(60))) {
      coordinator.close();
      // The cluster as schema-1 coordinators leave it: the whole state in one znode, "state".
      String root = Coordinator.DEFAULT_ROOT;
      try (EmbeddedZooKeeper zk =
              EmbeddedZooKeeper.start(
                  dataDir.resolve("zookeeper"), new InetSocketAddress("127.0.0.1", 0));
          CuratorFramework client =
              CuratorFrameworkFactory.newClient(zk.connectString(), new RetryOneTime(100))) {
        client.start();
        for (String node : List.of("/cluster", "/services", "/changes", "/state")) {
          if (client.checkExists().forPath(root + node) != null) {
            client.delete().deletingChildrenIfNeeded().forPath(root + node);
          }
        }
        client
            .create()
            .forPath(
                root + "/state", written.toBuilder().setSchemaVersion(1).build().toByteArray());
      }

      coordinator =
          Coordinator.start(
              Coordinator.Config.local("c1", dataDir)
                  .withListen(new InetSocketAddress("127.0.0.1", port)));
      ClusterState upgraded = coordinator.store().current();
      assertThat(upgraded.getVersion()).isEqualTo(written.getVersion() + 1);
      assertThat(upgraded.getServicesList()).isEqualTo(written.getServicesList());
      awaitDirectors();
      // Changes after the upgrade reach the data plane as before.
      ctl(ExitCodes.OK, "backend", "drain", "web", address(bed.proxies().get(2)));
      awaitDirectors();
      ctl(ExitCodes.OK, "backend", "set-state", "web", address(bed.proxies().get(2)), "active");
      awaitDirectors();
      Thread.sleep(500);
      ConnectionLoops.Result result = traffic.stop();
      assertThat(result.failed()).as("connections broken by the upgrade").isEmpty();
      assertThat(result.answered()).isGreaterThan(100);
    }
  }

  @Test
  @Order(3)
  void theCliExitCodesTellOutcomesApart() {
    ctl(ExitCodes.NOT_FOUND, "service", "get", "no-such-service");
    ctl(ExitCodes.INVALID, "service", "create", "bad", "--vip", "not-an-ip", "--port", "80");
    ctl(ExitCodes.USAGE, "service", "create", "bad");
    ctl(ExitCodes.USAGE, "backend", "set-state", "web", "192.0.2.1", "sideways");
    ctl(ExitCodes.OK, "service", "create", "twice", "--vip", "203.0.113.99", "--port", "81");
    ctl(ExitCodes.CONFLICT, "service", "create", "twice", "--vip", "203.0.113.98", "--port", "81");
    StringWriter out = new StringWriter();
    int exit =
        VeerCtl.run(
            new String[] {"--coordinator", "127.0.0.1:1", "--timeout", "2", "status"},
            new PrintWriter(out, true),
            new PrintWriter(out, true));
    assertThat(exit).as(out.toString()).isEqualTo(ExitCodes.UNAVAILABLE);
  }
}
