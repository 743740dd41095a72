package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.coordinator.Coordinator;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.admin.v1.ClusterStatus;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Health;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Co-located mode on a bed of five hosts, each a director and a proxy on one interface with the TCP
 * server on the VIP, the router spreading the VIP over them by ECMP. Hosts 1-4 serve "web"; host 5
 * starts as a director only. New connections spread evenly; under 1,000 long-lived connections a
 * host leaves and rejoins the ECMP set, host 5 is added as a backend, host 2 drained and host 5
 * removed again, and none breaks; a host that dies breaks only the connections it served, and is
 * taken out of the tables (its agent gone), so that new connections reach the living.
 */
class CoLocatedEndToEndTest {
  private static final Logger log = LoggerFactory.getLogger(CoLocatedEndToEndTest.class);
  private static final InetSocketAddress VIP4 =
      new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);
  private static final Duration SETTLE = Duration.ofSeconds(4);

  @TempDir Path dataDir;

  @Test
  void hostsBalanceAmongThemselvesAndChangesBreakNoConnection() throws Exception {
    try (Coordinator coordinator =
            Coordinator.start(
                Coordinator.Config.local("c1", dataDir)
                    .withCluster(Coordinator.ClusterDefaults.DEFAULT.withChecks(200, 100, 2)));
        TestBed bed =
            TestBed.builder("coloc")
                .coordinators(List.of("127.0.0.1:" + coordinator.port()))
                .coLocated(5)
                .build()) {
      ManagedChannel channel =
          Transport.channel("127.0.0.1:" + coordinator.port(), Optional.empty());
      try {
        AdminServiceGrpc.AdminServiceBlockingStub admin = AdminServiceGrpc.newBlockingStub(channel);
        WebService.create(admin, bed, 4);
        // Every daemon says which mode it runs in (veer ctl status, the status page).
        ClusterStatus status = admin.getStatus(GetStatusRequest.getDefaultInstance());
        assertThat(status.getDirectorsList()).hasSize(5).allMatch(DirectorStatus::getCoLocated);
        assertThat(status.getAgentsList()).hasSize(5).allMatch(AgentStatus::getCoLocated);

        // 1,000 new connections: an even spread over the four serving hosts.
        Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP4, 1000, 50);
        log.info("1,000 new connections: {}, failures {}", burst.perServer(), burst.failures());
        assertThat(burst.failures()).isEmpty();
        for (int h = 1; h <= 4; h++) {
          assertThat(burst.perServer().count("host-" + h))
              .as("host-%s's share of 1,000 connections", h)
              .isBetween(213, 287);
        }
        log.info("delivered without encapsulation: {}", localShare(bed));

        try (Traffic.LongLived longLived =
            Traffic.LongLived.start(
                bed.client().handle(),
                VIP4,
                1000,
                Duration.ofMillis(1000),
                Duration.ofSeconds(120))) {
          bed.setEcmp(bed.directors().subList(0, 4));
          Thread.sleep(SETTLE);
          bed.setEcmp(bed.directors());
          Thread.sleep(SETTLE);
          admin.addBackend(
              AddBackendRequest.newBuilder()
                  .setService("web")
                  .setAddress(address(bed, 5))
                  .setState(BackendState.ACTIVE)
                  .build());
          Thread.sleep(SETTLE);
          admin.setBackendState(
              SetBackendStateRequest.newBuilder()
                  .setService("web")
                  .setAddress(address(bed, 2))
                  .setState(BackendState.DRAINING)
                  .build());
          Thread.sleep(SETTLE);
          // Removing a host that still carries connections is refused until its drain ends; host
          // 5, added after the long-lived connections opened, carries none of them.
          admin.setBackendState(
              SetBackendStateRequest.newBuilder()
                  .setService("web")
                  .setAddress(address(bed, 5))
                  .setState(BackendState.DRAINING)
                  .build());
          Thread.sleep(SETTLE);
          admin.removeBackend(
              RemoveBackendRequest.newBuilder()
                  .setService("web")
                  .setAddress(address(bed, 5))
                  .build());
          Thread.sleep(SETTLE);
          long mark = longLived.mark();
          Thread.sleep(Duration.ofSeconds(2));
          ConnectionLoops.Result result = longLived.stop();
          log.info(
              "1,000 long-lived connections through ECMP leave/join, add, drain, remove: {}"
                  + " answers, longest wait {} ms, broken {}",
              result.answered(),
              result.longestAnswerMillis(),
              result.brokenSince(mark));
          assertThat(result.brokenSince(mark)).isEmpty();
        }

        // A host that dies (its uplink black-holed, its agent gone, as when it loses power):
        // only the connections it served break, and new connections go to the living.
        try (Traffic.LongLived longLived =
            Traffic.LongLived.start(
                bed.client().handle(), VIP4, 300, Duration.ofMillis(500), Duration.ofSeconds(60))) {
          bed.cutOffDirector(3, true);
          bed.proxies().get(2).agent().orElseThrow().close();
          long died = System.nanoTime();
          Await.until(
              "host 3 taken for dead",
              () ->
                  admin
                      .getService(GetServiceRequest.newBuilder().setName("web").build())
                      .getBackendsList()
                      .stream()
                      .filter(b -> b.getAddress().equals(address(bed, 3)))
                      .allMatch(b -> b.getHealth() == Health.UNHEALTHY),
              Duration.ofSeconds(30));
          double detected = (System.nanoTime() - died) / 1e9;
          Thread.sleep(Duration.ofSeconds(2));
          ConnectionLoops.Result result = longLived.stop();
          List<ConnectionLoops.Connection> served = result.servedBy("host-3");
          List<ConnectionLoops.Connection> broken = result.failed();
          log.info(
              "host-3 died: taken for dead after {} s; it served {} of 300 connections; {} broke",
              String.format(java.util.Locale.ROOT, "%.1f", detected),
              served.size(),
              broken.size());
          assertThat(served).isNotEmpty();
          assertThat(broken).isNotEmpty().allMatch(c -> c.server().equals("host-3"));
        }
        Traffic.BurstResult after = Traffic.burst(bed.client().handle(), VIP4, 200, 50);
        log.info(
            "200 new connections after host 3 died: {}, failures {}",
            after.perServer(),
            after.failures());
        assertThat(after.failures()).isEmpty();
        assertThat(after.perServer().count("host-3")).isZero();
      } finally {
        channel.shutdownNow();
      }
    }
  }

  private static String address(TestBed bed, int host) {
    return bed.proxies().get(host - 1).address4().getHostAddress();
  }

  /** The share of packets to the service the hosts delivered to themselves, unencapsulated. */
  static double localShare(TestBed bed) {
    long local = 0;
    long sent = 0;
    for (TestBed.Director d : bed.directors()) {
      var program = d.dataplane().program();
      local += program.colocatedVerdicts().values().stream().mapToLong(Long::longValue).sum();
      sent += program.verdicts().get(DirectorVerdict.DIR_ENCAP_GUE);
    }
    log.info("co-located verdicts: {} delivered, {} encapsulated", local, sent);
    return local + sent == 0 ? 0 : local / (double) (local + sent);
  }
}
