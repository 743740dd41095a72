package dev.veer.coordinator;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import com.google.protobuf.ByteString;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.RowBits;
import dev.veer.coordinator.admin.AdminServer;
import dev.veer.coordinator.agents.BackendKeeper;
import dev.veer.coordinator.agents.ProxyAgentServer;
import dev.veer.coordinator.cluster.EmbeddedZooKeeper;
import dev.veer.coordinator.cluster.Membership;
import dev.veer.coordinator.cluster.Settler;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.coordinator.sync.DirectorSyncServer;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.lifecycle.CloseStack;
import dev.veer.metrics.GrpcServerMetrics;
import dev.veer.metrics.Metric;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.director.v1.DirectorSyncGrpc;
import dev.veer.proto.proxy.v1.ProxyAgentServiceGrpc;
import dev.veer.proto.state.v1.ClusterSettings;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.transport.AccessPolicy;
import dev.veer.transport.Authorizer;
import dev.veer.transport.Role;
import dev.veer.transport.TlsFiles;
import dev.veer.transport.Transport;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.ACLProvider;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One coordinator replica: a ZooKeeper session (to an ensemble, or to a node embedded here), the
 * desired state, leader election, and a gRPC server with the admin API and the director sync
 * stream. Every replica serves reads, writes and directors; only the leader settles.
 */
public final class Coordinator implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Coordinator.class);

  /** Where Veer keeps its state in ZooKeeper; the version is the stored schema's major. */
  public static final String DEFAULT_ROOT = "/veer/v1";

  private final CloseStack closer;
  private final Server server;
  private final ClusterStore store;
  private final Membership membership;
  private final DirectorSyncServer sync;
  private final Optional<EmbeddedZooKeeper> embedded;
  private final StatusRegistry<DirectorStatus> directors;
  private final StatusRegistry<AgentStatus> agents;
  private final CuratorFramework zk;
  private final AdminServer admin;
  private final GrpcServerMetrics grpcMetrics;

  /** What a coordinator needs to start; built with {@link #builder} (or {@link #local}). */
  public static final class Config {
    private final String id;
    private final InetSocketAddress listen;
    private final String advertise;
    private final Optional<String> zookeeper;
    private final Path dataDir;
    private final String root;
    private final Optional<TlsFiles> tls;
    private final AccessPolicy access;
    private final Optional<String> zookeeperDigest;
    private final ClusterDefaults cluster;
    private final int sessionTimeoutMillis;

    private Config(Builder b) {
      checkArgument(
          b.id != null && b.id.matches("[A-Za-z0-9._-]{1,64}"),
          "coordinator id '%s': 1-64 of A-Z a-z 0-9 . _ -",
          b.id);
      b.zookeeperDigest.ifPresent(
          d -> checkArgument(d.matches("[^:]+:.+"), "ZooKeeper credentials must be user:password"));
      checkArgument(b.sessionTimeoutMillis > 0, "the ZooKeeper session timeout must be positive");
      this.id = b.id;
      this.listen = b.listen;
      this.advertise = b.advertise;
      this.zookeeper = b.zookeeper;
      this.dataDir = b.dataDir;
      this.root = b.root;
      this.tls = b.tls;
      this.access = b.access;
      this.zookeeperDigest = b.zookeeperDigest;
      this.cluster = b.cluster;
      this.sessionTimeoutMillis = b.sessionTimeoutMillis;
    }

    /**
     * A coordinator named {@code id} keeping its files (and, without {@link Builder#zookeeper}, its
     * embedded ZooKeeper) in {@code dataDir}; by default on 127.0.0.1 (an ephemeral port),
     * plaintext, open to every caller.
     */
    public static Builder builder(String id, Path dataDir) {
      return new Builder(id, dataDir);
    }

    /**
     * A coordinator on 127.0.0.1 (an ephemeral port) with a ZooKeeper embedded in {@code dataDir},
     * plaintext, open to every caller: for one machine and for tests.
     */
    public static Config local(String id, Path dataDir) {
      return builder(id, dataDir).build();
    }

    public Builder toBuilder() {
      Builder b = new Builder(id, dataDir);
      b.listen = listen;
      b.advertise = advertise;
      b.zookeeper = zookeeper;
      b.root = root;
      b.tls = tls;
      b.access = access;
      b.zookeeperDigest = zookeeperDigest;
      b.cluster = cluster;
      b.sessionTimeoutMillis = sessionTimeoutMillis;
      return b;
    }

    public Config withListen(InetSocketAddress address) {
      return toBuilder().listen(address).build();
    }

    public Config withZookeeper(String connect) {
      return toBuilder().zookeeper(connect).build();
    }

    public Config withSecurity(Optional<TlsFiles> newTls, AccessPolicy newAccess) {
      return toBuilder().tls(newTls).access(newAccess).build();
    }

    public Config withZookeeperDigest(String digest) {
      return toBuilder().zookeeperDigest(digest).build();
    }

    public Config withCluster(ClusterDefaults newCluster) {
      return toBuilder().cluster(newCluster).build();
    }

    public Config withSessionTimeoutMillis(int millis) {
      return toBuilder().sessionTimeoutMillis(millis).build();
    }

    public String id() {
      return id;
    }

    public InetSocketAddress listen() {
      return listen;
    }

    /** The address directors and agents are told to reach this coordinator at. */
    public String advertise() {
      return advertise;
    }

    /** An ensemble's connect string; empty runs one embedded in {@link #dataDir}. */
    public Optional<String> zookeeper() {
      return zookeeper;
    }

    public Path dataDir() {
      return dataDir;
    }

    /** The ZooKeeper path under which the cluster's state lives. */
    public String root() {
      return root;
    }

    public Optional<TlsFiles> tls() {
      return tls;
    }

    public AccessPolicy access() {
      return access;
    }

    public Optional<String> zookeeperDigest() {
      return zookeeperDigest;
    }

    public ClusterDefaults cluster() {
      return cluster;
    }

    public int sessionTimeoutMillis() {
      return sessionTimeoutMillis;
    }

    public static final class Builder {
      private final String id;
      private final Path dataDir;
      private InetSocketAddress listen = new InetSocketAddress("127.0.0.1", 0);
      private String advertise = "127.0.0.1";
      private Optional<String> zookeeper = Optional.empty();
      private String root = DEFAULT_ROOT;
      private Optional<TlsFiles> tls = Optional.empty();
      private AccessPolicy access = AccessPolicy.allowAll();
      private Optional<String> zookeeperDigest = Optional.empty();
      private ClusterDefaults cluster = ClusterDefaults.DEFAULT;
      private int sessionTimeoutMillis = 10_000;

      private Builder(String id, Path dataDir) {
        this.id = id;
        this.dataDir = dataDir;
      }

      public Builder listen(InetSocketAddress value) {
        this.listen = value;
        return this;
      }

      public Builder advertise(String value) {
        this.advertise = value;
        return this;
      }

      public Builder zookeeper(String connect) {
        this.zookeeper = Optional.of(connect);
        return this;
      }

      public Builder root(String value) {
        this.root = value;
        return this;
      }

      public Builder tls(Optional<TlsFiles> value) {
        this.tls = value;
        return this;
      }

      public Builder access(AccessPolicy value) {
        this.access = value;
        return this;
      }

      public Builder zookeeperDigest(String userAndPassword) {
        this.zookeeperDigest = Optional.of(userAndPassword);
        return this;
      }

      public Builder cluster(ClusterDefaults value) {
        this.cluster = value;
        return this;
      }

      public Builder sessionTimeoutMillis(int value) {
        this.sessionTimeoutMillis = value;
        return this;
      }

      public Config build() {
        return new Config(this);
      }
    }
  }

  /**
   * The settings a new cluster is created with; the first coordinator writes them into the state,
   * and from then on they are the cluster's.
   */
  public record ClusterDefaults(
      int rowBits,
      int guePort,
      int settleSeconds,
      int checkIntervalMillis,
      int checkTimeoutMillis,
      int healthThreshold,
      ByteString nicHashKey) {
    public static final ClusterDefaults DEFAULT =
        new ClusterDefaults(VeerAbi.DEFAULT_ROW_BITS, VeerAbi.GUE_PORT_DEFAULT, 600, 1000, 500, 2);

    /** A cluster whose flow hash is the keyed SipHash. */
    public ClusterDefaults(
        int rowBits,
        int guePort,
        int settleSeconds,
        int checkIntervalMillis,
        int checkTimeoutMillis,
        int healthThreshold) {
      this(
          rowBits,
          guePort,
          settleSeconds,
          checkIntervalMillis,
          checkTimeoutMillis,
          healthThreshold,
          ByteString.EMPTY);
    }

    public ClusterDefaults {
      checkArgument(
          nicHashKey.isEmpty() || nicHashKey.size() == VeerAbi.TOEPLITZ_KEY_LEN,
          "the NICs' RSS key has %s bytes, not %s",
          VeerAbi.TOEPLITZ_KEY_LEN,
          nicHashKey.size());
      RowBits.check(rowBits);
      checkArgument(guePort > 0 && guePort < 65536, "GUE port must be 1..65535, got %s", guePort);
      checkArgument(settleSeconds >= 0, "settle seconds must not be negative");
      checkArgument(
          checkIntervalMillis >= 50,
          "health checks at most every 50 ms, got %s",
          checkIntervalMillis);
      checkArgument(
          checkTimeoutMillis > 0 && checkTimeoutMillis <= checkIntervalMillis,
          "a check's timeout must be positive and at most the interval, got %s",
          checkTimeoutMillis);
      checkArgument(healthThreshold >= 1, "the health threshold is at least 1 check");
    }

    public ClusterDefaults withChecks(int intervalMillis, int timeoutMillis, int threshold) {
      return new ClusterDefaults(
          rowBits, guePort, settleSeconds, intervalMillis, timeoutMillis, threshold, nicHashKey);
    }

    /**
     * RX-hash mode: every director's NIC hashes flows with Toeplitz and this key (40 bytes), and
     * the flow hash is the NIC's. Fixed when the cluster is created.
     */
    public ClusterDefaults withNicHashKey(byte[] key) {
      return new ClusterDefaults(
          rowBits,
          guePort,
          settleSeconds,
          checkIntervalMillis,
          checkTimeoutMillis,
          healthThreshold,
          ByteString.copyFrom(key));
    }

    ClusterSettings toSettings(byte[] hashKey) {
      return ClusterSettings.newBuilder()
          .setFlowHashKey(ByteString.copyFrom(hashKey))
          .setGuePort(guePort)
          .setRowBits(rowBits)
          .setSettleSeconds(settleSeconds)
          .setCheckIntervalMillis(checkIntervalMillis)
          .setCheckTimeoutMillis(checkTimeoutMillis)
          .setHealthThreshold(healthThreshold)
          .setNicHashKey(nicHashKey)
          .build();
    }
  }

  private Coordinator(
      CloseStack closer,
      Server server,
      ClusterStore store,
      Membership membership,
      DirectorSyncServer sync,
      Optional<EmbeddedZooKeeper> embedded,
      StatusRegistry<DirectorStatus> directors,
      StatusRegistry<AgentStatus> agents,
      CuratorFramework zk,
      AdminServer admin,
      GrpcServerMetrics grpcMetrics) {
    this.closer = closer;
    this.server = server;
    this.store = store;
    this.membership = membership;
    this.sync = sync;
    this.embedded = embedded;
    this.directors = directors;
    this.agents = agents;
    this.zk = zk;
    this.admin = admin;
    this.grpcMetrics = grpcMetrics;
  }

  public static Coordinator start(Config config) throws Exception {
    CloseStack closer = new CloseStack();
    try {
      Optional<EmbeddedZooKeeper> embedded = Optional.empty();
      String connect;
      if (config.zookeeper().isPresent()) {
        connect = config.zookeeper().get();
      } else {
        EmbeddedZooKeeper zk =
            closer.push(
                EmbeddedZooKeeper.start(
                    config.dataDir().resolve("zookeeper"), new InetSocketAddress("127.0.0.1", 0)));
        embedded = Optional.of(zk);
        connect = zk.connectString();
      }
      CuratorFramework zk = curator(connect, config);
      closer.push(zk::close);
      zk.start();
      if (!zk.blockUntilConnected(30, TimeUnit.SECONDS)) {
        throw new IOException("no ZooKeeper reachable at " + connect + " within 30 s");
      }
      byte[] hashKey = new byte[16];
      new SecureRandom().nextBytes(hashKey);
      ClusterStore store =
          closer.push(ClusterStore.open(zk, config.root(), config.cluster().toSettings(hashKey)));
      if (store.current().getSettings().getRowBits() != config.cluster().rowBits()) {
        log.warn(
            "this cluster's tables have 2^{} rows (set when it was created); --row-bits {} is ignored",
            store.current().getSettings().getRowBits(),
            config.cluster().rowBits());
      }
      Membership membership = new Membership(zk, config.root(), config.id(), config.advertise());
      closer.push(membership);
      membership.start();
      Settler settler = closer.push(new Settler(store, membership, Clock.systemUTC()));
      settler.start();
      StatusRegistry<DirectorStatus> registry =
          closer.push(
              new StatusRegistry<>(
                  zk,
                  config.root() + "/directors",
                  config.id(),
                  DirectorStatus.parser(),
                  DirectorStatus::getId,
                  DirectorStatus::getAppliedAtMillis,
                  d -> d.toBuilder().clearAppliedAtMillis().build()));
      TableCompiler compiler = new TableCompiler();
      DirectorSyncServer sync = closer.push(new DirectorSyncServer(store, compiler, registry));
      StatusRegistry<AgentStatus> agentRegistry =
          closer.push(
              new StatusRegistry<>(
                  zk,
                  config.root() + "/agents",
                  config.id(),
                  AgentStatus.parser(),
                  AgentStatus::getId,
                  AgentStatus::getReportedAtMillis,
                  a -> a.toBuilder().clearReportedAtMillis().build()));
      ProxyAgentServer agents =
          closer.push(new ProxyAgentServer(zk, store, registry, agentRegistry, Clock.systemUTC()));
      BackendKeeper backends =
          closer.push(
              new BackendKeeper(
                  zk, store, compiler, membership, agentRegistry, registry, Clock.systemUTC()));
      backends.start();
      AdminServer admin =
          new AdminServer(store, compiler, registry, agentRegistry, membership, Clock.systemUTC());
      if (config.access().allowsAll()) {
        log.warn(
            "no access policy: every caller may administer this cluster; give --access-file outside a"
                + " trusted network");
      }
      Authorizer authorizer = new Authorizer(config.access(), methodRoles());
      // The last interceptor runs first: refusals are counted too.
      GrpcServerMetrics grpcMetrics = new GrpcServerMetrics("veer_coordinator");
      Server server =
          NettyServerBuilder.forAddress(config.listen(), Transport.serverCredentials(config.tls()))
              .addService(ServerInterceptors.intercept(admin, authorizer, grpcMetrics))
              .addService(ServerInterceptors.intercept(sync, authorizer, grpcMetrics))
              .addService(ServerInterceptors.intercept(agents, authorizer, grpcMetrics))
              .permitKeepAliveTime(10, TimeUnit.SECONDS)
              .build()
              .start();
      closer.push(
          () -> {
            server.shutdown();
            try {
              server.awaitTermination(2, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
            server.shutdownNow();
          });
      log.info(
          "coordinator {} serving on {} (state version {}, {})",
          config.id(),
          config.listen(),
          store.current().getVersion(),
          config.tls().isPresent() ? "TLS" : "plaintext");
      return new Coordinator(
          closer,
          server,
          store,
          membership,
          sync,
          embedded,
          registry,
          agentRegistry,
          zk,
          admin,
          grpcMetrics);
    } catch (Throwable t) {
      closer.close();
      throw t;
    }
  }

  private static CuratorFramework curator(String connect, Config config) {
    CuratorFrameworkFactory.Builder builder =
        CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(config.sessionTimeoutMillis())
            .connectionTimeoutMs(5_000)
            .retryPolicy(new ExponentialBackoffRetry(100, 6, 2_000));
    if (config.zookeeperDigest().isPresent()) {
      // Nodes Veer creates are readable and writable only by this identity.
      builder
          .authorization("digest", config.zookeeperDigest().get().getBytes(StandardCharsets.UTF_8))
          .aclProvider(
              new ACLProvider() {
                @Override
                public List<ACL> getDefaultAcl() {
                  return ZooDefs.Ids.CREATOR_ALL_ACL;
                }

                @Override
                public List<ACL> getAclForPath(String path) {
                  return ZooDefs.Ids.CREATOR_ALL_ACL;
                }
              });
    }
    return builder.build();
  }

  /** Which roles may call which method. */
  static ImmutableMap<String, ImmutableSet<Role>> methodRoles() {
    ImmutableSet<Role> read = ImmutableSet.of(Role.ADMIN, Role.READER);
    ImmutableSet<Role> write = ImmutableSet.of(Role.ADMIN);
    ImmutableMap.Builder<String, ImmutableSet<Role>> roles = ImmutableMap.builder();
    for (var method : AdminServiceGrpc.getServiceDescriptor().getMethods()) {
      String name = method.getBareMethodName();
      boolean reads =
          name.startsWith("Get") || name.startsWith("List") || name.startsWith("Lookup");
      roles.put(method.getFullMethodName(), reads ? read : write);
    }
    roles.put(DirectorSyncGrpc.getSyncMethod().getFullMethodName(), ImmutableSet.of(Role.DIRECTOR));
    roles.put(
        ProxyAgentServiceGrpc.getConnectMethod().getFullMethodName(), ImmutableSet.of(Role.AGENT));
    return roles.build();
  }

  /** What this coordinator knows of the cluster, for its metrics endpoint. */
  public List<Metric> metrics() throws Exception {
    ClusterState state = store.current();
    List<DirectorStatus> known = directors.all();
    long converged =
        known.stream().filter(d -> d.getAppliedVersion() == state.getVersion()).count();
    Map<List<String>, Integer> backends =
        new java.util.TreeMap<>(java.util.Comparator.comparing(Object::toString));
    for (var service : state.getServicesList()) {
      for (var backend : service.getBackendsList()) {
        backends.merge(
            List.of(
                service.getName(),
                backend.getState().name().toLowerCase(java.util.Locale.ROOT),
                backend.getHealth().name().toLowerCase(java.util.Locale.ROOT)),
            1,
            Integer::sum);
      }
    }
    List<Metric.Sample> backendSamples = new java.util.ArrayList<>();
    backends.forEach(
        (k, n) ->
            backendSamples.add(
                Metric.Sample.of(
                    Map.of("service", k.get(0), "state", k.get(1), "health", k.get(2)), n)));
    List<Metric.Sample> outOfHopsRows = new java.util.ArrayList<>();
    List<Metric.Sample> outOfHopsFlows = new java.util.ArrayList<>();
    List<Metric.Sample> generations = new java.util.ArrayList<>();
    List<Metric.Sample> retainedRows = new java.util.ArrayList<>();
    List<Metric.Sample> weights = new java.util.ArrayList<>();
    List<Metric.Sample> primaryRows = new java.util.ArrayList<>();
    for (var service : admin.services().getServicesList()) {
      Map<String, String> label = Map.of("service", service.getSpec().getName());
      for (var backend : service.getBackendsList()) {
        Map<String, String> labels =
            Map.of("service", service.getSpec().getName(), "backend", backend.getAddress());
        weights.add(Metric.Sample.of(labels, backend.getWeight()));
        primaryRows.add(Metric.Sample.of(labels, backend.getPrimaryRows()));
      }
      outOfHopsRows.add(Metric.Sample.of(label, service.getRowsOutOfHops()));
      outOfHopsFlows.add(Metric.Sample.of(label, service.getFlowsOutOfHops()));
      generations.add(Metric.Sample.of(label, service.getRetainedGenerations()));
      retainedRows.add(
          Metric.Sample.of(
              label,
              service.getBackendsList().stream()
                  .mapToLong(dev.veer.proto.admin.v1.Backend::getRetainedRows)
                  .sum()));
    }
    return ImmutableList.<Metric>builder()
        .add(
            Metric.counter(
                "veer_coordinator_snapshots_too_large_total",
                "Snapshots not sent to a director because they were larger than it accepts (its"
                    + " status names the version and the sizes).",
                List.of(Metric.Sample.of(sync.snapshotsTooLarge()))),
            Metric.counter(
                "veer_coordinator_status_writes_total",
                "ZooKeeper writes of the members' status znodes by this coordinator: on a change of"
                    + " a status, or a heartbeat of an unchanged one.",
                List.of(
                    Metric.Sample.of(Map.of("members", "directors"), directors.writes()),
                    Metric.Sample.of(Map.of("members", "agents"), agents.writes()))),
            Metric.gauge(
                "veer_coordinator_rows_out_of_hops",
                "Table rows with more backends that may own flows in them than a row has hops.",
                outOfHopsRows),
            Metric.gauge(
                "veer_coordinator_flows_out_of_hops",
                "Live flows, by the proxies' reports, in rows that do not list their owner.",
                outOfHopsFlows),
            Metric.gauge(
                "veer_coordinator_retained_generations",
                "Earlier backend sets kept until their proxies report their flows.",
                generations),
            Metric.gauge(
                "veer_coordinator_backend_weight",
                "A backend's weight: its share of primary rows relative to the others'.",
                weights),
            Metric.gauge(
                "veer_coordinator_backend_primary_rows",
                "Rows whose primary a backend is in its service's current table.",
                primaryRows),
            Metric.gauge(
                "veer_coordinator_evidence_rows",
                "Rows that keep a backend other than the primary because its proxy reports flows"
                    + " there.",
                retainedRows),
            Metric.gauge(
                "veer_coordinator_state_version",
                "The desired state's version.",
                state.getVersion()),
            Metric.gauge(
                "veer_coordinator_published_version",
                "The newest version compiled and offered to directors.",
                publishedVersion()),
            Metric.gauge(
                "veer_coordinator_leader", "1 on the leader.", membership.isLeader() ? 1 : 0),
            Metric.gauge(
                "veer_coordinator_zookeeper_connected",
                "1 while the ZooKeeper session is connected.",
                zk.getZookeeperClient().isConnected() ? 1 : 0),
            Metric.gauge(
                "veer_coordinator_directors",
                "Directors connected to any coordinator.",
                known.size()),
            Metric.gauge(
                "veer_coordinator_directors_converged",
                "Directors that run the current version.",
                converged),
            Metric.gauge(
                "veer_coordinator_agents",
                "Proxy agents connected to any coordinator.",
                agents.all().size()),
            Metric.gauge(
                "veer_coordinator_backends",
                "Backends by service, state and health.",
                backendSamples))
        .addAll(grpcMetrics.metrics())
        .build();
  }

  /** The admin API's implementation, for the status page's reads. */
  public AdminServer admin() {
    return admin;
  }

  /** The port the gRPC server listens on (useful when asked for port 0). */
  public int port() {
    return server.getPort();
  }

  public ClusterStore store() {
    return store;
  }

  public Membership membership() {
    return membership;
  }

  /** The version of the newest state whose tables are compiled and offered to directors. */
  public long publishedVersion() {
    return sync.publishedVersion();
  }

  public Optional<String> embeddedZooKeeper() {
    return embedded.map(EmbeddedZooKeeper::connectString);
  }

  @Override
  public void close() throws Exception {
    closer.close();
  }
}
