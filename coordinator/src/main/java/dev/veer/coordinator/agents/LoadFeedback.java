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
 * <p><b>Signal.</b> The connections a backend's service is behind on, as its proxy agent reads them
 * from the host's sockets every check interval: those in its listener's accept queue, and those
 * with a request received and not yet read. Per unit of the backend's (configured) weight, against
 * the mean over the service's eligible backends that report. A service keeping up has none; one
 * struggling has a queue. Idle long-lived connections do not count, and the service need not
 * cooperate. When no backend is behind (fewer than {@link #MIN_WAITING} in all), every load counts
 * as zero, so lowered weights come back.
 *
 * <p><b>Control.</b> The leader samples each backend's load relative to the mean at most every
 * {@link #SAMPLE} and smooths it ({@link #SMOOTHING}, an exponentially weighted mean over about
 * five samples). At most once per {@link #INTERVAL} per service, a backend whose smoothed load is
 * outside [{@link #RAISE_BELOW}, {@link #LOWER_ABOVE}] moves its load percentage toward the value
 * that would bring its load to the mean ({@code percent / load}), by at most {@link #STEP}
 * percentage points, between the service's floor ({@code min_percent}, 25 by default) and 100.
 * Inside that band nothing moves and a step is bounded: weights settle instead of hunting. Every
 * step is a table change like any other: previous primaries stay as later hops, so no connection
 * breaks while weights move.
 *
 * <p>Leader-local state: the smoothed loads and when each service last stepped. A new leader starts
 * them afresh; the bounds still hold.
 */
final class LoadFeedback {
  static final Duration INTERVAL = Duration.ofSeconds(2);
  static final Duration SAMPLE = Duration.ofMillis(250);
  static final double SMOOTHING = 0.3;
  static final int STEP = 15;
  static final double LOWER_ABOVE = 1.5;
  static final double RAISE_BELOW = 0.8;
  static final long MIN_WAITING = 8;

  private final Map<String, Long> steppedAt = new HashMap<>();
  private final Map<String, Long> sampledAt = new HashMap<>();
  private final Map<String, Map<ByteString, Double>> smoothed = new HashMap<>();

  /**
   * Samples the loads of the services with feedback (if due), and returns the steps due now: per
   * service, the backends whose load percentage moves, to what.
   */
  Map<String, Map<ByteString, Integer>> due(ClusterState state, AgentReports reports, long now) {
    Map<String, Map<ByteString, Integer>> out = new LinkedHashMap<>();
    smoothed.keySet().removeIf(name -> Services.find(state, name).isEmpty());
    for (ServiceState service : state.getServicesList()) {
      String name = service.getName();
      if (!service.getLoadFeedback().getEnabled()) {
        smoothed.remove(name);
        continue;
      }
      Long sampled = sampledAt.get(name);
      if (sampled == null || now - sampled >= SAMPLE.toMillis()) {
        sampledAt.put(name, now);
        Map<ByteString, Double> previous = smoothed.getOrDefault(name, Map.of());
        Map<ByteString, Double> next = new HashMap<>();
        loads(service, reports)
            .forEach(
                (address, load) -> {
                  Double before = previous.get(address);
                  next.put(address, before == null ? load : before + SMOOTHING * (load - before));
                });
        smoothed.put(name, next);
      }
      Long last = steppedAt.get(name);
      if (last != null && now - last < INTERVAL.toMillis()) {
        continue;
      }
      Map<ByteString, Integer> steps = steps(service, smoothed.getOrDefault(name, Map.of()));
      if (!steps.isEmpty()) {
        out.put(name, steps);
      }
    }
    return out;
  }

  /** Records that the steps of {@code service} were written at {@code now}. */
  void stepped(String service, long now) {
    steppedAt.put(service, now);
  }

  /**
   * Each reporting eligible backend's waiting connections per unit of weight, over the mean of
   * them; all zero when fewer than {@link #MIN_WAITING} wait in all; empty when fewer than two
   * backends report (nothing to compare).
   */
  static ImmutableMap<ByteString, Double> loads(ServiceState service, AgentReports reports) {
    long waiting = 0;
    long weights = 0;
    Map<ByteString, Long> behind = new LinkedHashMap<>();
    for (BackendRecord b : service.getBackendsList()) {
      long n = reports.waiting(service.getName(), b.getAddress());
      if (!eligible(b) || n < 0) {
        continue;
      }
      behind.put(b.getAddress(), n);
      waiting += n;
      weights += Services.weight(b);
    }
    if (behind.size() < 2) {
      return ImmutableMap.of();
    }
    double mean = waiting < MIN_WAITING ? Double.POSITIVE_INFINITY : (double) waiting / weights;
    ImmutableMap.Builder<ByteString, Double> out = ImmutableMap.builder();
    for (BackendRecord b : service.getBackendsList()) {
      Long n = behind.get(b.getAddress());
      if (n != null) {
        out.put(b.getAddress(), n / (double) Services.weight(b) / mean);
      }
    }
    return out.build();
  }

  /** The backends of {@code service} whose load percentage moves one step, given their loads. */
  static ImmutableMap<ByteString, Integer> steps(
      ServiceState service, Map<ByteString, Double> loads) {
    int floor = Services.minLoadPercent(service);
    ImmutableMap.Builder<ByteString, Integer> out = ImmutableMap.builder();
    for (BackendRecord b : service.getBackendsList()) {
      Double load = loads.get(b.getAddress());
      if (load == null || !eligible(b) || (load <= LOWER_ABOVE && load >= RAISE_BELOW)) {
        continue;
      }
      int percent = Services.loadPercent(b);
      // Toward the percentage that would bring it to the mean; load 0 asks for all of it.
      long wanted = load == 0 ? 100 : Math.round(percent / load);
      int next =
          (int)
              Math.max(
                  floor, Math.min(100, Math.max(percent - STEP, Math.min(percent + STEP, wanted))));
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
