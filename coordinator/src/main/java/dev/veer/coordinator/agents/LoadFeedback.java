package dev.veer.coordinator.agents;

import com.google.common.collect.ImmutableMap;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Services;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Health;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Effective weights from the backends' load, for services that ask for it (the XDP project's
 * load-balancer use case: "a feedback loop into the LB-program decision, based on whether the
 * service is struggling to keep up").
 *
 * <p><b>Signal.</b> A backend's live connections, as its proxy agent reports them, per unit of its
 * (configured) weight, against the service's mean over its eligible backends that report: a backend
 * that answers slowly holds its connections longer, so for the same share of new connections it
 * holds more of them at once. The agents read it from the host's sockets every check interval; it
 * needs no cooperation from the service.
 *
 * <p><b>Control.</b> At most once per {@link #INTERVAL} per service, a backend whose load is above
 * {@link #LOWER_ABOVE} times the mean loses {@link #STEP} percentage points of its weight, down to
 * the service's floor ({@code min_percent}, 25 by default); one below {@link #RAISE_BELOW} times
 * the mean gains them back, up to 100. Between the two nothing moves (hysteresis), a step is
 * bounded, and a service with fewer than {@link #MIN_CONNECTIONS} live connections in all gives no
 * signal, so weights never flap on noise. Every step is a table change like any other: previous
 * primaries stay as later hops, so no connection breaks while weights move.
 *
 * <p>Leader-local state: when the last step of each service was taken. A new leader may take a step
 * sooner than {@link #INTERVAL} after the old one's; the bounds still hold.
 */
final class LoadFeedback {
  static final Duration INTERVAL = Duration.ofSeconds(2);
  static final int STEP = 15;
  static final double LOWER_ABOVE = 1.5;
  static final double RAISE_BELOW = 1.2;
  static final long MIN_CONNECTIONS = 8;

  private final Map<String, Long> steppedAt = new HashMap<>();

  /**
   * The steps due now: per service, the backends whose load percentage moves, to what. Services
   * stepped less than {@link #INTERVAL} ago are left out.
   */
  Map<String, Map<ByteString, Integer>> due(ClusterState state, AgentReports reports, long now) {
    Map<String, Map<ByteString, Integer>> out = new LinkedHashMap<>();
    for (ServiceState service : state.getServicesList()) {
      if (!service.getLoadFeedback().getEnabled()) {
        continue;
      }
      Long last = steppedAt.get(service.getName());
      if (last != null && now - last < INTERVAL.toMillis()) {
        continue;
      }
      Map<ByteString, Integer> steps = steps(service, reports);
      if (!steps.isEmpty()) {
        out.put(service.getName(), steps);
      }
    }
    return out;
  }

  /** Records that the steps of {@code service} were written at {@code now}. */
  void stepped(String service, long now) {
    steppedAt.put(service, now);
  }

  /** The backends of {@code service} whose load percentage should move one step, to what. */
  static ImmutableMap<ByteString, Integer> steps(ServiceState service, AgentReports reports) {
    long connections = 0;
    long weights = 0;
    Map<ByteString, Long> live = new LinkedHashMap<>();
    for (BackendRecord b : service.getBackendsList()) {
      long n = reports.liveConnections(service.getName(), b.getAddress());
      if (!eligible(b) || n < 0) {
        continue;
      }
      live.put(b.getAddress(), n);
      connections += n;
      weights += Services.weight(b);
    }
    if (connections < MIN_CONNECTIONS || live.size() < 2) {
      return ImmutableMap.of();
    }
    double mean = (double) connections / weights;
    int floor = Services.minLoadPercent(service);
    ImmutableMap.Builder<ByteString, Integer> out = ImmutableMap.builder();
    for (BackendRecord b : service.getBackendsList()) {
      Long n = live.get(b.getAddress());
      if (n == null) {
        continue;
      }
      double load = n / (double) Services.weight(b) / mean;
      int percent = Services.loadPercent(b);
      int next = percent;
      if (load > LOWER_ABOVE) {
        next = Math.max(floor, percent - STEP);
      } else if (load < RAISE_BELOW) {
        next = Math.min(100, percent + STEP);
      }
      if (next != percent) {
        out.put(b.getAddress(), next);
      }
    }
    return out.build();
  }

  private static boolean eligible(BackendRecord b) {
    return (b.getState() == BackendState.ACTIVE || b.getState() == BackendState.FILLING)
        && b.getHealth() != Health.UNHEALTHY;
  }
}
