package dev.veer.coordinator;

import dev.veer.transport.AccessPolicy;
import dev.veer.transport.TlsFiles;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Optional;

/** Coordinator configurations for tests: loopback, an ephemeral port, quick sessions. */
final class Coordinators {
  private Coordinators() {}

  static Coordinator.Config config(String id, Path dataDir, Optional<String> zookeeper) {
    return new Coordinator.Config(id, new InetSocketAddress("127.0.0.1", 0), "127.0.0.1", zookeeper, dataDir,
        Coordinator.DEFAULT_ROOT, Optional.empty(), AccessPolicy.allowAll(), Optional.empty(), 16, 19523, 600,
        4_000);
  }

  static Coordinator.Config secured(String id, Path dataDir, Optional<TlsFiles> tls, AccessPolicy access) {
    Coordinator.Config c = config(id, dataDir, Optional.empty());
    return new Coordinator.Config(c.id(), c.listen(), c.advertise(), c.zookeeper(), c.dataDir(), c.root(), tls,
        access, c.zookeeperDigest(), c.rowBits(), c.guePort(), c.settleSeconds(), c.sessionTimeoutMillis());
  }

  static String target(Coordinator coordinator) {
    return "127.0.0.1:" + coordinator.port();
  }
}
