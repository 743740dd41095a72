package dev.veer.coordinator;

import dev.veer.metrics.Metric;
import dev.veer.transport.AccessPolicy;
import dev.veer.transport.TlsFiles;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/** Coordinator configurations for tests: loopback, an ephemeral port, quick sessions. */
final class Coordinators {
  private Coordinators() {}

  static Coordinator.Config config(String id, Path dataDir, Optional<String> zookeeper) {
    Coordinator.Config local =
        Coordinator.Config.local(id, dataDir).withSessionTimeoutMillis(4_000);
    return zookeeper.map(local::withZookeeper).orElse(local);
  }

  static Coordinator.Config secured(
      String id, Path dataDir, Optional<TlsFiles> tls, AccessPolicy access) {
    return config(id, dataDir, Optional.empty()).withSecurity(tls, access);
  }

  static String target(Coordinator coordinator) {
    return "127.0.0.1:" + coordinator.port();
  }

  /** The coordinator's count of {@code method}'s calls that ended with {@code code} (0 if none). */
  static double callsHandled(Coordinator coordinator, String method, String code) throws Exception {
    return coordinator.metrics().stream()
        .filter(m -> m.name().equals("veer_coordinator_grpc_calls_handled_total"))
        .flatMap(m -> m.samples().stream())
        .filter(s -> s.labels().equals(Map.of("method", method, "code", code)))
        .mapToDouble(Metric.Sample::value)
        .sum();
  }

  /** The coordinator's count of {@code method}'s calls open now. */
  static double callsOpen(Coordinator coordinator, String method) throws Exception {
    return coordinator.metrics().stream()
        .filter(m -> m.name().equals("veer_coordinator_grpc_calls_open"))
        .flatMap(m -> m.samples().stream())
        .filter(s -> s.labels().equals(Map.of("method", method)))
        .mapToDouble(Metric.Sample::value)
        .sum();
  }
}
