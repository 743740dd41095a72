package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.coordinator.Coordinator;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.GetTableRequest;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceTable;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Health;
import dev.veer.testbed.TestBed.Director;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Proxy agents in the test bed: they take their allow-lists from the coordinator (without which no
 * GUE would be accepted), check their service through the VIP and report health and live
 * connections; the leader turns a stopped service into an unhealthy backend and the tables move its
 * rows away, and back when it returns.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ProxyAgentEndToEndTest {
  private static final Logger log = LoggerFactory.getLogger(ProxyAgentEndToEndTest.class);
  static final InetSocketAddress VIP4 = new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);
  static final int INTERVAL_MILLIS = 200;

  @TempDir static Path dataDir;

  static Coordinator coordinator;
  static TestBed bed;
  static ManagedChannel channel;
  static AdminServiceGrpc.AdminServiceBlockingStub admin;

  @BeforeAll
  static void setUp() throws Exception {
    coordinator =
        Coordinator.start(
            Coordinator.Config.local("c1", dataDir)
                .withCluster(
                    Coordinator.ClusterDefaults.DEFAULT.withChecks(INTERVAL_MILLIS, 100, 2)));
    String target = "127.0.0.1:" + coordinator.port();
    channel = Transport.channel(target, Optional.empty());
    admin = AdminServiceGrpc.newBlockingStub(channel);
    bed = TestBed.builder("agent").coordinators(java.util.List.of(target)).agents().build();
    WebService.create(admin, bed, 3);
  }

  @AfterAll
  static void tearDown() throws Exception {
    try {
      if (bed != null) {
        bed.close();
      }
    } finally {
      if (channel != null) {
        Transport.close(channel);
      }
      if (coordinator != null) {
        coordinator.close();
      }
    }
  }

  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    Await.until(what, condition, Duration.ofSeconds(15));
  }

  static void awaitDirectors() throws InterruptedException {
    long version = coordinator.store().current().getVersion();
    for (Director d : bed.directors()) {
      assertThat(d.daemon().orElseThrow().awaitVersion(version, Duration.ofSeconds(10))).isTrue();
    }
  }

  static Health healthOf(int proxy) {
    String address = bed.proxies().get(proxy - 1).address4().getHostAddress();
    return admin
        .getService(GetServiceRequest.newBuilder().setName("web").build())
        .getBackendsList()
        .stream()
        .filter(b -> b.getAddress().equals(address))
        .map(Backend::getHealth)
        .findFirst()
        .orElseThrow();
  }

  static Backend backend(int proxy) {
    String address = bed.proxies().get(proxy - 1).address4().getHostAddress();
    return admin
        .getService(GetServiceRequest.newBuilder().setName("web").build())
        .getBackendsList()
        .stream()
        .filter(b -> b.getAddress().equals(address))
        .findFirst()
        .orElseThrow();
  }

  static io.grpc.Status.Code removeCode(int proxy, boolean force) {
    try {
      admin.removeBackend(
          RemoveBackendRequest.newBuilder()
              .setService("web")
              .setAddress(bed.proxies().get(proxy - 1).address4().getHostAddress())
              .setForce(force)
              .build());
      return io.grpc.Status.Code.OK;
    } catch (io.grpc.StatusRuntimeException e) {
      log.info("remove refused: {}", e.getStatus().getDescription());
      return e.getStatus().getCode();
    }
  }

  /**
   * The agents' flow evidence from real connections: every connection counted, each in a row whose
   * primary is its proxy (the row the directors chose); a dry run of removing a proxy counts
   * exactly the connections the client has on it, and the removal is refused without force.
   */
  @Test
  @Order(0)
  void agentsReportTheRowsOfTheirConnectionsAndChangesAreJudgedByThem() throws Exception {
    await(
        "all healthy",
        () -> IntStream.rangeClosed(1, 3).allMatch(p -> healthOf(p) == Health.HEALTHY));
    awaitDirectors();
    int connections = 60;
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(),
            VIP4,
            connections,
            Duration.ofMillis(100),
            Duration.ofSeconds(60))) {
      int onProxy1 = traffic.perServer().count("proxy-1");
      assertThat(onProxy1).isPositive();
      await("the agents' flow reports", () -> reportedFlows() == connections);
      ServiceTable table =
          admin.getTable(
              GetTableRequest.newBuilder().setService("web").setMaxRows(1 << 16).build());
      int rows = 0;
      for (AgentStatus agent :
          admin.getStatus(GetStatusRequest.getDefaultInstance()).getAgentsList()) {
        for (AgentServiceStatus service : agent.getServicesList()) {
          for (int row : FlowRowsCodec.rows(service.getRows())) {
            assertThat(agent.getAddressesList())
                .as("agent %s reports a flow in row %s", agent.getId(), row)
                .contains(table.getRows(row).getHops(0));
            rows++;
          }
        }
      }
      assertThat(rows).isPositive();

      Service dry =
          admin.removeBackend(
              RemoveBackendRequest.newBuilder()
                  .setService("web")
                  .setAddress(bed.proxies().get(0).address4().getHostAddress())
                  .setDryRun(true)
                  .setForce(true)
                  .build());
      assertThat(dry.getImpact().getFlowsStranded()).isEqualTo(onProxy1);
      assertThat(dry.getImpact().getDryRun()).isTrue();
      assertThat(backend(1).getState()).isEqualTo(BackendState.ACTIVE);
      assertThat(removeCode(1, false)).isEqualTo(io.grpc.Status.Code.FAILED_PRECONDITION);

      long judged = traffic.mark();
      Thread.sleep(300);
      assertThat(traffic.stop().brokenSince(judged)).isEmpty();
    }
  }

  /** The connections to service web the agents report, in all. */
  static long reportedFlows() {
    return admin.getStatus(GetStatusRequest.getDefaultInstance()).getAgentsList().stream()
        .flatMap(a -> a.getServicesList().stream())
        .filter(s -> s.getService().equals("web"))
        .mapToLong(AgentServiceStatus::getLiveConnections)
        .sum();
  }

  @Test
  @Order(2)
  void aDrainEndsWhenItsLastConnectionClosesOrAtItsDeadline() throws Exception {
    await("all healthy", () -> healthOf(1) == Health.HEALTHY && healthOf(3) == Health.HEALTHY);
    awaitDirectors();
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, 60, Duration.ofMillis(100), Duration.ofSeconds(30))) {
      await("proxy-3 reports connections", () -> backend(3).getLiveConnections() > 0);
      admin.setBackendState(
          SetBackendStateRequest.newBuilder()
              .setService("web")
              .setAddress(bed.proxies().get(2).address4().getHostAddress())
              .setState(BackendState.DRAINING)
              .build());
      awaitDirectors();
      Thread.sleep(3 * INTERVAL_MILLIS);
      // Still carrying connections: removing needs force, and the drain has not ended.
      assertThat(backend(3).getState()).isEqualTo(BackendState.DRAINING);
      assertThat(removeCode(3, false)).isEqualTo(io.grpc.Status.Code.FAILED_PRECONDITION);
      long drained = traffic.mark();
      Thread.sleep(3 * INTERVAL_MILLIS);
      assertThat(traffic.stop().brokenSince(drained)).isEmpty();
    }
    // The connections close: the drain ends by itself and the backend goes quietly.
    await("proxy-3's drain ended", () -> backend(3).getState() == BackendState.INACTIVE);
    assertThat(removeCode(3, false)).isEqualTo(io.grpc.Status.Code.OK);

    // A drain with a deadline ends then, whatever is left.
    awaitDirectors();
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, 60, Duration.ofMillis(100), Duration.ofSeconds(30))) {
      await("proxy-1 reports connections", () -> backend(1).getLiveConnections() > 0);
      admin.setBackendState(
          SetBackendStateRequest.newBuilder()
              .setService("web")
              .setAddress(bed.proxies().get(0).address4().getHostAddress())
              .setState(BackendState.DRAINING)
              .setDrainTimeoutSeconds(1)
              .build());
      assertThat(backend(1).getDrainDeadlineMillis()).isPositive();
      await("proxy-1's drain deadline", () -> backend(1).getState() == BackendState.INACTIVE);
      assertThat(backend(1).getLiveConnections()).isPositive();
      assertThat(removeCode(1, false)).isEqualTo(io.grpc.Status.Code.FAILED_PRECONDITION);
    }
  }

  /** GET /metrics of a server started for {@code metrics}, as Prometheus would scrape it. */
  static String scrape(java.util.function.Supplier<java.util.List<dev.veer.metrics.Metric>> metrics)
      throws Exception {
    try (var server =
            dev.veer.metrics.MetricsServer.start(new InetSocketAddress("127.0.0.1", 0), metrics);
        var http = java.net.http.HttpClient.newHttpClient()) {
      var response =
          http.send(
              java.net.http.HttpRequest.newBuilder(
                      java.net.URI.create("http://127.0.0.1:" + server.port() + "/metrics"))
                  .build(),
              java.net.http.HttpResponse.BodyHandlers.ofString());
      assertThat(response.statusCode()).isEqualTo(200);
      assertThat(response.headers().firstValue("Content-Type"))
          .hasValueSatisfying(t -> assertThat(t).startsWith("text/plain; version=0.0.4"));
      return response.body();
    }
  }

  /** The value of one sample line ({@code name{labels}} or {@code name}), or -1 if absent. */
  static double sample(String exposition, String series) {
    return exposition
        .lines()
        .filter(l -> l.startsWith(series + " "))
        .mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1)))
        .findFirst()
        .orElse(-1);
  }

  @Test
  @Order(4)
  void everyDaemonServesItsCountersToPrometheus() throws Exception {
    Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP4, 100, 20);
    assertThat(burst.failures()).isEmpty();
    long versionBefore = coordinator.store().current().getVersion();
    String coordinatorMetrics =
        scrape(
            () -> {
              try {
                return coordinator.metrics();
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
            });
    assertThat(sample(coordinatorMetrics, "veer_coordinator_agents")).isEqualTo(4);
    assertThat(sample(coordinatorMetrics, "veer_coordinator_directors")).isEqualTo(2);
    assertThat(sample(coordinatorMetrics, "veer_coordinator_leader")).isEqualTo(1);
    // The leader may write (flow evidence, health) while the metrics are taken.
    assertThat(sample(coordinatorMetrics, "veer_coordinator_state_version"))
        .isBetween((double) versionBefore, (double) coordinator.store().current().getVersion());
    assertThat(coordinatorMetrics).contains("# TYPE veer_coordinator_backends gauge");

    double encapsulated = 0;
    double[] toBackend = new double[3];
    for (Director d : bed.directors()) {
      String metrics = scrape(d.daemon().orElseThrow()::metrics);
      encapsulated += sample(metrics, "veer_director_service_packets_total{service=\"web\"}");
      for (int p = 0; p < 3; p++) {
        toBackend[p] +=
            Math.max(
                0,
                sample(
                    metrics,
                    "veer_director_backend_packets_total{backend=\""
                        + bed.proxies().get(p).address4().getHostAddress()
                        + "\"}"));
      }
      assertThat(sample(metrics, "veer_director_packets_total{verdict=\"dir_encap_gue\"}"))
          .isPositive();
      assertThat(sample(metrics, "veer_director_coordinator_connected")).isEqualTo(1);
    }
    assertThat(encapsulated).as("packets the directors sent for web").isGreaterThanOrEqualTo(300);
    // Each active backend was some packets' primary; a backend's count starts when it (re)joins.
    assertThat(toBackend).doesNotContain(0.0);
    assertThat(toBackend[0] + toBackend[1] + toBackend[2]).isLessThanOrEqualTo(encapsulated);
    String proxy1 = scrape(bed.proxies().get(0).agent().orElseThrow()::metrics);
    assertThat(sample(proxy1, "veer_proxy_packets_total{verdict=\"prx_deliver_syn\"}"))
        .isPositive();
    assertThat(sample(proxy1, "veer_proxy_service_healthy{service=\"web\"}")).isEqualTo(1);
    assertThat(proxy1).contains("# TYPE veer_proxy_packets_total counter");
    // Each director keeps one Sync stream open to the coordinator.
    assertThat(
            sample(
                coordinatorMetrics,
                "veer_coordinator_grpc_calls_open{method=\"veer.director.v1.DirectorSync/Sync\"}"))
        .isEqualTo(2);
    assertThat(
            sample(
                coordinatorMetrics,
                "veer_coordinator_grpc_calls_handled_total{code=\"OK\",method=\""
                    + "veer.admin.v1.AdminService/GetService\"}"))
        .isPositive();

    // The Grafana dashboard asks only for metrics that exist.
    Set<String> exported = new HashSet<>();
    for (String exposition :
        List.of(
            coordinatorMetrics,
            proxy1,
            scrape(bed.directors().get(0).daemon().orElseThrow()::metrics))) {
      exposition
          .lines()
          .filter(l -> l.startsWith("# TYPE "))
          .forEach(l -> exported.add(l.split(" ")[2]));
    }
    String dashboard = Files.readString(Path.of("..", "docs", "grafana", "veer.json"));
    Matcher queried = Pattern.compile("veer_[a-z0-9_]+").matcher(dashboard);
    Set<String> asked = new HashSet<>();
    while (queried.find()) {
      asked.add(queried.group());
    }
    assertThat(asked).hasSizeGreaterThan(10);
    assertThat(exported).containsAll(asked);
  }

  @Test
  @Order(3)
  void directorsProbingThroughTheTunnelCatchAPathTheAgentCannotSee() throws Exception {
    admin.setBackendState(
        SetBackendStateRequest.newBuilder()
            .setService("web")
            .setAddress(bed.proxies().get(0).address4().getHostAddress())
            .setState(BackendState.ACTIVE)
            .build());
    String third = bed.proxies().get(2).address4().getHostAddress();
    if (admin
        .getService(GetServiceRequest.newBuilder().setName("web").build())
        .getBackendsList()
        .stream()
        .noneMatch(b -> b.getAddress().equals(third))) {
      admin.addBackend(
          AddBackendRequest.newBuilder()
              .setService("web")
              .setAddress(third)
              .setState(BackendState.ACTIVE)
              .build());
    }
    await(
        "proxies 1-3 healthy",
        () ->
            healthOf(1) == Health.HEALTHY
                && healthOf(2) == Health.HEALTHY
                && healthOf(3) == Health.HEALTHY);
    awaitDirectors();
    // Proxy 2's answers are lost on the way: its service is fine on the host, but no client gets
    // through to it.
    bed.cutOffProxy(2, true);
    try {
      assertProbesCatchIt();
    } finally {
      bed.cutOffProxy(2, false);
    }
    await("proxy-2 healthy again", () -> healthOf(2) == Health.HEALTHY);
  }

  private void assertProbesCatchIt() throws Exception {
    // Read in one status: once proxy-2 is out of the rows' primaries the directors stop probing
    // it, and their next report no longer names it.
    String proxy2 = bed.proxies().get(1).address4().getHostAddress();
    await(
        "proxy-2 unhealthy by the directors' probes",
        () -> {
          var s = admin.getStatus(GetStatusRequest.getDefaultInstance());
          return healthOf(2) == Health.UNHEALTHY
              && s.getDirectorsList().stream()
                  .flatMap(d -> d.getProbesList().stream())
                  .anyMatch(
                      p -> p.getBackend().equals(proxy2) && p.getHealth() == Health.UNHEALTHY);
        });
    awaitDirectors();
    var status = admin.getStatus(GetStatusRequest.getDefaultInstance());
    assertThat(
            status.getAgentsList().stream()
                .filter(a -> a.getId().equals("proxy-2"))
                .findFirst()
                .orElseThrow()
                .getServices(0)
                .getHealth())
        .as("the agent's own view")
        .isEqualTo(Health.HEALTHY);
    Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP4, 300, 30);
    assertThat(burst.failures()).isEmpty();
    assertThat(burst.perServer().count("proxy-2")).isZero();
  }

  @Test
  @Order(5)
  void aDirectorWhoseDaemonIsGoneStaysAllowedWhileItsProgramForwards() throws Exception {
    Director second = bed.directors().get(1);
    second.daemon().orElseThrow().handOver(); // as a crash leaves it: the program forwards on
    await(
        "the coordinator to see director-2 go",
        () -> admin.getStatus(GetStatusRequest.getDefaultInstance()).getDirectorsCount() == 1);
    // Let an allow-list update reach the agents, then check that it kept director-2.
    long pushed = System.nanoTime();
    while (System.nanoTime() - pushed < Duration.ofMillis(500).toNanos()) {
      for (TestBed.Proxy p : bed.proxies()) {
        assertThat(p.dataplane().program().allowedPeers())
            .as(p.name() + "'s allow-list")
            .contains(second.address4(), second.address6());
      }
      Thread.sleep(50);
    }
    Traffic.BurstResult through = Traffic.burst(bed.client().handle(), VIP4, 200, 20);
    assertThat(through.failures()).as("connections, half of them through director-2").isEmpty();
    bed.takeOverDirector(2);
    await(
        "director-2 back",
        () -> admin.getStatus(GetStatusRequest.getDefaultInstance()).getDirectorsCount() == 2);
  }

  @Test
  @Order(1)
  void agentsKeepAllowListsAndAStoppedServiceLeavesTheTablesUntilItReturns() throws Exception {
    // Allow-lists come from the coordinator: both directors (both families) on every proxy.
    for (TestBed.Proxy p : bed.proxies()) {
      await(
          p.name() + "'s allow-list",
          () ->
              bed.directors().stream()
                  .allMatch(
                      d ->
                          p.dataplane()
                              .program()
                              .allowedPeers()
                              .containsAll(java.util.List.of(d.address4(), d.address6()))));
    }
    await(
        "proxies 1-3 healthy",
        () ->
            healthOf(1) == Health.HEALTHY
                && healthOf(2) == Health.HEALTHY
                && healthOf(3) == Health.HEALTHY);
    awaitDirectors();
    Traffic.BurstResult first = Traffic.burst(bed.client().handle(), VIP4, 300, 30);
    assertThat(first.failures()).isEmpty();
    assertThat(first.perServer().elementSet())
        .containsExactlyInAnyOrder("proxy-1", "proxy-2", "proxy-3");

    // Live connections reach the agents' reports.
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, 60, Duration.ofMillis(100), Duration.ofSeconds(30))) {
      await(
          "live connections reported",
          () ->
              admin.getStatus(GetStatusRequest.getDefaultInstance()).getAgentsList().stream()
                      .flatMap(a -> a.getServicesList().stream())
                      .mapToLong(AgentServiceStatus::getLiveConnections)
                      .sum()
                  >= 60);
      assertThat(traffic.stop().failed()).isEmpty();
    }

    // Proxy 2's service stops: after two failed checks the leader marks it unhealthy.
    long stopped = System.nanoTime();
    bed.proxies().get(1).server().close();
    await("proxy-2 unhealthy", () -> healthOf(2) == Health.UNHEALTHY);
    awaitDirectors();
    log.info(
        "proxy-2 out of the primaries {} ms after its service stopped (check interval {} ms)",
        (System.nanoTime() - stopped) / 1_000_000,
        INTERVAL_MILLIS);
    await(
        "proxy-2's agent to say why",
        () ->
            admin.getStatus(GetStatusRequest.getDefaultInstance()).getAgentsList().stream()
                .filter(a -> a.getId().equals("proxy-2"))
                .findFirst()
                .orElseThrow()
                .getServices(0)
                .getDetail()
                .contains("nothing accepts connections on 203.0.113.10:80"));
    Traffic.BurstResult without = Traffic.burst(bed.client().handle(), VIP4, 300, 30);
    assertThat(without.failures()).isEmpty();
    assertThat(without.perServer().count("proxy-2")).isZero();

    // It comes back.
    bed.restartServer(2);
    await("proxy-2 healthy again", () -> healthOf(2) == Health.HEALTHY);
    awaitDirectors();
    Traffic.BurstResult again = Traffic.burst(bed.client().handle(), VIP4, 300, 30);
    assertThat(again.failures()).isEmpty();
    assertThat(again.perServer().count("proxy-2")).isPositive();
  }
}
