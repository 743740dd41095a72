package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.coordinator.Coordinator;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.metrics.Metric;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ZooKeeper's load grows with changes, not with time: a cluster at rest (directors probing, agents
 * checking and reporting five times a second) writes its members' status znodes only as heartbeats,
 * and a change is written at once.
 */
class StatusWritesTest {
  private static final Logger log = LoggerFactory.getLogger(StatusWritesTest.class);

  @TempDir Path dataDir;

  @Test
  void aClusterAtRestWritesItsMembersStatusOnlyAsHeartbeats() throws Exception {
    try (Coordinator coordinator =
            Coordinator.start(
                Coordinator.Config.local("c1", dataDir)
                    .withCluster(Coordinator.ClusterDefaults.DEFAULT.withChecks(200, 100, 2)));
        TestBed bed =
            TestBed.builder("zkload")
                .directors(2)
                .proxies(4)
                .coordinators(List.of("127.0.0.1:" + coordinator.port()))
                .agents()
                .build()) {
      ManagedChannel channel =
          Transport.channel("127.0.0.1:" + coordinator.port(), Optional.empty());
      try {
        WebService.create(AdminServiceGrpc.newBlockingStub(channel), bed, 3);
        Thread.sleep(3000); // health settled, probes and reports steady
        long before = writes(coordinator);
        long seconds = 6;
        Thread.sleep(seconds * 1000);
        long atRest = writes(coordinator) - before;
        int members = bed.directors().size() + bed.proxies().size();
        // Reports came 5 times a second from each member: 180 writes before this change.
        log.info(
            "status writes at rest: {} in {} s from {} members ({} reports a second each)",
            atRest,
            seconds,
            members,
            5);
        assertThat(seconds).isLessThan(StatusRegistry.HEARTBEAT.toSeconds());
        assertThat(atRest).isLessThanOrEqualTo(members);
      } finally {
        channel.shutdownNow();
      }
    }
  }

  private static long writes(Coordinator coordinator) throws Exception {
    for (Metric m : coordinator.metrics()) {
      if (m.name().equals("veer_coordinator_status_writes_total")) {
        return m.samples().stream().mapToLong(s -> (long) s.value()).sum();
      }
    }
    throw new AssertionError("no veer_coordinator_status_writes_total metric");
  }
}
