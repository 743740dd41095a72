package dev.veer.testbed.cluster;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.director.DirectorDaemon;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.ClusterStatus;
import dev.veer.proto.admin.v1.CoordinatorStatus;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Protocol;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingCluster;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Three coordinators (each a JVM of its own) on a three-node ZooKeeper ensemble, four directors
 * following them, and admin changes coming all the time. The leader coordinator is SIGKILLed and a
 * ZooKeeper node is stopped mid-way: every change a client was told was accepted must be in the
 * final state, and every director must end at the same version with the same tables.
 */
class EnsembleFailoverTest {
  private static final Logger log = LoggerFactory.getLogger(EnsembleFailoverTest.class);
  static final int DIRECTORS = 4;

  @TempDir Path logs;

  static String backend(int i) {
    return "2001:db8:f::" + Integer.toHexString(i + 1);
  }

  @Test
  void noAcceptedChangeIsLostAndDirectorsConvergeThroughLeaderAndZooKeeperFailures()
      throws Exception {
    List<CoordinatorProcess> coordinators = new ArrayList<>();
    List<DirectorDaemon> directors = new ArrayList<>();
    try (TestingCluster zk = ZooKeeperEnsemble.start(3)) {
      for (int c = 1; c <= 3; c++) {
        coordinators.add(CoordinatorProcess.start("c" + c, zk.getConnectString(), logs));
      }
      List<String> targets = coordinators.stream().map(CoordinatorProcess::target).toList();
      try (FailoverAdmin admin = new FailoverAdmin(targets)) {
        awaitCoordinators(admin, 3);
        admin.call(
            s ->
                s.createService(
                    CreateServiceRequest.newBuilder()
                        .setSpec(
                            ServiceSpec.newBuilder()
                                .setName("web6")
                                .setVip("2001:db8:100::10")
                                .setPort(80)
                                .setProtocol(Protocol.TCP))
                        .build()));
        for (int d = 0; d < DIRECTORS; d++) {
          List<String> order = new ArrayList<>(targets);
          java.util.Collections.rotate(order, -d);
          directors.add(
              DirectorDaemon.start(
                  DirectorDaemon.Config.builder("d" + d, order)
                      .source4(
                          Optional.of((Inet4Address) InetAddress.getByName("192.0.2." + (6 + d))))
                      .build()));
        }

        Set<String> accepted = ConcurrentHashMap.newKeySet();
        AtomicBoolean stop = new AtomicBoolean();
        List<String> writeFailures = new ArrayList<>();
        Thread writer =
            Thread.ofPlatform()
                .name("admin-writer")
                .start(
                    () -> {
                      for (int i = 0; !stop.get() && i < 1000; i++) {
                        String address = backend(i);
                        try {
                          admin.call(
                              s ->
                                  s.addBackend(
                                      AddBackendRequest.newBuilder()
                                          .setService("web6")
                                          .setAddress(address)
                                          .setState(BackendState.ACTIVE)
                                          .build()));
                          accepted.add(address);
                        } catch (StatusRuntimeException e) {
                          if (e.getStatus().getCode() == Status.Code.ALREADY_EXISTS) {
                            accepted.add(address); // applied by an attempt whose answer was lost
                          } else {
                            synchronized (writeFailures) {
                              writeFailures.add(address + ": " + e.getStatus());
                            }
                          }
                        }
                        sleep(100);
                      }
                    });

        Thread.sleep(4_000);
        CoordinatorProcess leader = leader(admin, coordinators);
        log.info("killing the leader coordinator {} with SIGKILL", leader.id());
        leader.kill();
        Thread.sleep(4_000);
        InstanceSpec victim = zk.getInstances().iterator().next();
        log.info("stopping ZooKeeper node {}", victim.getConnectString());
        assertThat(zk.killServer(victim)).isTrue();
        Thread.sleep(5_000);
        stop.set(true);
        writer.join(30_000);

        // The survivors elected a new leader.
        ClusterStatus status = admin.call(s -> s.getStatus(GetStatusRequest.getDefaultInstance()));
        assertThat(status.getCoordinatorsList())
            .extracting(CoordinatorStatus::getId)
            .doesNotContain(leader.id());
        assertThat(status.getCoordinatorsList())
            .filteredOn(CoordinatorStatus::getLeader)
            .hasSize(1);

        Set<String> stored = new HashSet<>();
        admin
            .call(s -> s.getService(GetServiceRequest.newBuilder().setName("web6").build()))
            .getBackendsList()
            .forEach(b -> stored.add(b.getAddress()));
        log.info(
            "{} changes accepted, {} refused while failing over",
            accepted.size(),
            writeFailures.size());
        assertThat(accepted.size()).as("changes accepted during the run").isGreaterThan(50);
        assertThat(stored).as("every accepted change is stored").containsAll(accepted);

        long finalVersion = status.getVersion();
        for (DirectorDaemon d : directors) {
          assertThat(d.awaitVersion(finalVersion, Duration.ofSeconds(30)))
              .as("a director reached version %s (it is at %s)", finalVersion, d.appliedVersion())
              .isTrue();
        }
        var reference = directors.get(0).dataplane().tables();
        assertThat(reference.values().iterator().next().backends()).hasSize(stored.size());
        for (DirectorDaemon d : directors) {
          assertThat(d.appliedVersion()).isEqualTo(directors.get(0).appliedVersion());
          assertThat(d.dataplane().tables()).isEqualTo(reference);
        }
      }
    } finally {
      for (DirectorDaemon d : directors) {
        d.close();
      }
      for (CoordinatorProcess c : coordinators) {
        c.close();
      }
    }
  }

  static CoordinatorProcess leader(FailoverAdmin admin, List<CoordinatorProcess> coordinators)
      throws InterruptedException {
    for (int i = 0; i < 100; i++) {
      ClusterStatus status = admin.call(s -> s.getStatus(GetStatusRequest.getDefaultInstance()));
      for (CoordinatorStatus c : status.getCoordinatorsList()) {
        if (c.getLeader()) {
          return coordinators.stream()
              .filter(p -> p.id().equals(c.getId()))
              .findFirst()
              .orElseThrow();
        }
      }
      Thread.sleep(100);
    }
    throw new AssertionError("no leader elected");
  }

  static void awaitCoordinators(FailoverAdmin admin, int count) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (System.nanoTime() < deadline) {
      try {
        if (admin
                .call(s -> s.getStatus(GetStatusRequest.getDefaultInstance()))
                .getCoordinatorsCount()
            == count) {
          return;
        }
      } catch (StatusRuntimeException e) {
        // still starting
      }
      Thread.sleep(200);
    }
    throw new AssertionError(count + " coordinators did not come up within 60 s");
  }

  static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
