package dev.veer.coordinator.agents;

import com.google.common.collect.ImmutableMap;
import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.admin.Services;
import dev.veer.coordinator.cluster.Membership;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.coordinator.retention.Evidence;
import dev.veer.coordinator.retention.FlowReport;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.admin.v1.DirectorProbe;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Health;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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
 * The leader's decisions about backends from what their proxy agents report:
 *
 * <ul>
 *   <li>health: it changes once a source has reported the same result {@code health_threshold}
 *       times in a row (damping: one failed check does not move a row). The sources are the
 *       backend's agent (its checks on the host) and every director (its probes through the real
 *       path); a settled failure from any of them makes the backend unhealthy, a settled success
 *       with no settled failure makes it healthy again after a hold-down;
 *   <li>drains: a DRAINING backend becomes INACTIVE when its agent reports no live connection left
 *       (in a report made after the drain began), or at the drain's deadline;
 *   <li>retention: the flow evidence of every service follows its proxies' reports ({@link
 *       Evidence}), at most once per check interval;
 *   <li>load feedback: effective weights of the services that ask for it follow their backends'
 *       load ({@link LoadFeedback}).
 * </ul>
 *
 * Runs on every coordinator and acts only on the leader, after every agent report and once per
 * check interval; the write is compare-and-set like any other, and the tables follow.
 */
public final class BackendKeeper implements AutoCloseable {
  /**
   * What a report's count of checks in a row is stored as: at most the health threshold, since more
   * says nothing more to the leader, and an unchanged health then leaves the status unchanged (no
   * write) from check to check.
   */
  public static int consecutiveToStore(int consecutive, ClusterState state) {
    return Math.min(consecutive, Math.max(1, state.getSettings().getHealthThreshold()));
  }

  private static final Logger log = LoggerFactory.getLogger(BackendKeeper.class);

  private final ClusterStore store;
  private final TableCompiler compiler;
  private final Membership membership;
  private final StatusRegistry<AgentStatus> agents;
  private final LoadFeedback feedback = new LoadFeedback();
  private final StatusRegistry<DirectorStatus> directors;
  private final Clock clock;

  /** When the leader last brought the flow evidence up to date; confined to the worker. */
  private long evidenceAt;

  /** When the leader last made each backend unhealthy ("service/address"); only on the leader. */
  private final Map<String, Long> unhealthySince = new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * When each co-located host's agent was last connected (by backend address; leader-local). A
   * co-located host has no director probing it through the path, so its agent's silence is the sign
   * that it died.
   */
  private final Map<ByteString, Long> coLocatedSeen =
      new java.util.concurrent.ConcurrentHashMap<>();

  private final CuratorCache reports;
  private final ScheduledExecutorService worker =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-health").daemon(true).factory());

  /** A change to one backend: a settled health, or (health null) the end of its drain. */
  private record Decision(String service, ByteString address, Health health, String detail) {}

  public BackendKeeper(
      CuratorFramework zk,
      ClusterStore store,
      TableCompiler compiler,
      Membership membership,
      StatusRegistry<AgentStatus> agents,
      StatusRegistry<DirectorStatus> directors,
      Clock clock) {
    this.store = store;
    this.compiler = compiler;
    this.membership = membership;
    this.agents = agents;
    this.directors = directors;
    this.clock = clock;
    this.reports = CuratorCache.build(zk, agents.path());
    reports
        .listenable()
        .addListener(
            CuratorCacheListener.builder()
                .forCreatesAndChanges((before, after) -> worker.execute(this::decide))
                .build());
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
      AgentReports agentReports = AgentReports.of(agents.all());
      Map<String, List<Vote>> votes = votes(state, agentReports.all(), directors.all(), threshold);
      silentCoLocatedHosts(state, agentReports.all(), votes);
      for (ServiceState service : state.getServicesList()) {
        for (BackendRecord backend : service.getBackendsList()) {
          String key = service.getName() + "/" + Addresses.literal(backend.getAddress());
          List<Vote> settled = votes.getOrDefault(key, List.of());
          // Any settled failure wins: the agent's own checks, or a director's through the real
          // path.
          Optional<Vote> failing =
              settled.stream().filter(v -> v.health() == Health.UNHEALTHY).findFirst();
          Optional<Vote> passing =
              settled.stream().filter(v -> v.health() == Health.HEALTHY).findFirst();
          Long since = unhealthySince.get(key);
          boolean heldDown = since != null && clock.millis() - since < holdDownMillis(state);
          if (failing.isPresent() && backend.getHealth() != Health.UNHEALTHY) {
            decisions.add(
                new Decision(
                    service.getName(),
                    backend.getAddress(),
                    Health.UNHEALTHY,
                    failing.get().source() + ": " + failing.get().detail()));
            unhealthySince.put(key, clock.millis());
          } else if (failing.isEmpty()
              && passing.isPresent()
              && backend.getHealth() != Health.HEALTHY
              && !heldDown) {
            decisions.add(
                new Decision(
                    service.getName(),
                    backend.getAddress(),
                    Health.HEALTHY,
                    passing.get().source() + ": " + passing.get().detail()));
            unhealthySince.remove(key);
          }
        }
      }
      drains(state, agentReports, decisions);
      boolean evidenceDue = clock.millis() - evidenceAt >= checkIntervalMillis(state);
      boolean evidenceChanges = evidenceDue && withEvidence(state, agentReports) != state;
      if (evidenceDue && !evidenceChanges) {
        evidenceAt = clock.millis();
      }
      Map<String, Map<ByteString, Integer>> steps =
          feedback.due(state, agentReports, clock.millis());
      if (decisions.isEmpty() && !evidenceChanges && steps.isEmpty()) {
        return;
      }
      ClusterState next =
          store.update(
              0,
              s -> {
                ClusterState changed = s;
                for (Decision d : decisions) {
                  changed =
                      d.health() == null
                          ? Services.endDrain(changed, d.service(), d.address(), clock.millis())
                          : Services.setHealth(
                              changed, d.service(), d.address(), d.health(), clock.millis());
                }
                for (var step : steps.entrySet()) {
                  changed =
                      Services.setLoadPercents(
                          changed, step.getKey(), step.getValue(), clock.millis());
                }
                return evidenceChanges ? withEvidence(changed, agentReports) : changed;
              });
      steps.forEach(
          (service, moved) -> {
            feedback.stepped(service, clock.millis());
            moved.forEach(
                (address, percent) ->
                    log.info(
                        "service {}: load feedback sets backend {} to {}% of its weight at version"
                            + " {}",
                        service, Addresses.literal(address), percent, next.getVersion()));
          });
      if (evidenceChanges) {
        evidenceAt = clock.millis();
        for (ServiceState service : next.getServicesList()) {
          ServiceState before = Services.find(state, service.getName()).orElse(service);
          if (service.getGenerationsCount() < before.getGenerationsCount()) {
            log.info(
                "service {}: earlier generations confirmed by their proxies' flow reports and"
                    + " dropped at version {}: {} left",
                service.getName(),
                next.getVersion(),
                service.getGenerationsCount());
          }
        }
        log.debug("flow evidence brought up to date at version {}", next.getVersion());
      }
      for (Decision d : decisions) {
        if (d.health() == null) {
          log.info(
              "backend {} of {} drained ({}) at version {}: now inactive",
              Addresses.literal(d.address()),
              d.service(),
              d.detail(),
              next.getVersion());
        } else {
          log.info(
              "backend {} of {} is {} ({}) at version {}",
              Addresses.literal(d.address()),
              d.service(),
              d.health() == Health.HEALTHY ? "healthy" : "unhealthy",
              d.detail(),
              next.getVersion());
        }
      }
    } catch (Exception e) {
      log.warn("health decisions failed, will retry: {}", e.toString());
    }
  }

  /**
   * {@code state} with every service's flow evidence and generations following the agents' reports,
   * or {@code state} itself if nothing changes. The evidence is filtered by the primaries of the
   * very state it is written into.
   */
  private ClusterState withEvidence(ClusterState state, AgentReports agentReports) {
    int rowBits = state.getSettings().getRowBits();
    ImmutableMap<String, TableCompiler.Compiled> tables = null;
    ClusterState.Builder next = null;
    for (int i = 0; i < state.getServicesCount(); i++) {
      ServiceState service = state.getServices(i);
      Map<ByteString, FlowReport> reports = agentReports.flows(service, rowBits);
      if (reports.isEmpty() && service.getEvidenceCount() == 0) {
        continue;
      }
      if (tables == null) {
        tables = compiler.compile(state);
      }
      ServiceState updated =
          Evidence.update(
              service, tables.get(service.getName()).table(), reports, state.getVersion() + 1);
      if (updated != service) {
        if (next == null) {
          next = state.toBuilder();
        }
        next.setServices(i, updated);
      }
    }
    return next == null ? state : next.build();
  }

  private static long checkIntervalMillis(ClusterState state) {
    return Math.max(50, state.getSettings().getCheckIntervalMillis());
  }

  /** One source's settled result for a backend: {@code threshold} checks or probes in a row. */
  private record Vote(Health health, String detail, String source) {}

  /** Settled results by "service/address": the agents' checks and the directors' probes. */
  private static Map<String, List<Vote>> votes(
      ClusterState state,
      List<AgentStatus> agentReports,
      List<DirectorStatus> directorReports,
      int threshold) {
    Map<String, List<Vote>> out = new HashMap<>();
    for (AgentStatus agent : agentReports) {
      Set<ByteString> addresses =
          agent.getAddressesList().stream()
              .map(a -> Addresses.bytes(InetAddresses.forString(a)))
              .collect(Collectors.toSet());
      for (AgentServiceStatus report : agent.getServicesList()) {
        if (report.getConsecutive() < threshold || report.getHealth() == Health.HEALTH_UNKNOWN) {
          continue;
        }
        Services.find(state, report.getService())
            .ifPresent(
                service -> {
                  for (BackendRecord backend : service.getBackendsList()) {
                    if (addresses.contains(backend.getAddress())) {
                      out.computeIfAbsent(
                              service.getName() + "/" + Addresses.literal(backend.getAddress()),
                              k -> new ArrayList<>())
                          .add(
                              new Vote(
                                  report.getHealth(),
                                  report.getDetail(),
                                  "agent " + agent.getId()));
                    }
                  }
                });
      }
    }
    for (DirectorStatus director : directorReports) {
      for (DirectorProbe probe : director.getProbesList()) {
        if (probe.getConsecutive() >= threshold && probe.getHealth() != Health.HEALTH_UNKNOWN) {
          String canonical =
              InetAddresses.toAddrString(InetAddresses.forString(probe.getBackend()));
          out.computeIfAbsent(probe.getService() + "/" + canonical, k -> new ArrayList<>())
              .add(new Vote(probe.getHealth(), probe.getDetail(), "director " + director.getId()));
        }
      }
    }
    return out;
  }

  /**
   * How long a backend that turned unhealthy stays so before passing checks bring it back: a
   * backend that is out of every row is no longer probed by the directors, so its agent's checks
   * alone could otherwise flip it back and forth while the path to it stays broken.
   */
  /**
   * Votes UNHEALTHY for every backend on a co-located host whose agent has been gone longer than
   * {@link #silenceMillis}: nothing else would notice that host die, and every other host would go
   * on sending its rows' new connections there.
   */
  private void silentCoLocatedHosts(
      ClusterState state, List<AgentStatus> agentReports, Map<String, List<Vote>> votes) {
    long now = clock.millis();
    for (AgentStatus agent : agentReports) {
      if (agent.getCoLocated()) {
        for (String address : agent.getAddressesList()) {
          coLocatedSeen.put(Addresses.bytes(InetAddresses.forString(address)), now);
        }
      }
    }
    if (coLocatedSeen.isEmpty()) {
      return; // no co-located host: nothing to walk the backends for
    }
    long silence = silenceMillis(state);
    for (ServiceState service : state.getServicesList()) {
      for (BackendRecord backend : service.getBackendsList()) {
        Long seen = coLocatedSeen.get(backend.getAddress());
        if (seen != null && now - seen > silence) {
          votes
              .computeIfAbsent(
                  service.getName() + "/" + Addresses.literal(backend.getAddress()),
                  k -> new ArrayList<>())
              .add(
                  new Vote(
                      Health.UNHEALTHY,
                      "its co-located host's agent has been gone for "
                          + (now - seen) / 1000
                          + " s: the host is taken for dead",
                      "coordinator"));
        }
      }
    }
  }

  /**
   * How long a co-located host's agent may be gone before its backends count as dead: five times
   * what a check takes to settle (reconnecting to another coordinator takes less), at least 5 s.
   */
  static long silenceMillis(ClusterState state) {
    return Math.max(
        5_000,
        5L * checkIntervalMillis(state) * Math.max(1, state.getSettings().getHealthThreshold()));
  }

  private static long holdDownMillis(ClusterState state) {
    return 10L * Math.max(50, state.getSettings().getCheckIntervalMillis());
  }

  /**
   * Drains whose connections are gone (by a report newer than the drain) or whose deadline passed.
   */
  private void drains(ClusterState state, AgentReports reports, List<Decision> decisions) {
    long now = clock.millis();
    for (ServiceState service : state.getServicesList()) {
      for (BackendRecord backend : service.getBackendsList()) {
        if (backend.getState() != BackendState.DRAINING) {
          continue;
        }
        if (backend.getDrainDeadlineMillis() > 0 && now >= backend.getDrainDeadlineMillis()) {
          long left = reports.liveConnections(service.getName(), backend.getAddress());
          decisions.add(
              new Decision(
                  service.getName(),
                  backend.getAddress(),
                  null,
                  "deadline reached" + (left > 0 ? " with " + left + " connections left" : "")));
          continue;
        }
        boolean reportedSince =
            reports
                .serving(backend.getAddress())
                .filter(a -> a.getReportedAtMillis() > backend.getDrainStartedMillis())
                .isPresent();
        if (reportedSince
            && reports.liveConnections(service.getName(), backend.getAddress()) == 0) {
          decisions.add(
              new Decision(service.getName(), backend.getAddress(), null, "no connections left"));
        }
      }
    }
  }

  @Override
  public void close() {
    reports.close();
    worker.shutdownNow();
  }
}
