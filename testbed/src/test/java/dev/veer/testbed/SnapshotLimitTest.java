package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.coordinator.Coordinator;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.ctl.VeerCtl;
import dev.veer.director.DirectorDaemon;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.ClusterStatus;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceRequest;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A version larger than a director takes in one message is streamed in parts that each fit; a
 * single table larger than a director takes is not sent (it would end the stream, and every
 * reconnect after it): the director's status names the version, the service and the sizes, `veer
 * ctl status` and the coordinator's metric show it, the stream stays up, and the next version that
 * fits is sent.
 */
class SnapshotLimitTest {
  @TempDir Path dataDir;

  @Test
  void aVersionIsStreamedInPartsAndATableLargerThanADirectorTakesIsNotSent() throws Exception {
    try (Coordinator coordinator = Coordinator.start(Coordinator.Config.local("c1", dataDir))) {
      String target = "127.0.0.1:" + coordinator.port();
      ManagedChannel channel = Transport.channel(target, Optional.empty());
      try {
        AdminServiceGrpc.AdminServiceBlockingStub admin = AdminServiceGrpc.newBlockingStub(channel);
        // Services of two backends: 2^16 rows of two one-byte hops, deflated to about 20 KiB. A
        // director that takes 32 KiB a message takes one such table a message, not two.
        int limit = 32 * 1024;
        createService(admin, "a", "203.0.113.21", 2);
        createService(admin, "b", "203.0.113.22", 2);
        long both = coordinator.store().current().getVersion();
        for (String name : List.of("a", "b")) {
          assertThat(wireSize(coordinator, name)).isBetween(limit / 2 + 1024, limit - 1024);
        }
        try (DirectorDaemon fresh = start("fresh", target, limit)) {
          // From nothing, version "both" carries two tables: it comes in two parts, each fits.
          assertThat(fresh.awaitVersion(both, Duration.ofSeconds(30))).isTrue();
          assertThat(fresh.coordinator()).isEqualTo(target);

          // 24 backends: one table over what the director takes.
          createService(admin, "c", "203.0.113.23", 24);
          long over = coordinator.store().current().getVersion();
          assertThat(wireSize(coordinator, "c")).isGreaterThan(limit);
          Await.until(
              "fresh's status to say why",
              () -> director(admin, "fresh").map(d -> !d.getError().isEmpty()).orElse(false),
              Duration.ofSeconds(30));
          DirectorStatus status = director(admin, "fresh").orElseThrow();
          assertThat(status.getError())
              .contains("version " + over + ": service c's table is")
              .contains("over the " + limit + " this director accepts")
              .contains("--max-snapshot-mib");
          assertThat(fresh.appliedVersion()).isLessThan(over);
          assertThat(fresh.coordinator()).isEqualTo(target); // the stream stayed up
          assertThat(ctlStatus(target)).contains("fresh").contains("ERROR: version " + over);
          assertThat(
                  coordinator.metrics().stream()
                      .filter(m -> m.name().equals("veer_coordinator_snapshots_too_large_total"))
                      .findFirst()
                      .orElseThrow()
                      .samples()
                      .getFirst()
                      .value())
              .isGreaterThanOrEqualTo(1);

          // With c gone the next version fits again: sent, applied, the error cleared.
          admin.deleteService(
              DeleteServiceRequest.newBuilder().setName("c").setForce(true).build());
          long fits = coordinator.store().current().getVersion();
          assertThat(fresh.awaitVersion(fits, Duration.ofSeconds(30))).isTrue();
          Await.until(
              "fresh's error to clear",
              () -> director(admin, "fresh").map(d -> d.getError().isEmpty()).orElse(false),
              Duration.ofSeconds(30));
          assertThat(fresh.coordinator()).isEqualTo(target);
        }
      } finally {
        channel.shutdownNow();
      }
    }
  }

  /** The bytes of a service's table as a current director is sent it. */
  private static int wireSize(Coordinator coordinator, String service) {
    return new TableCompiler()
        .compile(coordinator.store().current())
        .get(service)
        .wire()
        .getSerializedSize();
  }

  private static DirectorDaemon start(String id, String target, int limit) throws Exception {
    return DirectorDaemon.start(
        DirectorDaemon.Config.builder(id, List.of(target))
            .source4(Optional.of((Inet4Address) InetAddress.getByName("192.0.2.6")))
            .maxSnapshotBytes(limit)
            .build());
  }

  /** A service with its backends, in one write. */
  private static void createService(
      AdminServiceGrpc.AdminServiceBlockingStub admin, String name, String vip, int backends) {
    CreateServiceRequest.Builder request =
        CreateServiceRequest.newBuilder()
            .setSpec(
                ServiceSpec.newBuilder()
                    .setName(name)
                    .setVip(vip)
                    .setPort(80)
                    .setProtocol(Protocol.TCP));
    for (int i = 0; i < backends; i++) {
      request.addBackends(Backend.newBuilder().setAddress("192.0.2." + (134 + i)));
    }
    admin.createService(request.build());
  }

  private static Optional<DirectorStatus> director(
      AdminServiceGrpc.AdminServiceBlockingStub admin, String id) {
    ClusterStatus status = admin.getStatus(GetStatusRequest.getDefaultInstance());
    return status.getDirectorsList().stream().filter(d -> d.getId().equals(id)).findFirst();
  }

  private static String ctlStatus(String target) {
    StringWriter out = new StringWriter();
    VeerCtl.run(
        new String[] {"--coordinator", target, "status"},
        new PrintWriter(out, true),
        new PrintWriter(out, true));
    return out.toString();
  }
}
