package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ConcurrentHashMultiset;
import com.google.common.collect.Multiset;
import dev.veer.coordinator.Coordinator;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.UpdateServiceRequest;
import dev.veer.proto.types.v1.LoadFeedback;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Load feedback in the test bed: proxy-1's service is made slow (every answer waits 300 ms) while
 * clients open short connections 30 at a time; its proxy agent reports the connections it then
 * holds, the leader lowers its weight step by step, and its share of new connections falls; made
 * fast again, it gets its weight and share back. Long-lived connections run throughout and none may
 * break while the weights move.
 */
class LoadFeedbackEndToEndTest {
  private static final Logger log = LoggerFactory.getLogger(LoadFeedbackEndToEndTest.class);
  private static final InetSocketAddress VIP4 =
      new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);
  private static final Duration SLOW = Duration.ofMillis(300);

  /** Time the leader gets to move a weight from 100% to the floor, or back: 5 steps of 2 s. */
  private static final Duration SETTLE = Duration.ofSeconds(40);

  @TempDir Path dataDir;

  /** Short connections, a burst of 30 at a time, until closed; counts who answered them. */
  private static final class Load implements AutoCloseable {
    private final Multiset<String> perServer = ConcurrentHashMultiset.create();
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Thread thread;

    Load(TestBed bed, Duration maxRuntime) {
      long deadline = System.nanoTime() + maxRuntime.toNanos();
      thread =
          Thread.ofVirtual()
              .start(
                  () -> {
                    while (running.get() && System.nanoTime() < deadline) {
                      try {
                        perServer.addAll(
                            Traffic.burst(bed.client().handle(), VIP4, 30, 30).perServer());
                      } catch (InterruptedException e) {
                        return;
                      }
                    }
                  });
    }

    /** The share of new connections {@code server} answers over the next {@code window}. */
    double share(String server, Duration window) throws InterruptedException {
      perServer.clear();
      Thread.sleep(window);
      int all = perServer.size();
      log.info("new connections over {}: {}", window, perServer);
      return all == 0 ? 0 : perServer.count(server) / (double) all;
    }

    @Override
    public void close() throws InterruptedException {
      running.set(false);
      thread.join();
    }
  }

  @Test
  void aSlowedBackendGetsASmallerShareOfNewConnectionsUntilItRecovers() throws Exception {
    try (Coordinator coordinator =
            Coordinator.start(
                Coordinator.Config.local("c1", dataDir)
                    .withCluster(Coordinator.ClusterDefaults.DEFAULT.withChecks(200, 100, 2)));
        TestBed bed =
            TestBed.builder("feedback")
                .coordinators(java.util.List.of("127.0.0.1:" + coordinator.port()))
                .agents()
                .build()) {
      ManagedChannel channel =
          Transport.channel("127.0.0.1:" + coordinator.port(), Optional.empty());
      try {
        AdminServiceGrpc.AdminServiceBlockingStub admin = AdminServiceGrpc.newBlockingStub(channel);
        WebService.create(admin, bed, 3);
        var spec =
            admin.getService(GetServiceRequest.newBuilder().setName("web").build()).getSpec();
        admin.updateService(
            UpdateServiceRequest.newBuilder()
                .setSpec(
                    spec.toBuilder()
                        .setLoadFeedback(
                            LoadFeedback.newBuilder().setEnabled(true).setMinPercent(25)))
                .build());
        String slowProxy = bed.proxies().getFirst().name();
        java.util.function.Supplier<Backend> slowBackend =
            () ->
                admin
                    .getService(GetServiceRequest.newBuilder().setName("web").build())
                    .getBackendsList()
                    .stream()
                    .filter(
                        b ->
                            b.getAddress()
                                .equals(bed.proxies().getFirst().address4().getHostAddress()))
                    .findFirst()
                    .orElseThrow();

        try (Traffic.LongLived longLived =
                Traffic.LongLived.start(
                    bed.client().handle(),
                    VIP4,
                    30,
                    Duration.ofMillis(100),
                    Duration.ofSeconds(150));
            Load load = new Load(bed, Duration.ofSeconds(150))) {
          double before = load.share(slowProxy, Duration.ofSeconds(3));
          assertThat(slowBackend.get().getEffectiveWeight()).isEqualTo(100);

          bed.proxies().getFirst().server().setDelay(SLOW);
          long slowed = System.nanoTime();
          Await.until(
              "proxy-1's effective weight halved",
              () -> slowBackend.get().getEffectiveWeight() <= 50,
              SETTLE);
          double toHalf = (System.nanoTime() - slowed) / 1e9;
          double whileSlow = load.share(slowProxy, Duration.ofSeconds(5));
          int slowWeight = slowBackend.get().getEffectiveWeight();

          bed.proxies().getFirst().server().setDelay(Duration.ZERO);
          long recovered = System.nanoTime();
          Await.until(
              "proxy-1 back at its whole weight",
              () -> slowBackend.get().getEffectiveWeight() == 100,
              SETTLE);
          double toWhole = (System.nanoTime() - recovered) / 1e9;
          double afterwards = load.share(slowProxy, Duration.ofSeconds(5));

          load.close();
          ConnectionLoops.Result result = longLived.stop();
          System.out.printf(
              "load feedback: proxy-1's share of new connections %.1f%% before, %.1f%% while slow"
                  + " (weight at half or less after %.1f s, %d after 5 s more), %.1f%% after it"
                  + " recovered (weight back after %.1f s); %d of 30 long-lived connections"
                  + " broken%n",
              100 * before,
              100 * whileSlow,
              toHalf,
              slowWeight,
              100 * afterwards,
              toWhole,
              result.failed().size());
          // Even is a third; at half its weight or less its share is at most 50 / 250 = 20%.
          assertThat(before).isBetween(0.2, 0.5);
          assertThat(whileSlow).isLessThan(0.25);
          assertThat(afterwards).isBetween(0.2, 0.5);
          assertThat(result.failed()).as("long-lived connections broken").isEmpty();
        }
      } finally {
        Transport.close(channel);
      }
    }
  }
}
