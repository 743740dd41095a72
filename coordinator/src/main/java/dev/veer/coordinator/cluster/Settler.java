package dev.veer.coordinator.cluster;

import dev.veer.coordinator.admin.Services;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.proto.state.v1.ClusterState;
import java.time.Clock;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The leader's housekeeping: once a retained generation has been superseded for the settle time,
 * its primaries leave the tables. Runs on every coordinator, acts only on the leader; the write is
 * compare-and-set like any other, so a leader change mid-way cannot lose or double it.
 */
public final class Settler implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Settler.class);
  private static final long PERIOD_MILLIS = 1000;
  private static final int SERVICES_PER_WRITE = 256;

  private final ClusterStore store;
  private final Membership membership;
  private final Clock clock;
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-settler").daemon(true).factory());

  public Settler(ClusterStore store, Membership membership, Clock clock) {
    this.store = store;
    this.membership = membership;
    this.clock = clock;
  }

  public void start() {
    timer.scheduleWithFixedDelay(this::settle, PERIOD_MILLIS, PERIOD_MILLIS, TimeUnit.MILLISECONDS);
  }

  void settle() {
    try {
      long cutoff = clock.millis() - store.current().getSettings().getSettleSeconds() * 1000L;
      // A bounded number of services per write keeps each write one small ZooKeeper request.
      while (membership.isLeader()
          && Services.oldestGeneration(store.current()).map(t -> t < cutoff).orElse(false)) {
        ClusterState next =
            store.update(0, s -> Services.pruneGenerations(s, cutoff, SERVICES_PER_WRITE));
        log.info(
            "settled: earlier generations dropped from the tables at state version {}",
            next.getVersion());
      }
    } catch (Exception e) {
      log.warn("settling failed, will retry: {}", e.toString());
    }
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
