package dev.veer.coordinator.admin;

import com.google.common.collect.ImmutableList;
import com.google.common.io.BaseEncoding;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.table.Backend;
import dev.veer.coordinator.table.TableBuilder;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.Generation;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Balance;
import dev.veer.proto.types.v1.Encapsulation;
import dev.veer.proto.types.v1.HashFields;
import dev.veer.proto.types.v1.Health;
import dev.veer.proto.types.v1.Protocol;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The admin operations as functions from one cluster state to the next. Each validates its whole
 * request against the state first and throws {@link AdminException} before building anything, so a
 * refused request never yields a partly changed state.
 */
public final class Services {
  /**
   * Earlier backend sets a service keeps while their proxies have not reported since (the builder's
   * limit). Reports confirm a generation within seconds of a change; only silent proxies or a
   * change every second or so reach it, and then the oldest is dropped (its flows count as stranded
   * in the change's impact).
   */
  public static final int MAX_GENERATIONS = TableBuilder.MAX_PREVIOUS_GENERATIONS;

  public static final int DEFAULT_HOPS = 2;

  /** The most backends a table names: a larger min_healthy could never be met. */
  public static final int MAX_MIN_HEALTHY = 65_535;

  public static final int MAX_HOPS = 4;
  private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");

  private Services() {}

  /**
   * The service named {@code name}. Services are kept in name order, so this is a binary search; a
   * miss is confirmed by a scan, so that a state in another order is still read right.
   */
  public static Optional<ServiceState> find(ClusterState state, String name) {
    int low = 0;
    int high = state.getServicesCount() - 1;
    while (low <= high) {
      int mid = (low + high) >>> 1;
      ServiceState service = state.getServices(mid);
      int order = service.getName().compareTo(name);
      if (order == 0) {
        return Optional.of(service);
      } else if (order < 0) {
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return state.getServicesList().stream().filter(s -> s.getName().equals(name)).findFirst();
  }

  public static ServiceState require(ClusterState state, String name) {
    checkName(name);
    return find(state, name)
        .orElseThrow(
            () ->
                AdminException.notFound(
                    "no service named '%s'; `veer ctl service"
                        + " list` shows the services there are",
                    name));
  }

  /**
   * {@code state} with a new service; its table seed is {@code tableSeed}, or its table group's if
   * another service of the group has one.
   */
  public static ClusterState create(ClusterState state, ServiceSpec spec, byte[] tableSeed) {
    ByteString seed = ByteString.copyFrom(tableSeed);
    if (!spec.getTableGroup().isEmpty()) {
      for (ServiceState s : state.getServicesList()) {
        if (s.getTableGroup().equals(spec.getTableGroup())) {
          seed = s.getTableSeed();
          break;
        }
      }
    }
    ServiceState fresh =
        fromSpec(spec).setTableSeed(seed).setTableVersion(state.getVersion() + 1).build();
    if (find(state, spec.getName()).isPresent()) {
      throw AdminException.exists(
          "a service named '%s' exists already; update it, or pick another name", spec.getName());
    }
    checkUniqueKey(state, fresh);
    return withService(state, fresh);
  }

  /**
   * {@code state} with a new service that starts with {@code backends} (each checked as {@link
   * #addBackend} checks it). It had no table before, so it keeps no earlier generation.
   */
  public static ClusterState create(
      ClusterState state,
      ServiceSpec spec,
      byte[] tableSeed,
      List<dev.veer.proto.admin.v1.Backend> backends,
      long nowMillis) {
    ClusterState next = create(state, spec, tableSeed);
    for (dev.veer.proto.admin.v1.Backend backend : backends) {
      BackendState initial =
          backend.getState() == BackendState.BACKEND_STATE_UNSPECIFIED
              ? BackendState.ACTIVE
              : backend.getState();
      next =
          addBackend(
              next, spec.getName(), backend.getAddress(), initial, backend.getWeight(), nowMillis);
    }
    ServiceState created = require(next, spec.getName());
    return withService(
        next,
        created.toBuilder().clearGenerations().setTableVersion(state.getVersion() + 1).build());
  }

  /**
   * Replaces a service's spec. A change of balance is a table change like any other: the backends
   * with the balance they had become the newest retained generation.
   */
  public static ClusterState update(ClusterState state, ServiceSpec spec, long nowMillis) {
    ServiceState existing = require(state, spec.getName());
    if (!spec.getTableGroup().isEmpty() && !spec.getTableGroup().equals(existing.getTableGroup())) {
      throw AdminException.invalid(
          "service '%s' is in table group '%s': a table group is set when a service is created"
              + " (changing it would rebuild every row); create a new service in group '%s'"
              + " and move its clients",
          spec.getName(), existing.getTableGroup(), spec.getTableGroup());
    }
    ServiceState.Builder updated =
        existing.toBuilder()
            .mergeFrom(fromSpec(spec).build())
            .setLoadFeedback(spec.getLoadFeedback()) // merging would keep an enabled one
            .setTableVersion(state.getVersion() + 1);
    if (!updated.getLoadFeedback().getEnabled()) {
      // Without feedback every backend is back at its weight.
      for (int i = 0; i < updated.getBackendsCount(); i++) {
        updated.setBackends(i, updated.getBackends(i).toBuilder().clearLoadPercent());
      }
    }
    if ((balance(updated.getBalance()) != balance(existing.getBalance())
            || !placement(updated.getBackendsList()).equals(placement(existing.getBackendsList())))
        && existing.getBackendsCount() > 0) {
      // Other primaries: the ones the old balance gave stay as later hops, as for any change.
      updated.clearGenerations().addAllGenerations(withGeneration(state, existing, nowMillis));
    }
    checkUniqueKey(state, updated.build());
    return withService(state, updated.build());
  }

  public static ClusterState delete(ClusterState state, String name, boolean force) {
    ServiceState existing = require(state, name);
    if (existing.getBackendsCount() > 0 && !force) {
      throw AdminException.precondition(
          "service '%s' still has %d backends: remove them first, or delete with"
              + " force (its clients' connections break)",
          name, existing.getBackendsCount());
    }
    return state.toBuilder()
        .clearServices()
        .addAllServices(
            state.getServicesList().stream().filter(s -> !s.getName().equals(name)).toList())
        .build();
  }

  public static ClusterState addBackend(
      ClusterState state, String service, String literal, BackendState initial, long nowMillis) {
    return addBackend(state, service, literal, initial, 0, nowMillis);
  }

  /** Adds a backend of {@code weight} (0: the default). */
  public static ClusterState addBackend(
      ClusterState state,
      String service,
      String literal,
      BackendState initial,
      int weight,
      long nowMillis) {
    ServiceState existing = require(state, service);
    checkWeight(weight, true);
    InetAddress address = Addresses.parseUnicast(literal, "backend address");
    BackendState backendState =
        initial == BackendState.BACKEND_STATE_UNSPECIFIED
            ? BackendState.FILLING
            : checkState(initial);
    ByteString bytes = Addresses.bytes(address);
    if (indexOf(existing, bytes) >= 0) {
      throw AdminException.exists(
          "service '%s' has backend %s already; use set-state to change its state",
          service, literal);
    }
    if (existing.getBackendsCount() > 0) {
      boolean v6 = existing.getBackends(0).getAddress().size() == 16;
      if (v6 != (address instanceof Inet6Address)) {
        throw AdminException.invalid(
            "service '%s' has %s backends; %s is %s. A table has one address family:"
                + " make another service for the other family",
            service, v6 ? "IPv6" : "IPv4", literal, v6 ? "IPv4" : "IPv6");
      }
    }
    List<BackendRecord> backends = new ArrayList<>(existing.getBackendsList());
    backends.add(
        BackendRecord.newBuilder()
            .setAddress(bytes)
            .setState(backendState)
            .setWeight(weight == 0 ? Backend.DEFAULT_WEIGHT : weight)
            .build());
    return withBackends(state, existing, backends, nowMillis);
  }

  /**
   * Removes a backend. One that may take new connections (ACTIVE, FILLING), or that its agent
   * reports live connections on ({@code liveConnections} > 0; -1 when unknown), needs force.
   */
  public static ClusterState removeBackend(
      ClusterState state,
      String service,
      String literal,
      boolean force,
      long liveConnections,
      long nowMillis) {
    ServiceState existing = require(state, service);
    int index = requireBackend(existing, literal);
    BackendState current = existing.getBackends(index).getState();
    if (!force && liveConnections > 0) {
      throw AdminException.precondition(
          "backend %s of '%s' still carries %d connections: wait for its drain to"
              + " end, or remove it with force and break them",
          literal, service, liveConnections);
    }
    if (!force && (current == BackendState.ACTIVE || current == BackendState.FILLING)) {
      throw AdminException.precondition(
          "backend %s of '%s' is %s and may carry connections%s: drain it first"
              + " (set its state to DRAINING), or remove it with force to break them",
          literal, service, current, liveConnections >= 0 ? " (" + liveConnections + " now)" : "");
    }
    List<BackendRecord> backends = new ArrayList<>(existing.getBackendsList());
    backends.remove(index);
    return withBackends(state, existing, backends, nowMillis);
  }

  /**
   * Sets a backend's state. Entering DRAINING starts a drain, ended by the leader when the
   * backend's connections are gone or, with {@code drainTimeoutSeconds} > 0, at that deadline.
   */
  public static ClusterState setBackendState(
      ClusterState state,
      String service,
      String literal,
      BackendState newState,
      int drainTimeoutSeconds,
      long nowMillis) {
    ServiceState existing = require(state, service);
    int index = requireBackend(existing, literal);
    checkState(newState);
    if (drainTimeoutSeconds != 0 && newState != BackendState.DRAINING) {
      throw AdminException.invalid(
          "a drain timeout goes with the state DRAINING, not %s", newState);
    }
    BackendRecord before = existing.getBackends(index);
    BackendRecord.Builder after = before.toBuilder().setState(newState);
    if (newState == BackendState.DRAINING) {
      long started =
          before.getState() == BackendState.DRAINING ? before.getDrainStartedMillis() : nowMillis;
      after
          .setDrainStartedMillis(started)
          .setDrainDeadlineMillis(
              drainTimeoutSeconds > 0 ? nowMillis + drainTimeoutSeconds * 1000L : 0);
    } else {
      after.clearDrainStartedMillis().clearDrainDeadlineMillis();
    }
    List<BackendRecord> backends = new ArrayList<>(existing.getBackendsList());
    backends.set(index, after.build());
    return withBackends(state, existing, backends, nowMillis);
  }

  /** Sets a backend's weight: the rows it gains or loses move, their previous primaries kept. */
  public static ClusterState setBackendWeight(
      ClusterState state, String service, String literal, int weight, long nowMillis) {
    ServiceState existing = require(state, service);
    int index = requireBackend(existing, literal);
    checkWeight(weight, false);
    List<BackendRecord> backends = new ArrayList<>(existing.getBackendsList());
    backends.set(index, backends.get(index).toBuilder().setWeight(weight).build());
    return withBackends(state, existing, backends, nowMillis);
  }

  private static void checkWeight(int weight, boolean zeroIsDefault) {
    if ((weight == 0 && !zeroIsDefault) || weight < 0 || weight > Backend.MAX_WEIGHT) {
      throw AdminException.invalid(
          "weight must be %d to %d%s, got %d; a backend that should take no new connections is"
              + " drained instead",
          Backend.MIN_WEIGHT,
          Backend.MAX_WEIGHT,
          zeroIsDefault ? " (0 for the default " + Backend.DEFAULT_WEIGHT + ")" : "",
          Integer.toUnsignedLong(weight));
    }
  }

  /** Ends a drain: the backend becomes INACTIVE. Nothing if it is no longer draining. */
  public static ClusterState endDrain(
      ClusterState state, String service, ByteString address, long nowMillis) {
    Optional<ServiceState> existing = find(state, service);
    if (existing.isEmpty()) {
      return state;
    }
    int index = indexOf(existing.get(), address);
    if (index < 0 || existing.get().getBackends(index).getState() != BackendState.DRAINING) {
      return state;
    }
    List<BackendRecord> backends = new ArrayList<>(existing.get().getBackendsList());
    backends.set(
        index,
        backends.get(index).toBuilder()
            .setState(BackendState.INACTIVE)
            .clearDrainStartedMillis()
            .clearDrainDeadlineMillis()
            .build());
    return withBackends(state, existing.get(), backends, nowMillis);
  }

  /** Sets a backend's health as checks report it; a backend or service that is gone is ignored. */
  public static ClusterState setHealth(
      ClusterState state, String service, ByteString address, Health health, long nowMillis) {
    Optional<ServiceState> existing = find(state, service);
    if (existing.isEmpty()) {
      return state;
    }
    int index = indexOf(existing.get(), address);
    if (index < 0 || existing.get().getBackends(index).getHealth() == health) {
      return state;
    }
    List<BackendRecord> backends = new ArrayList<>(existing.get().getBackendsList());
    backends.set(index, backends.get(index).toBuilder().setHealth(health).build());
    return withBackends(state, existing.get(), backends, nowMillis);
  }

  /**
   * Drops the generations superseded before {@code cutoffMillis} (their settle time has passed)
   * from at most {@code maxServices} services.
   */
  public static ClusterState pruneGenerations(
      ClusterState state, long cutoffMillis, int maxServices) {
    ClusterState.Builder next = state.toBuilder().clearServices();
    int pruned = 0;
    for (ServiceState service : state.getServicesList()) {
      List<Generation> kept =
          service.getGenerationsList().stream()
              .filter(g -> g.getSupersededAtMillis() >= cutoffMillis)
              .toList();
      if (kept.size() == service.getGenerationsCount() || pruned++ >= maxServices) {
        next.addServices(service);
      } else {
        next.addServices(
            service.toBuilder()
                .clearGenerations()
                .addAllGenerations(kept)
                .setTableVersion(state.getVersion() + 1));
      }
    }
    return next.build();
  }

  /** The earliest time at which a generation of any service settles, if any is retained. */
  public static Optional<Long> oldestGeneration(ClusterState state) {
    return state.getServicesList().stream()
        .flatMap(s -> s.getGenerationsList().stream())
        .map(Generation::getSupersededAtMillis)
        .min(Comparator.naturalOrder());
  }

  private static ServiceState.Builder fromSpec(ServiceSpec spec) {
    checkName(spec.getName());
    InetAddress vip = Addresses.parseUnicast(spec.getVip(), "vip");
    if (spec.getPort() < 1 || spec.getPort() > 65535) {
      throw AdminException.invalid("port must be 1..65535, got %d", spec.getPort());
    }
    if (spec.getProtocol() != Protocol.TCP && spec.getProtocol() != Protocol.UDP) {
      throw AdminException.invalid("protocol must be TCP or UDP, got %s", spec.getProtocol());
    }
    if (spec.getHopCount() > MAX_HOPS) {
      throw AdminException.invalid(
          "hop_count must be 1..%d (0 for the default %d), got %d",
          MAX_HOPS, DEFAULT_HOPS, spec.getHopCount());
    }
    if (spec.getMinHealthy() > MAX_MIN_HEALTHY) {
      throw AdminException.invalid(
          "min_healthy must be 1..%d (0 for the default 1), got %d",
          MAX_MIN_HEALTHY, spec.getMinHealthy());
    }
    if (!spec.getTableGroup().isEmpty() && !NAME.matcher(spec.getTableGroup()).matches()) {
      throw AdminException.invalid(
          "table_group must match [a-z0-9][a-z0-9-]*, at most 63 characters, got '%s'",
          spec.getTableGroup());
    }
    if (spec.getHashFieldsValue() < 0
        || spec.getHashFields() == HashFields.UNRECOGNIZED
        || spec.getEncapsulation() == Encapsulation.UNRECOGNIZED) {
      throw AdminException.invalid("unknown hash_fields or encapsulation value");
    }
    if (spec.getLoadFeedback().getMinPercent() > 100) {
      throw AdminException.invalid(
          "load_feedback.min_percent must be 1..100 (0 for the default %d), got %d",
          DEFAULT_MIN_LOAD_PERCENT, spec.getLoadFeedback().getMinPercent());
    }
    if (spec.getBalance() == Balance.UNRECOGNIZED) {
      throw AdminException.invalid(
          "unknown balance value %d: RENDEZVOUS or BOUNDED", spec.getBalanceValue());
    }
    return ServiceState.newBuilder()
        .setName(spec.getName())
        .setVip(Addresses.bytes(vip))
        .setPort(spec.getPort())
        .setProtocol(spec.getProtocol())
        .setHashFields(
            spec.getHashFields() == HashFields.HASH_FIELDS_UNSPECIFIED
                ? HashFields.SOURCE_ADDRESS_PORT
                : spec.getHashFields())
        .setEncapsulation(
            spec.getEncapsulation() == Encapsulation.ENCAPSULATION_UNSPECIFIED
                ? Encapsulation.GUE
                : spec.getEncapsulation())
        .setHopCount(spec.getHopCount() == 0 ? DEFAULT_HOPS : spec.getHopCount())
        .setMinHealthy(spec.getMinHealthy() == 0 ? 1 : spec.getMinHealthy())
        .setTableGroup(spec.getTableGroup())
        .setLoadFeedback(spec.getLoadFeedback())
        .setBalance(
            spec.getBalance() == Balance.BALANCE_UNSPECIFIED
                ? Balance.RENDEZVOUS
                : spec.getBalance());
  }

  private static void checkName(String name) {
    if (!NAME.matcher(name).matches()) {
      throw AdminException.invalid(
          "service name '%s' must be 1-63 characters of a-z, 0-9 and '-', starting with"
              + " a letter or digit",
          name);
    }
  }

  private static BackendState checkState(BackendState state) {
    if (state == BackendState.BACKEND_STATE_UNSPECIFIED || state == BackendState.UNRECOGNIZED) {
      throw AdminException.invalid(
          "backend state must be one of ACTIVE, FILLING, DRAINING, INACTIVE");
    }
    return state;
  }

  private static void checkUniqueKey(ClusterState state, ServiceState candidate) {
    for (ServiceState other : state.getServicesList()) {
      if (!other.getName().equals(candidate.getName())
          && other.getVip().equals(candidate.getVip())
          && other.getPort() == candidate.getPort()
          && other.getProtocol() == candidate.getProtocol()) {
        throw AdminException.exists(
            "service '%s' serves %s port %d/%s already; a VIP, port and protocol belong"
                + " to one service",
            other.getName(),
            Addresses.literal(other.getVip()),
            other.getPort(),
            other.getProtocol());
      }
    }
  }

  private static int requireBackend(ServiceState service, String literal) {
    InetAddress address = Addresses.parseUnicast(literal, "backend address");
    int index = indexOf(service, Addresses.bytes(address));
    if (index < 0) {
      throw AdminException.notFound("service '%s' has no backend %s", service.getName(), literal);
    }
    return index;
  }

  private static int indexOf(ServiceState service, ByteString address) {
    for (int i = 0; i < service.getBackendsCount(); i++) {
      if (service.getBackends(i).getAddress().equals(address)) {
        return i;
      }
    }
    return -1;
  }

  /**
   * Replaces a service's backends. When the change can move primaries, the backend set it replaces
   * becomes the newest retained generation (at most {@link #MAX_GENERATIONS}), so the table keeps
   * its primaries as later hops until their proxies report the flows they hold (or, at the latest,
   * the settle time passes). Flow evidence of backends that leave goes with them.
   */
  private static ClusterState withBackends(
      ClusterState state, ServiceState service, List<BackendRecord> backends, long nowMillis) {
    Set<ByteString> kept = new HashSet<>();
    backends.forEach(b -> kept.add(b.getAddress()));
    ServiceState.Builder next =
        service.toBuilder()
            .clearBackends()
            .addAllBackends(backends)
            .clearEvidence()
            .addAllEvidence(
                service.getEvidenceList().stream()
                    .filter(e -> kept.contains(e.getAddress()))
                    .toList())
            .setTableVersion(state.getVersion() + 1);
    if (!placement(service.getBackendsList()).equals(placement(backends))
        && service.getBackendsCount() > 0) {
      next.clearGenerations().addAllGenerations(withGeneration(state, service, nowMillis));
    }
    return withService(state, next.build());
  }

  /**
   * The service's retained generations with its current backends and balance as the newest, at most
   * {@link #MAX_GENERATIONS}.
   */
  private static List<Generation> withGeneration(
      ClusterState state, ServiceState service, long nowMillis) {
    List<Generation> generations = new ArrayList<>();
    generations.add(
        Generation.newBuilder()
            .addAllBackends(service.getBackendsList())
            .setSupersededAtMillis(nowMillis)
            .setSupersededVersion(state.getVersion() + 1)
            .setBalance(service.getBalance())
            .build());
    generations.addAll(service.getGenerationsList());
    return generations.subList(0, Math.min(MAX_GENERATIONS, generations.size()));
  }

  /**
   * What decides placement: each address with whether it may be primary, drains, or is out, and its
   * weight.
   */
  private static List<String> placement(List<BackendRecord> backends) {
    return backends.stream()
        .map(
            b ->
                BaseEncoding.base16().encode(b.getAddress().toByteArray())
                    + ":"
                    + tier(b)
                    + ":"
                    + effectiveWeight(b))
        .sorted()
        .collect(ImmutableList.toImmutableList());
  }

  /** A stored balance: RENDEZVOUS for services and generations from before balances. */
  public static Balance balance(Balance stored) {
    return stored == Balance.BALANCE_UNSPECIFIED ? Balance.RENDEZVOUS : stored;
  }

  /** A backend's weight: the default when the record has none (written before weights). */
  public static int weight(BackendRecord b) {
    return b.getWeight() == 0 ? Backend.DEFAULT_WEIGHT : b.getWeight();
  }

  /** A backend's effective load percentage: 100 unless load feedback lowered it. */
  public static int loadPercent(BackendRecord b) {
    return b.getLoadPercent() == 0 ? 100 : b.getLoadPercent();
  }

  /** The weight the table uses: the weight lowered by load feedback, at least 1. */
  public static int effectiveWeight(BackendRecord b) {
    return Math.max(1, (int) Math.round(weight(b) * loadPercent(b) / 100.0));
  }

  /** The lowest load percentage feedback may set for {@code service}. */
  public static int minLoadPercent(ServiceState service) {
    int min = service.getLoadFeedback().getMinPercent();
    return min == 0 ? DEFAULT_MIN_LOAD_PERCENT : min;
  }

  /** Load feedback's floor when the operator gives none. */
  public static final int DEFAULT_MIN_LOAD_PERCENT = 25;

  /**
   * Sets the load percentages of some backends of {@code service} (load feedback's decisions); a
   * service or backend that is gone, or feedback turned off meanwhile, is left alone.
   */
  public static ClusterState setLoadPercents(
      ClusterState state, String service, Map<ByteString, Integer> percents, long nowMillis) {
    Optional<ServiceState> existing = find(state, service);
    if (existing.isEmpty() || !existing.get().getLoadFeedback().getEnabled()) {
      return state;
    }
    List<BackendRecord> backends = new ArrayList<>(existing.get().getBackendsList());
    boolean changed = false;
    for (int i = 0; i < backends.size(); i++) {
      Integer percent = percents.get(backends.get(i).getAddress());
      if (percent != null && percent != loadPercent(backends.get(i))) {
        backends.set(
            i, backends.get(i).toBuilder().setLoadPercent(percent == 100 ? 0 : percent).build());
        changed = true;
      }
    }
    return changed ? withBackends(state, existing.get(), backends, nowMillis) : state;
  }

  private static int tier(BackendRecord b) {
    if (b.getHealth() == Health.UNHEALTHY || b.getState() == BackendState.INACTIVE) {
      return 2;
    }
    return b.getState() == BackendState.DRAINING ? 1 : 0;
  }

  private static ClusterState withService(ClusterState state, ServiceState service) {
    List<ServiceState> services =
        new ArrayList<>(
            state.getServicesList().stream()
                .filter(s -> !s.getName().equals(service.getName()))
                .toList());
    services.add(service);
    services.sort(Comparator.comparing(ServiceState::getName));
    return state.toBuilder().clearServices().addAllServices(services).build();
  }
}
