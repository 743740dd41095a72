package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.coordinator.table.BackendState;
import dev.veer.testbed.TestBed.Proxy;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Real TCP connections from a client namespace through an ECMP router, two directors running the
 * director XDP program and three (then four) proxies running the proxy XDP program, to a TCP server
 * on each proxy.
 */
class EndToEndTest {
  static final ServiceKey WEB4 = ServiceKey.tcp(TestBed.VIP4, TestBed.SERVICE_PORT);
  static final ServiceKey WEB6 = ServiceKey.tcp(TestBed.VIP6, TestBed.SERVICE_PORT);
  static final InetSocketAddress VIP4 = new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);
  static final InetSocketAddress VIP6 = new InetSocketAddress(TestBed.VIP6, TestBed.SERVICE_PORT);
  static final Duration MAX_RUN = Duration.ofSeconds(60);

  static TestBed bed;

  @BeforeAll
  static void setUp() {
    bed = TestBed.builder("e2e").build();
  }

  @AfterAll
  static void tearDown() {
    if (bed != null) {
      bed.close();
    }
  }

  @BeforeEach
  void threeProxiesAllActive() {
    bed.setEcmp(bed.directors());
    bed.installTables(
        WEB4,
        table(
            p -> p.address4(),
            Map.of(1, BackendState.ACTIVE, 2, BackendState.ACTIVE, 3, BackendState.ACTIVE)));
    bed.installTables(
        WEB6,
        table(
            p -> p.address6(),
            Map.of(1, BackendState.ACTIVE, 2, BackendState.ACTIVE, 3, BackendState.ACTIVE)));
  }

  @AfterEach
  void restoreEcmp() {
    bed.setEcmp(bed.directors());
  }

  /** A table over the given proxies (by id) in the given states, addressed by {@code address}. */
  static HopTable table(Function<Proxy, InetAddress> address, Map<Integer, BackendState> states) {
    Map<InetAddress, BackendState> backends = new LinkedHashMap<>();
    states.forEach((id, state) -> backends.put(address.apply(bed.proxies().get(id - 1)), state));
    return Tables.build(backends);
  }

  static long proxyVerdictSum(ProxyVerdict verdict) {
    return bed.proxies().stream().mapToLong(p -> p.dataplane().verdicts().get(verdict)).sum();
  }

  static long directorVerdict(int index, DirectorVerdict verdict) {
    return bed.directors().get(index).dataplane().program().verdicts().get(verdict);
  }

  /** A fair spread fails this check once in a million runs (see {@link EvenSpread}). */
  static final double FALSE_FAILURE_RATE = 1e-6;

  static void assertEvenShare(Traffic.BurstResult result, int connections) {
    assertThat(result.failures()).isEmpty();
    double even = connections / 3.0;
    // For 1,000 connections: +-76 (+-23 %) around 333; a proxy with no share, or a double one, is
    // far outside.
    double tolerance = EvenSpread.tolerance(connections, 3, FALSE_FAILURE_RATE);
    for (String proxy : List.of("proxy-1", "proxy-2", "proxy-3")) {
      assertThat((double) result.perServer().count(proxy))
          .as("connections served by %s", proxy)
          .isBetween(even - tolerance, even + tolerance);
    }
    assertThat(result.perServer().count("proxy-4")).isZero();
  }

  @Test
  void thousandConnectionsAllSucceedAndSpreadEvenly() throws Exception {
    long[] encapBefore = {
      directorVerdict(0, DirectorVerdict.DIR_ENCAP_GUE),
      directorVerdict(1, DirectorVerdict.DIR_ENCAP_GUE)
    };
    Traffic.BurstResult result = Traffic.burst(bed.client().handle(), VIP4, 1000, 50);
    assertEvenShare(result, 1000);
    // Both directors carried traffic: the router's ECMP spread the flows over them.
    assertThat(directorVerdict(0, DirectorVerdict.DIR_ENCAP_GUE)).isGreaterThan(encapBefore[0]);
    assertThat(directorVerdict(1, DirectorVerdict.DIR_ENCAP_GUE)).isGreaterThan(encapBefore[1]);
  }

  @Test
  void ipv6ThousandConnectionsAllSucceedAndSpreadEvenly() throws Exception {
    Traffic.BurstResult result = Traffic.burst(bed.client().handle(), VIP6, 1000, 50);
    assertEvenShare(result, 1000);
  }

  @Test
  void secondChanceKeepsEveryConnectionThroughAnAddAndADrain() throws Exception {
    long forwardsBefore = proxyVerdictSum(ProxyVerdict.PRX_FORWARD);
    long flowHitsBefore = proxyVerdictSum(ProxyVerdict.PRX_DELIVER_FLOW);
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(bed.client().handle(), VIP4, 200, Duration.ofMillis(50), MAX_RUN)) {
      Thread.sleep(500);
      // A fourth proxy joins: it wins about a quarter of the rows; the old primary is each row's
      // next hop.
      bed.installTables(
          WEB4,
          table(
              p -> p.address4(),
              Map.of(
                  1,
                  BackendState.ACTIVE,
                  2,
                  BackendState.ACTIVE,
                  3,
                  BackendState.ACTIVE,
                  4,
                  BackendState.FILLING)));
      Await.until(
          "second-chance forwards after the add",
          () -> proxyVerdictSum(ProxyVerdict.PRX_FORWARD) > forwardsBefore,
          Duration.ofSeconds(10));
      long afterAdd = proxyVerdictSum(ProxyVerdict.PRX_FORWARD);
      // Proxy 2 drains: its rows get another primary, proxy 2 stays a later hop.
      bed.installTables(
          WEB4,
          table(
              p -> p.address4(),
              Map.of(
                  1,
                  BackendState.ACTIVE,
                  2,
                  BackendState.DRAINING,
                  3,
                  BackendState.ACTIVE,
                  4,
                  BackendState.ACTIVE)));
      Await.until(
          "second-chance forwards after the drain",
          () -> proxyVerdictSum(ProxyVerdict.PRX_FORWARD) > afterAdd,
          Duration.ofSeconds(10));
      long changed = traffic.mark();
      Thread.sleep(500);
      // Every connection answered after the changes, counted once nothing is in flight any more.
      assertThat(traffic.stop().brokenSince(changed)).isEmpty();
      assertThat(afterAdd).isGreaterThan(forwardsBefore);
      assertThat(proxyVerdictSum(ProxyVerdict.PRX_FORWARD)).isGreaterThan(afterAdd);
      // The proxies' flow tables, kept by their sockops programs, delivered the established
      // traffic.
      assertThat(proxyVerdictSum(ProxyVerdict.PRX_DELIVER_FLOW) - flowHitsBefore)
          .isGreaterThan(1000);
      // New connections after the drain never land on the draining proxy.
      Traffic.BurstResult fresh = Traffic.burst(bed.client().handle(), VIP4, 200, 20);
      assertThat(fresh.failures()).isEmpty();
      assertThat(fresh.perServer().count("proxy-2")).isZero();
      assertThat(fresh.perServer().count("proxy-4")).isPositive();
    }
  }

  /**
   * The check every end-to-end and survival test relies on, proven: proxy 2's answers vanish (a
   * blackhole route towards the client, no reset), and exactly the connections it served must be
   * counted broken, and no other.
   */
  @Test
  void theBrokenConnectionCheckSeesExactlyTheConnectionsOfABlackHoledProxy() throws Exception {
    Proxy victim = bed.proxies().get(1);
    String route = TestBed.CLIENT4.getHostAddress() + "/32";
    ConnectionLoops.Result result;
    long holed;
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(bed.client().handle(), VIP4, 60, Duration.ofMillis(50), MAX_RUN)) {
      victim.ns().exec("ip", "route", "add", "blackhole", route);
      try {
        holed = traffic.mark();
        Thread.sleep(500);
        result = traffic.stop();
      } finally {
        victim.ns().exec("ip", "route", "del", "blackhole", route);
      }
    }
    List<ConnectionLoops.Connection> onVictim = result.servedBy(victim.name());
    assertThat(onVictim).isNotEmpty();
    assertThat(result.brokenSince(holed)).containsExactlyInAnyOrderElementsOf(onVictim);
  }

  @Test
  void losingADirectorFromTheEcmpSetBreaksNoConnection() throws Exception {
    try (Traffic.LongLived traffic =
        Traffic.LongLived.start(bed.client().handle(), VIP4, 200, Duration.ofMillis(50), MAX_RUN)) {
      long dir1Start = directorVerdict(0, DirectorVerdict.DIR_ENCAP_GUE);
      // Director 1 carries part of the running flows...
      Await.until(
          "director-1 to carry running flows",
          () -> directorVerdict(0, DirectorVerdict.DIR_ENCAP_GUE) > dir1Start,
          Duration.ofSeconds(10));
      bed.setEcmp(List.of(bed.directors().get(1)));
      Thread.sleep(500);
      long dir1Out = directorVerdict(0, DirectorVerdict.DIR_ENCAP_GUE);
      long out = traffic.mark();
      Thread.sleep(1500);
      // ...and none once out of the set, while every connection keeps being answered.
      assertThat(directorVerdict(0, DirectorVerdict.DIR_ENCAP_GUE)).isEqualTo(dir1Out);
      assertThat(traffic.stop().brokenSince(out)).isEmpty();
    }
  }

  @Test
  void synCookiesAreRecognisedAsTheProxysOwnFlows() throws Exception {
    for (Proxy p : bed.proxies()) {
      p.ns().sysctl("net.ipv4.tcp_syncookies", "2");
    }
    try {
      // The flow tables hold every connection, cookie handshakes included (told by the listener).
      assertThat(bed.proxies())
          .allSatisfy(p -> assertThat(p.dataplane().flowTableComplete()).isTrue());
      long cookiesBefore = proxyVerdictSum(ProxyVerdict.PRX_DELIVER_SYNCOOKIE);
      long flowsBefore = proxyVerdictSum(ProxyVerdict.PRX_DELIVER_FLOW);
      Traffic.BurstResult result = Traffic.burst(bed.client().handle(), VIP4, 60, 10);
      assertThat(result.failures()).isEmpty();
      assertThat(proxyVerdictSum(ProxyVerdict.PRX_DELIVER_FLOW) - flowsBefore)
          .isGreaterThanOrEqualTo(60);
      assertThat(proxyVerdictSum(ProxyVerdict.PRX_DELIVER_SYNCOOKIE)).isEqualTo(cookiesBefore);
    } finally {
      for (Proxy p : bed.proxies()) {
        p.ns().sysctl("net.ipv4.tcp_syncookies", "1");
      }
    }
  }
}
