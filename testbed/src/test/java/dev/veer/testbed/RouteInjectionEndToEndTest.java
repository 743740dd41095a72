package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.KeptAttachment;
import dev.veer.coordinator.Coordinator;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.UpdateServiceRequest;
import dev.veer.testbed.TestBed.Director;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
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
 * Route health injection through real BGP speakers: the router runs BIRD and peers with a BIRD on
 * each director; the director daemons put the VIPs they can forward into their announcement table,
 * and the router's ECMP route to the VIP is what it learnt. A service below its min-healthy is
 * withdrawn by every director and announced again when it recovers; a killed speaker takes its
 * director out of the router's route (BFD); a director taken out for good withdraws before it
 * detaches, and no connection breaks.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RouteInjectionEndToEndTest {
  private static final Logger log = LoggerFactory.getLogger(RouteInjectionEndToEndTest.class);
  static final InetSocketAddress VIP4 = new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);

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
                .withCluster(Coordinator.ClusterDefaults.DEFAULT.withChecks(200, 100, 2)));
    String target = "127.0.0.1:" + coordinator.port();
    channel = Transport.channel(target, Optional.empty());
    admin = AdminServiceGrpc.newBlockingStub(channel);
    bed =
        TestBed.builder("bgp")
            .directors(2)
            .proxies(3)
            .coordinators(List.of(target))
            .agents()
            .build();
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

  /** The next hops of the router's route to the VIP, as the kernel has it. */
  static List<String> routerNextHops() {
    return bed.routerNextHops4();
  }

  static List<String> directorAddresses(List<Director> directors) {
    return directors.stream().map(d -> d.address4().getHostAddress()).sorted().toList();
  }

  static void setMinHealthy(int n) {
    ServiceSpec spec =
        admin.getService(GetServiceRequest.newBuilder().setName("web").build()).getSpec();
    admin.updateService(
        UpdateServiceRequest.newBuilder().setSpec(spec.toBuilder().setMinHealthy(n)).build());
  }

  @Test
  @Order(1)
  void theRoutersEcmpRouteIsWhatTheDirectorsAnnounce() throws Exception {
    Await.until(
        "the router learns the VIP from both directors",
        () ->
            routerNextHops().stream().sorted().toList().equals(directorAddresses(bed.directors())),
        Duration.ofSeconds(30));
    log.info("router: {}", bed.routerSpeaker().show("show", "protocols"));
    Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP4, 300, 30);
    assertThat(burst.failures()).isEmpty();
    assertThat(burst.perServer().elementSet())
        .containsExactlyInAnyOrder("proxy-1", "proxy-2", "proxy-3");
    for (Director d : bed.directors()) {
      assertThat(d.daemon().orElseThrow().announced()).containsExactly(TestBed.VIP4);
    }
  }

  @Test
  @Order(2)
  void aServiceBelowItsMinHealthyIsWithdrawnAndComesBack() throws Exception {
    setMinHealthy(4); // three backends: never enough
    Await.until(
        "every director withdraws the VIP",
        () -> routerNextHops().isEmpty(),
        Duration.ofSeconds(10));
    for (Director d : bed.directors()) {
      assertThat(d.daemon().orElseThrow().announced()).isEmpty();
    }
    setMinHealthy(3);
    Await.until(
        "the VIP announced again",
        () -> routerNextHops().size() == bed.directors().size(),
        Duration.ofSeconds(10));
    assertThat(Traffic.burst(bed.client().handle(), VIP4, 100, 20).failures()).isEmpty();
    // Back to the default: the tests after take a backend out for a moment.
    setMinHealthy(1);
  }

  /** A director's program lost by its interface (another tool, a driver reset) comes back. */
  @Test
  @Order(3)
  void aDetachedProgramIsWithdrawnAndAttachedAgainOnItsOwn() throws Exception {
    Director d = bed.directors().get(0);
    KeptAttachment kept = d.dataplane().attachment().orElseThrow();
    long before = kept.reattachments();
    d.ns().exec("ip", "link", "set", "dev", "eth0", "xdp", "off");
    Await.until(
        "the program attached again", () -> kept.reattachments() > before, Duration.ofSeconds(10));
    Await.until(
        "the VIP announced by both again",
        () -> routerNextHops().size() == 2,
        Duration.ofSeconds(10));
    assertThat(Traffic.burst(bed.client().handle(), VIP4, 100, 20).failures()).isEmpty();
    assertThat(d.daemon().orElseThrow().metrics())
        .anySatisfy(m -> assertThat(m.name()).isEqualTo("veer_director_reattachments_total"));

    // The link goes down: withdrawn while down; up again: announced, still attached.
    bed.setDirectorLink(1, false);
    Await.until(
        "director 1 withdraws while its link is down",
        () -> d.daemon().orElseThrow().announced().isEmpty(),
        Duration.ofSeconds(10));
    bed.setDirectorLink(1, true);
    Await.until(
        "the VIP announced by both after the link came back",
        () -> routerNextHops().size() == 2,
        Duration.ofSeconds(20));
    assertThat(kept.attached()).isTrue();
    assertThat(Traffic.burst(bed.client().handle(), VIP4, 100, 20).failures()).isEmpty();

    // The interface deleted and created again under the same name, as a driver reload does.
    long beforeReload = kept.reattachments();
    bed.recreateDirectorLink(1);
    Await.until(
        "the program attached to the new interface",
        () -> kept.reattachments() > beforeReload && kept.attached(),
        Duration.ofSeconds(10));
    Await.until(
        "the VIP announced by both after the interface came back",
        () -> routerNextHops().size() == 2,
        Duration.ofSeconds(20));
    assertThat(Traffic.burst(bed.client().handle(), VIP4, 100, 20).failures()).isEmpty();
  }

  /** The same for a proxy's program. */
  @Test
  @Order(4)
  void aProxysDetachedProgramIsAttachedAgainOnItsOwn() throws Exception {
    TestBed.Proxy p = bed.proxies().get(0);
    KeptAttachment kept = p.dataplane().attachment().orElseThrow();
    long before = kept.reattachments();
    p.ns().exec("ip", "link", "set", "dev", "eth0", "xdp", "off");
    Await.until(
        "the proxy's program attached again",
        () -> kept.reattachments() > before,
        Duration.ofSeconds(10));
    assertThat(Traffic.burst(bed.client().handle(), VIP4, 200, 20).failures()).isEmpty();
  }

  @Test
  @Order(5)
  void aDirectorTakenOutForGoodWithdrawsBeforeItDetachesAndNoConnectionBreaks() throws Exception {
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, 200, Duration.ofMillis(50), Duration.ofSeconds(60))) {
      Thread.sleep(500);
      Director leaving = bed.directors().get(0);
      leaving.daemon().orElseThrow().close();
      // It waited between withdrawing and detaching: the router had moved on by then.
      assertThat(routerNextHops())
          .containsExactly(bed.directors().get(1).address4().getHostAddress());
      long gone = traffic.mark();
      Thread.sleep(1000);
      assertThat(traffic.stop().brokenSince(gone)).isEmpty();
    }
  }

  @Test
  @Order(6)
  void aKilledSpeakerTakesItsDirectorOutOfTheRoute() throws Exception {
    // Director 1 left for good in the test before; director 2 is the last one announcing.
    long killed = System.nanoTime();
    bed.speaker(2).kill();
    Await.until(
        "the router drops director 2", () -> routerNextHops().isEmpty(), Duration.ofSeconds(10));
    log.info(
        "the router dropped director 2 {} ms after its speaker was killed",
        (System.nanoTime() - killed) / 1_000_000);
  }
}
