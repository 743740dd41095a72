package dev.veer.coordinator.state;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.AdminException;
import dev.veer.coordinator.cluster.EmbeddedZooKeeper;
import dev.veer.proto.state.v1.ClusterSettings;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.data.Stat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The per-service layout in a real (embedded) ZooKeeper, seen by two coordinators' stores. */
class ClusterStoreTest {
  private static final String ROOT = "/veer/test";
  private static final ClusterSettings SETTINGS =
      ClusterSettings.newBuilder()
          .setFlowHashKey(ByteString.copyFrom(new byte[16]))
          .setRowBits(8)
          .setGuePort(19523)
          .build();

  @TempDir Path dir;
  private EmbeddedZooKeeper server;
  private CuratorFramework zk;

  @BeforeEach
  void start() throws Exception {
    server = EmbeddedZooKeeper.start(dir, new InetSocketAddress("127.0.0.1", 0));
    zk = CuratorFrameworkFactory.newClient(server.connectString(), new RetryOneTime(100));
    zk.start();
  }

  @AfterEach
  void stop() {
    zk.close();
    server.close();
  }

  @Test
  void aChangeWritesOnlyTheServicesItChangesAndTheOtherCoordinatorSeesExactlyIt() throws Exception {
    try (ClusterStore a = ClusterStore.open(zk, ROOT, SETTINGS);
        ClusterStore b = ClusterStore.open(zk, ROOT, SETTINGS)) {
      for (int i = 0; i < 50; i++) {
        String name = "svc-" + i;
        a.update(0, s -> withService(s, service(name, 1)));
      }
      Map<String, Long> written = modified();
      ClusterState changed = a.update(0, s -> withService(s, service("svc-7", 2)));

      Map<String, Long> after = modified();
      List<String> rewritten = new ArrayList<>();
      after.forEach(
          (name, zxid) -> {
            if (!zxid.equals(written.get(name))) {
              rewritten.add(name);
            }
          });
      assertThat(rewritten).containsExactly("svc-7");
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (b.current().getVersion() < changed.getVersion() && System.nanoTime() < deadline) {
        Thread.sleep(10);
      }
      assertThat(b.current()).isEqualTo(changed);

      a.update(0, s -> without(s, "svc-3"));
      assertThat(b.read()).isEqualTo(a.current());
      assertThat(b.read().getServicesList())
          .extracting(ServiceState::getName)
          .doesNotContain("svc-3");
    }
  }

  @Test
  void writesFromTwoCoordinatorsAtOnceAreSerializedWithoutGapsOrLosses() throws Exception {
    try (ClusterStore a = ClusterStore.open(zk, ROOT, SETTINGS);
        ClusterStore b = ClusterStore.open(zk, ROOT, SETTINGS)) {
      long start = a.current().getVersion();
      ExecutorService pool = Executors.newFixedThreadPool(4);
      List<Future<?>> writes = new ArrayList<>();
      for (int i = 0; i < 40; i++) {
        ClusterStore store = i % 2 == 0 ? a : b;
        String name = "svc-" + (i % 5);
        writes.add(pool.submit(() -> store.update(0, s -> withService(s, bumped(s, name)))));
      }
      for (Future<?> write : writes) {
        write.get();
      }
      pool.shutdown();
      ClusterState end = a.read();
      assertThat(end.getVersion()).isEqualTo(start + 40);
      // Every write landed: each of the 5 services was bumped 8 times.
      assertThat(end.getServicesList()).allMatch(s -> s.getPort() == 8);
      assertThat(b.read()).isEqualTo(end);
    }
  }

  @Test
  void aCompareAndSetOnAStaleVersionIsRefusedAndWritesNothing() throws Exception {
    try (ClusterStore a = ClusterStore.open(zk, ROOT, SETTINGS)) {
      long version = a.update(0, s -> withService(s, service("one", 1))).getVersion();
      a.update(0, s -> withService(s, service("two", 1)));
      assertThatThrownBy(() -> a.update(version, s -> withService(s, service("three", 1))))
          .isInstanceOf(AdminException.class);
      assertThat(a.read().getServicesList())
          .extracting(ServiceState::getName)
          .containsExactly("one", "two");
    }
  }

  @Test
  void aWriteOverOneRequestIsRefusedWithTheLimitNamedAndNothingWritten() throws Exception {
    try (ClusterStore a = ClusterStore.open(zk, ROOT, SETTINGS)) {
      ClusterState before = a.update(0, s -> withService(s, service("small", 1)));
      List<ServiceState> many = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        many.add(
            service("big-" + i, 1).toBuilder()
                .setTableSeed(ByteString.copyFrom(new byte[60_000]))
                .build());
      }
      assertThatThrownBy(
              () ->
                  a.update(
                      0,
                      s -> {
                        ClusterState next = s;
                        for (ServiceState service : many) {
                          next = withService(next, service);
                        }
                        return next;
                      }))
          .isInstanceOf(AdminException.class)
          .hasMessageContaining("over the " + ClusterStore.MAX_WRITE_BYTES);
      assertThat(a.read()).isEqualTo(before);
      assertThat(zk.getChildren().forPath(ROOT + "/services")).containsExactly("small");
    }
  }

  @Test
  void changeRecordsAreKeptForABoundedNumberOfVersionsAndANewReaderStillSeesEverything()
      throws Exception {
    try (ClusterStore a = ClusterStore.open(zk, ROOT, SETTINGS)) {
      for (int i = 0; i < ClusterStore.KEPT_CHANGES + 20; i++) {
        a.update(0, s -> withService(s, bumped(s, "busy")));
      }
      assertThat(zk.getChildren().forPath(ROOT + "/changes")).hasSize(ClusterStore.KEPT_CHANGES);
      try (ClusterStore late = ClusterStore.open(zk, ROOT, SETTINGS)) {
        assertThat(late.current()).isEqualTo(a.read());
      }
    }
  }

  @Test
  void aSchemaOneClusterIsMovedInPlaceAndASchemaOneCoordinatorThenRefusesIt() throws Exception {
    ClusterState legacy =
        ClusterState.newBuilder()
            .setSchemaVersion(1)
            .setVersion(41)
            .setSettings(SETTINGS)
            .addServices(service("alpha", 80))
            .addServices(service("beta", 443))
            .build();
    zk.create().creatingParentsIfNeeded().forPath(ROOT + "/state", legacy.toByteArray());

    try (ClusterStore a = ClusterStore.open(zk, ROOT, SETTINGS);
        ClusterStore b = ClusterStore.open(zk, ROOT, SETTINGS)) {
      ClusterState moved = a.current();
      assertThat(moved.getVersion()).isEqualTo(42);
      assertThat(moved.getServicesList()).isEqualTo(legacy.getServicesList());
      assertThat(moved.getSettings()).isEqualTo(SETTINGS);
      assertThat(b.current()).isEqualTo(moved);
      assertThat(a.update(0, s -> withService(s, service("gamma", 1))).getVersion()).isEqualTo(43);
    }
    // What schema-1 code reads at its node now: a newer schema, which it refuses to use or write.
    byte[] old = zk.getData().forPath(ROOT + "/state");
    assertThat(ClusterState.parseFrom(old).getSchemaVersion()).isGreaterThan(1);
    assertThat(ClusterState.parseFrom(old).getServicesList()).isEmpty();
  }

  private Map<String, Long> modified() throws Exception {
    Map<String, Long> zxids = new HashMap<>();
    for (String name : zk.getChildren().forPath(ROOT + "/services")) {
      Stat stat = zk.checkExists().forPath(ROOT + "/services/" + name);
      zxids.put(name, stat.getMzxid());
    }
    return zxids;
  }

  private static ServiceState service(String name, int port) {
    return ServiceState.newBuilder()
        .setName(name)
        .setVip(ByteString.copyFrom(new byte[] {(byte) 203, 0, 113, 10}))
        .setPort(port)
        .build();
  }

  private static ServiceState bumped(ClusterState state, String name) {
    return state.getServicesList().stream()
        .filter(s -> s.getName().equals(name))
        .findFirst()
        .map(s -> s.toBuilder().setPort(s.getPort() + 1).build())
        .orElse(service(name, 1));
  }

  private static ClusterState withService(ClusterState state, ServiceState service) {
    List<ServiceState> services =
        new ArrayList<>(without(state, service.getName()).getServicesList());
    services.add(service);
    services.sort((x, y) -> x.getName().compareTo(y.getName()));
    return state.toBuilder().clearServices().addAllServices(services).build();
  }

  private static ClusterState without(ClusterState state, String name) {
    return state.toBuilder()
        .clearServices()
        .addAllServices(
            state.getServicesList().stream().filter(s -> !s.getName().equals(name)).toList())
        .build();
  }
}
