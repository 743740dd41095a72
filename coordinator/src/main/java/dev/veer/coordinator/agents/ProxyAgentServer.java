package dev.veer.coordinator.agents;

import com.google.common.collect.ImmutableSet;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.admin.Services;
import dev.veer.coordinator.cluster.ServerSession;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.proxy.v1.AgentReport;
import dev.veer.proto.proxy.v1.AgentUpdate;
import dev.veer.proto.proxy.v1.AllowList;
import dev.veer.proto.proxy.v1.HealthReport;
import dev.veer.proto.proxy.v1.LoadReport;
import dev.veer.proto.proxy.v1.ProxyAgentServiceGrpc;
import dev.veer.proto.proxy.v1.Register;
import dev.veer.proto.proxy.v1.ServiceHealth;
import dev.veer.proto.proxy.v1.ServiceLoad;
import dev.veer.proto.proxy.v1.ServiceTarget;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.BackendState;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the proxy agents' stream: an agent registers its host's addresses, gets the allow-list
 * (every director's source address and every backend address: who may send it GUE and whom it may
 * forward to) and the services it is a backend of, and reports their health and load, which go to
 * the {@link StatusRegistry} for the leader's {@link BackendKeeper}. Allow-lists follow the desired
 * state and the directors that come and go.
 *
 * <p>A director that goes away stays in the allow-lists for {@link #DEPARTED_DIRECTOR_GRACE}: its
 * program goes on forwarding with the tables it holds when its daemon dies or restarts, and
 * dropping its GUE meanwhile would break every connection the router sends through it.
 */
public final class ProxyAgentServer extends ProxyAgentServiceGrpc.ProxyAgentServiceImplBase
    implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ProxyAgentServer.class);

  /** How long the addresses of a director that left stay allowed. */
  public static final Duration DEPARTED_DIRECTOR_GRACE = Duration.ofMinutes(10);

  private final ClusterStore store;
  private final StatusRegistry<DirectorStatus> directors;
  private final StatusRegistry<AgentStatus> agents;
  private final CuratorCache directorWatch;
  private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService updates =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-agent-updates").daemon(true).factory());
  private final Clock clock;
  private volatile ImmutableSet<ByteString> allowList = ImmutableSet.of();

  /** The state version every connected director forwards with, at least. */
  private volatile long dataPlaneVersion;

  /**
   * Confined to {@link #updates}: directors' addresses at the last refresh, and since when gone.
   */
  private Set<ByteString> directorAddresses = Set.of();

  private final Map<ByteString, Instant> departed = new HashMap<>();

  public ProxyAgentServer(
      CuratorFramework zk,
      ClusterStore store,
      StatusRegistry<DirectorStatus> directors,
      StatusRegistry<AgentStatus> agents,
      Clock clock) {
    this.clock = clock;
    this.store = store;
    this.directors = directors;
    this.agents = agents;
    this.directorWatch = CuratorCache.build(zk, directors.path());
    directorWatch
        .listenable()
        .addListener(
            CuratorCacheListener.builder()
                .forCreatesAndChanges((before, after) -> refresh())
                .forDeletes(gone -> refresh())
                .build());
    directorWatch.start();
    store.addListener(state -> refresh());
    refresh();
  }

  private void refresh() {
    updates.execute(
        () -> {
          try {
            ClusterState state = store.current();
            allowList = computeAllowList(state);
            dataPlaneVersion = dataPlaneVersion(state);
          } catch (Exception e) {
            log.warn("could not compute the proxies' allow-list: {}", e.toString());
            return;
          }
          sessions.forEach(Session::update);
        });
  }

  /**
   * Directors' source addresses (of those connected, and of those gone for less than the grace) and
   * every backend of every service.
   */
  private ImmutableSet<ByteString> computeAllowList(ClusterState state) throws Exception {
    Set<ByteString> present = new HashSet<>();
    for (DirectorStatus d : directors.all()) {
      for (String address : d.getSourceAddressesList()) {
        present.add(Addresses.bytes(com.google.common.net.InetAddresses.forString(address)));
      }
    }
    Instant now = clock.instant();
    for (ByteString address : directorAddresses) {
      if (!present.contains(address) && departed.putIfAbsent(address, now) == null) {
        // Looked at again once the grace is over.
        updates.schedule(
            this::refresh, DEPARTED_DIRECTOR_GRACE.toMillis() + 1, TimeUnit.MILLISECONDS);
      }
    }
    directorAddresses = present;
    departed.keySet().removeAll(present);
    departed.values().removeIf(since -> !now.isBefore(since.plus(DEPARTED_DIRECTOR_GRACE)));
    Set<ByteString> peers = new TreeSet<>(ByteString.unsignedLexicographicalComparator());
    peers.addAll(present);
    peers.addAll(departed.keySet());
    for (ServiceState service : state.getServicesList()) {
      service.getBackendsList().forEach(b -> peers.add(b.getAddress()));
    }
    return ImmutableSet.copyOf(peers);
  }

  /**
   * The oldest state version a connected director forwards with; the state's own version when no
   * director is connected (none forwards with anything older that could still place new flows,
   * except one that left: it is not waited for).
   */
  private long dataPlaneVersion(ClusterState state) throws Exception {
    return directors.all().stream()
        .mapToLong(DirectorStatus::getAppliedVersion)
        .min()
        .orElse(state.getVersion());
  }

  @Override
  public StreamObserver<AgentReport> connect(StreamObserver<AgentUpdate> responses) {
    return new Session((ServerCallStreamObserver<AgentUpdate>) responses);
  }

  @Override
  public void close() {
    directorWatch.close();
    updates.shutdownNow();
    sessions.forEach(s -> s.end(Status.UNAVAILABLE.withDescription("coordinator shutting down")));
  }

  /** One agent's stream. */
  private final class Session extends ServerSession<AgentReport, AgentUpdate> {
    private Register register;
    private Set<ByteString> addresses = Set.of();
    private AgentStatus status;
    private AgentUpdate lastSent;

    /** The newest update, not yet sent because the stream was not ready for it. */
    private AgentUpdate pending;

    Session(ServerCallStreamObserver<AgentUpdate> out) {
      super(out);
      out.setOnReadyHandler(this::flush);
    }

    @Override
    public synchronized void onNext(AgentReport report) {
      switch (report.getReportCase()) {
        case REGISTER -> register(report.getRegister());
        case HEALTH -> health(report.getHealth());
        case LOAD -> load(report.getLoad());
        default ->
            end(
                Status.INVALID_ARGUMENT.withDescription(
                    "unknown report " + report.getReportCase()));
      }
    }

    private void register(Register message) {
      if (register != null) {
        end(Status.INVALID_ARGUMENT.withDescription("Register sent twice on one stream"));
        return;
      }
      if (!message.getAgentId().matches("[A-Za-z0-9._-]{1,64}")
          || message.getAddressesCount() == 0) {
        end(
            Status.INVALID_ARGUMENT.withDescription(
                "Register needs an agent_id (1-64 of A-Z a-z 0-9 . _ -) and"
                    + " the host's backend addresses"));
        return;
      }
      Set<ByteString> parsed = new java.util.HashSet<>();
      for (String literal : message.getAddressesList()) {
        try {
          parsed.add(Addresses.bytes(Addresses.parseUnicast(literal, "agent address")));
        } catch (RuntimeException e) {
          end(Status.INVALID_ARGUMENT.withDescription(e.getMessage()));
          return;
        }
      }
      register = message;
      addresses = Set.copyOf(parsed);
      status =
          AgentStatus.newBuilder()
              .setId(message.getAgentId())
              .addAllAddresses(message.getAddressesList())
              .setCoLocated(message.getCoLocated())
              .setCoordinator(agents.coordinatorId())
              .setReportedAtMillis(System.currentTimeMillis())
              .build();
      agents.put(status);
      sessions.add(this);
      log.info("proxy agent {} ({}) connected", message.getAgentId(), message.getAddressesList());
      update();
    }

    private void health(HealthReport message) {
      if (register == null) {
        end(Status.FAILED_PRECONDITION.withDescription("a report before Register"));
        return;
      }
      Map<String, AgentServiceStatus> services = byService();
      for (ServiceHealth h : message.getServicesList()) {
        services.put(
            h.getService(),
            services
                .getOrDefault(
                    h.getService(),
                    AgentServiceStatus.newBuilder().setService(h.getService()).build())
                .toBuilder()
                .setHealth(h.getHealth())
                .setDetail(h.getDetail())
                .setConsecutive(
                    BackendKeeper.consecutiveToStore(h.getConsecutive(), store.current()))
                .build());
      }
      record(services);
    }

    private void load(LoadReport message) {
      if (register == null) {
        end(Status.FAILED_PRECONDITION.withDescription("a report before Register"));
        return;
      }
      Map<String, AgentServiceStatus> services = byService();
      ClusterState state = store.current();
      for (ServiceLoad l : message.getServicesList()) {
        try {
          FlowRowsCodec.rows(l.getRows());
        } catch (IllegalArgumentException e) {
          end(
              Status.INVALID_ARGUMENT.withDescription(
                  "flow rows of service " + l.getService() + ": " + e.getMessage()));
          return;
        }
      }
      for (ServiceLoad l : message.getServicesList()) {
        services.put(
            l.getService(),
            services
                .getOrDefault(
                    l.getService(),
                    AgentServiceStatus.newBuilder().setService(l.getService()).build())
                .toBuilder()
                .setLiveConnections(l.getLiveConnections())
                // Kept only where load feedback reads it: it changes with every burst, and a
                // changed status is a ZooKeeper write.
                .setWaiting(
                    Services.find(state, l.getService())
                            .map(s -> s.getLoadFeedback().getEnabled())
                            .orElse(false)
                        ? l.getWaiting()
                        : 0)
                .setRows(l.getRows())
                .setDataPlaneVersion(message.getDataPlaneVersion())
                .build());
      }
      record(services);
    }

    private Map<String, AgentServiceStatus> byService() {
      Map<String, AgentServiceStatus> services = new LinkedHashMap<>();
      status.getServicesList().forEach(s -> services.put(s.getService(), s));
      return services;
    }

    private void record(Map<String, AgentServiceStatus> services) {
      status =
          status.toBuilder()
              .clearServices()
              .addAllServices(services.values())
              .setReportedAtMillis(System.currentTimeMillis())
              .build();
      agents.put(status, drainAwaitsReport());
    }

    /**
     * Whether a backend at this agent's addresses drains since the agent's last written report: the
     * leader ends a drain only on a report made after it began, so this one must be written even if
     * nothing else changed.
     */
    private boolean drainAwaitsReport() {
      long written = agents.writtenReportTime(register.getAgentId());
      for (var service : store.current().getServicesList()) {
        for (var backend : service.getBackendsList()) {
          if (backend.getState() == BackendState.DRAINING
              && backend.getDrainStartedMillis() >= written
              && addresses.contains(backend.getAddress())) {
            return true;
          }
        }
      }
      return false;
    }

    /** Sends the agent its allow-list and services if they changed. */
    synchronized void update() {
      if (ended() || register == null) {
        return;
      }
      ClusterState state = store.current();
      AgentUpdate.Builder next =
          AgentUpdate.newBuilder()
              .setAllowList(AllowList.newBuilder().addAllPeers(allowList))
              .setCheckIntervalMillis(state.getSettings().getCheckIntervalMillis())
              .setCheckTimeoutMillis(state.getSettings().getCheckTimeoutMillis())
              .setDataPlaneVersion(dataPlaneVersion)
              .setFlowHashKey(state.getSettings().getFlowHashKey())
              .setNicHashKey(state.getSettings().getNicHashKey())
              .setRowBits(state.getSettings().getRowBits());
      for (ServiceState service : state.getServicesList()) {
        boolean mine =
            service.getBackendsList().stream()
                .map(BackendRecord::getAddress)
                .anyMatch(addresses::contains);
        if (mine) {
          next.addServices(
              ServiceTarget.newBuilder()
                  .setName(service.getName())
                  .setVip(service.getVip())
                  .setPort(service.getPort())
                  .setProtocol(service.getProtocol())
                  .setHashFields(service.getHashFields()));
        }
      }
      AgentUpdate update = next.build();
      if (update.equals(pending == null ? lastSent : pending)) {
        return;
      }
      pending = update;
      flush();
    }

    /**
     * Sends the newest update once gRPC's flow control says the agent reads again: an agent slower
     * than the changes gets the newest state, not every version queued behind it (at 1,000 services
     * an agent fell minutes behind).
     */
    private synchronized void flush() {
      if (pending == null || ended() || !out.isReady()) {
        return;
      }
      lastSent = pending;
      pending = null;
      send(lastSent);
    }

    @Override
    protected void closed(String why) {
      sessions.remove(this);
      Register r = register;
      if (r != null) {
        log.info("proxy agent {} disconnected: {}", r.getAgentId(), why);
        agents.remove(r.getAgentId());
      }
    }
  }
}
