package dev.veer.coordinator;

import dev.veer.transport.AccessPolicy;
import dev.veer.transport.TlsFiles;
import java.nio.file.Path;
import java.util.Optional;

/** Coordinator configurations for tests: loopback, an ephemeral port, quick sessions. */
final class Coordinators {
  private Coordinators() {}

  static Coordinator.Config config(String id, Path dataDir, Optional<String> zookeeper) {
    Coordinator.Config local = Coordinator.Config.local(id, dataDir).withSessionTimeoutMillis(4_000);
    return zookeeper.map(local::withZookeeper).orElse(local);
  }

  static Coordinator.Config secured(String id, Path dataDir, Optional<TlsFiles> tls, AccessPolicy access) {
    return config(id, dataDir, Optional.empty()).withSecurity(tls, access);
  }

  static String target(Coordinator coordinator) {
    return "127.0.0.1:" + coordinator.port();
  }
}
