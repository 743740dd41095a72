package dev.veer.coordinator.agents;

import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.admin.Services;
import dev.veer.coordinator.cluster.Membership;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.Health;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The leader's health decisions: a backend's health changes once its agent has reported the
 * same result for {@code health_threshold} checks in a row (damping: one failed check does not
 * move a single row). Runs on every coordinator and acts only on the leader, after every agent
 * report and once per check interval; the write is compare-and-set like any other, and the
 * tables follow from the state.
 */
public final class HealthKeeper implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(HealthKeeper.class);

  private final ClusterStore store;
  private final Membership membership;
  private final StatusRegistry<AgentStatus> agents;
  private final Clock clock;
  private final CuratorCache reports;
  private final ScheduledExecutorService worker = Executors.newSingleThreadScheduledExecutor(
      Thread.ofPlatform().name("veer-health").daemon(true).factory());

  /** One backend's health as its agent's checks have settled it. */
  private record Decision(String service, ByteString address, Health health, String detail) {}

  public HealthKeeper(CuratorFramework zk, ClusterStore store, Membership membership,
      StatusRegistry<AgentStatus> agents, Clock clock) {
    this.store = store;
    this.membership = membership;
    this.agents = agents;
    this.clock = clock;
    this.reports = CuratorCache.build(zk, agents.path());
    reports.listenable().addListener(CuratorCacheListener.builder()
        .forCreatesAndChanges((before, after) -> worker.execute(this::decide)).build());
  }

  public void start() {
    reports.start();
    long period = Math.max(50, store.current().getSettings().getCheckIntervalMillis());
    worker.scheduleWithFixedDelay(this::decide, period, period, TimeUnit.MILLISECONDS);
  }

  void decide() {
    if (!membership.isLeader()) {
      return;
    }
    try {
      ClusterState state = store.current();
      int threshold = Math.max(1, state.getSettings().getHealthThreshold());
      List<Decision> decisions = new ArrayList<>();
      for (AgentStatus agent : agents.all()) {
        Set<ByteString> addresses = agent.getAddressesList().stream()
            .map(a -> Addresses.bytes(InetAddresses.forString(a))).collect(Collectors.toSet());
        for (AgentServiceStatus report : agent.getServicesList()) {
          if (report.getConsecutive() < threshold || report.getHealth() == Health.HEALTH_UNKNOWN) {
            continue;
          }
          Services.find(state, report.getService()).ifPresent(service -> {
            for (BackendRecord backend : service.getBackendsList()) {
              if (addresses.contains(backend.getAddress()) && backend.getHealth() != report.getHealth()) {
                decisions.add(new Decision(service.getName(), backend.getAddress(), report.getHealth(),
                    report.getDetail()));
              }
            }
          });
        }
      }
      if (decisions.isEmpty()) {
        return;
      }
      ClusterState next = store.update(0, s -> {
        ClusterState changed = s;
        for (Decision d : decisions) {
          changed = Services.setHealth(changed, d.service(), d.address(), d.health(), clock.millis());
        }
        return changed;
      });
      for (Decision d : decisions) {
        log.info("backend {} of {} is {} ({}) at version {}", Addresses.literal(d.address()), d.service(),
            d.health() == Health.HEALTHY ? "healthy" : "unhealthy", d.detail(), next.getVersion());
      }
    } catch (Exception e) {
      log.warn("health decisions failed, will retry: {}", e.toString());
    }
  }

  @Override
  public void close() {
    reports.close();
    worker.shutdownNow();
  }
}
