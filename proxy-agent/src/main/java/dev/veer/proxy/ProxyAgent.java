package dev.veer.proxy;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.protobuf.ByteString;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.lifecycle.CloseStack;
import dev.veer.metrics.Metric;
import dev.veer.proto.proxy.v1.AgentReport;
import dev.veer.proto.proxy.v1.AgentUpdate;
import dev.veer.proto.proxy.v1.HealthReport;
import dev.veer.proto.proxy.v1.LoadReport;
import dev.veer.proto.proxy.v1.ProxyAgentServiceGrpc;
import dev.veer.proto.proxy.v1.Register;
import dev.veer.proto.proxy.v1.ServiceHealth;
import dev.veer.proto.proxy.v1.ServiceTarget;
import dev.veer.proto.types.v1.Health;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.proxy.dataplane.SocketTable;
import dev.veer.proxy.evidence.ServiceFlows;
import dev.veer.proxy.health.ServiceCheck;
import dev.veer.transport.BearerToken;
import dev.veer.transport.Reconnecting;
import dev.veer.transport.TlsFiles;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A proxy host's daemon: the proxy program on one interface, its allow-list kept by the
 * coordinators, and the host's services checked and reported (health with how many checks in a row
 * agree, and live connections). Detaches cleanly when closed.
 */
public final class ProxyAgent implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ProxyAgent.class);
  private static final int DEFAULT_INTERVAL_MILLIS = 1000;

  private final Config config;
  private final CloseStack resources;
  private final ProxyDataplane dataplane;
  private final Reconnecting streams;
  private final ScheduledExecutorService checks =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-agent-checks").daemon(true).factory());
  private final Map<String, Run> runs = new java.util.concurrent.ConcurrentHashMap<>();
  private final Map<String, Long> live = new java.util.concurrent.ConcurrentHashMap<>();
  private volatile StreamObserver<AgentReport> reports;
  private volatile AgentUpdate update = AgentUpdate.getDefaultInstance();

  /** The load report last sent on the current stream: an unchanged one is not sent again. */
  private LoadReport lastLoad;

  /** What an agent needs to start; built with {@link #builder}. */
  public static final class Config {
    private final String id;
    private final List<String> coordinators;
    private final NetworkNamespace namespace;
    private final String ifname;
    private final XdpMode mode;
    private final List<InetAddress> addresses;
    private final int guePort;
    private final Optional<TlsFiles> tls;
    private final Optional<BearerToken> token;
    private final Optional<Path> pinDir;
    private final int flowEntries;
    private final Optional<Path> coLocatedWith;

    private Config(Builder b) {
      checkArgument(
          b.id != null && b.id.matches("[A-Za-z0-9._-]{1,64}"),
          "agent id '%s': 1-64 of A-Z a-z 0-9 . _ -",
          b.id);
      checkArgument(!b.coordinators.isEmpty(), "give at least one coordinator (host:port)");
      checkArgument(
          !b.addresses.isEmpty(),
          "give the host's backend addresses (the ones in the services' tables)");
      checkArgument(
          b.flowEntries >= 1 && b.flowEntries <= ProxyDataplane.FlowTracking.MAX_ENTRIES,
          "the flow table holds 1 to %s connections per address family, not %s",
          ProxyDataplane.FlowTracking.MAX_ENTRIES,
          b.flowEntries);
      this.id = b.id;
      this.coordinators = List.copyOf(b.coordinators);
      this.namespace = b.namespace;
      this.ifname = b.ifname;
      this.mode = b.mode;
      this.addresses = List.copyOf(b.addresses);
      this.guePort = b.guePort;
      this.tls = b.tls;
      this.token = b.token;
      this.pinDir = b.pinDir;
      this.flowEntries = b.flowEntries;
      checkArgument(
          b.coLocatedWith.isEmpty() || b.flowEntries == VeerAbi.FLOWS_DEFAULT,
          "a co-located host's flow table is the director's, of %s connections per family: do"
              + " not set its size here",
          VeerAbi.FLOWS_DEFAULT);
      this.coLocatedWith = b.coLocatedWith;
    }

    /**
     * An agent for the proxy host whose backend addresses (one per family) are {@code addresses},
     * on interface {@code ifname} of the current namespace, natively attached.
     */
    public static Builder builder(
        String id,
        List<String> coordinators,
        String ifname,
        List<? extends InetAddress> addresses) {
      return new Builder(id, coordinators, ifname, addresses);
    }

    public String id() {
      return id;
    }

    public List<String> coordinators() {
      return coordinators;
    }

    public NetworkNamespace namespace() {
      return namespace;
    }

    public String ifname() {
      return ifname;
    }

    public XdpMode mode() {
      return mode;
    }

    public List<InetAddress> addresses() {
      return addresses;
    }

    public int guePort() {
      return guePort;
    }

    public Optional<TlsFiles> tls() {
      return tls;
    }

    public Optional<BearerToken> token() {
      return token;
    }

    public Optional<Path> pinDir() {
      return pinDir;
    }

    public int flowEntries() {
      return flowEntries;
    }

    /**
     * The pin directory of the co-located director on this host, whose program this agent shares
     * (co-located mode); empty for a proxy of its own.
     */
    public Optional<Path> coLocatedWith() {
      return coLocatedWith;
    }

    public static final class Builder {
      private final String id;
      private final List<String> coordinators;
      private final String ifname;
      private final List<InetAddress> addresses;
      private NetworkNamespace namespace = NetworkNamespace.current();
      private XdpMode mode = XdpMode.NATIVE;
      private int guePort = VeerAbi.GUE_PORT_DEFAULT;
      private Optional<TlsFiles> tls = Optional.empty();
      private Optional<BearerToken> token = Optional.empty();
      private Optional<Path> pinDir = Optional.empty();
      private int flowEntries = VeerAbi.FLOWS_DEFAULT;
      private Optional<Path> coLocatedWith = Optional.empty();

      private Builder(
          String id,
          List<String> coordinators,
          String ifname,
          List<? extends InetAddress> addresses) {
        this.id = id;
        this.coordinators = coordinators;
        this.ifname = ifname;
        this.addresses = List.copyOf(addresses);
      }

      public Builder namespace(NetworkNamespace value) {
        this.namespace = value;
        return this;
      }

      public Builder mode(XdpMode value) {
        this.mode = value;
        return this;
      }

      public Builder guePort(int value) {
        this.guePort = value;
        return this;
      }

      public Builder tls(Optional<TlsFiles> value) {
        this.tls = value;
        return this;
      }

      public Builder token(Optional<BearerToken> value) {
        this.token = value;
        return this;
      }

      /** Where the flow table's link is pinned so that it outlives a crashed agent. */
      public Builder pinDir(Path value) {
        this.pinDir = Optional.of(value);
        return this;
      }

      /**
       * Co-located mode: this host is a director too, and this agent shares the program the
       * director daemon attached, through the maps it pinned in {@code directorPinDir}.
       */
      public Builder coLocatedWith(Path directorPinDir) {
        this.coLocatedWith = Optional.of(directorPinDir);
        return this;
      }

      public Builder flowEntries(int value) {
        this.flowEntries = value;
        return this;
      }

      public Config build() {
        return new Config(this);
      }
    }
  }

  /** Consecutive checks of one service that found the same health. */
  private record Run(Health health, int count) {}

  private ProxyAgent(Config config, CloseStack resources, ProxyDataplane dataplane) {
    this.config = config;
    this.resources = resources;
    this.dataplane = dataplane;
    this.streams =
        new Reconnecting(
            "proxy-agent",
            config.coordinators(),
            target -> Transport.channel(target, config.tls()),
            this::session);
  }

  public static ProxyAgent start(Config config) throws Exception {
    CloseStack resources = new CloseStack();
    try {
      ProxyDataplane dataplane =
          resources.push(
              config.coLocatedWith().isPresent()
                  ? ProxyDataplane.sharing(
                      config.namespace(),
                      config.coLocatedWith().get(),
                      config.guePort(),
                      config.addresses(),
                      config.pinDir())
                  : ProxyDataplane.attach(
                      config.namespace(),
                      config.ifname(),
                      config.mode(),
                      config.guePort(),
                      config.addresses(),
                      config.pinDir(),
                      config.flowEntries()));
      ProxyAgent agent = new ProxyAgent(config, resources, dataplane);
      resources.push(agent.checks::shutdownNow);
      resources.push(agent.streams);
      agent.streams.start();
      agent.scheduleChecks(DEFAULT_INTERVAL_MILLIS);
      log.info(
          "proxy agent {} on {} in {}, coordinators {}",
          config.id(),
          config.ifname(),
          config.namespace(),
          config.coordinators());
      return agent;
    } catch (Exception | Error e) {
      resources.close();
      throw e;
    }
  }

  public ProxyDataplane dataplane() {
    return dataplane;
  }

  private void scheduleChecks(long intervalMillis) {
    checks.schedule(
        () -> {
          try {
            checkAndReport();
          } catch (RuntimeException e) {
            log.warn("checks failed: {}", e.toString());
          }
          long next =
              update.getCheckIntervalMillis() > 0
                  ? update.getCheckIntervalMillis()
                  : DEFAULT_INTERVAL_MILLIS;
          scheduleChecks(next);
        },
        intervalMillis,
        TimeUnit.MILLISECONDS);
  }

  private void checkAndReport() {
    AgentUpdate current = update;
    long dataPlaneVersion = current.getDataPlaneVersion();
    int timeout = current.getCheckTimeoutMillis() > 0 ? current.getCheckTimeoutMillis() : 500;
    HealthReport.Builder health = HealthReport.newBuilder();
    Set<String> names = new HashSet<>();
    List<ServiceCheck.Result> results =
        ServiceCheck.checkAll(config.namespace(), current.getServicesList(), timeout);
    for (int i = 0; i < results.size(); i++) {
      ServiceTarget target = current.getServices(i);
      ServiceCheck.Result result = results.get(i);
      names.add(target.getName());
      Run run =
          runs.merge(
              target.getName(),
              new Run(result.health(), 1),
              (before, now) ->
                  before.health() == now.health()
                      ? new Run(now.health(), before.count() + 1)
                      : now);
      if (run.count() == 1) {
        if (result.health() == Health.HEALTHY) {
          log.info("service {}: {}", target.getName(), result.detail());
        } else {
          log.warn("service {} fails its check: {}", target.getName(), result.detail());
        }
      }
      health.addServices(
          ServiceHealth.newBuilder()
              .setService(target.getName())
              .setHealth(result.health())
              .setDetail(result.detail())
              .setConsecutive(run.count()));
    }
    // Read after the version was taken: these flows were placed by tables at least that new.
    LoadReport load =
        ServiceFlows.report(SocketTable.read(config.namespace()), current, dataPlaneVersion);
    load.getServicesList().forEach(l -> live.put(l.getService(), l.getLiveConnections()));
    runs.keySet().retainAll(names);
    live.keySet().retainAll(names);
    StreamObserver<AgentReport> out = reports;
    if (out != null && !names.isEmpty()) {
      synchronized (this) {
        out.onNext(AgentReport.newBuilder().setHealth(health).build());
        if (!load.equals(lastLoad)) {
          out.onNext(AgentReport.newBuilder().setLoad(load).build());
          lastLoad = load;
        }
      }
    }
  }

  private String session(ManagedChannel channel, String target) throws InterruptedException {
    ProxyAgentServiceGrpc.ProxyAgentServiceStub stub = ProxyAgentServiceGrpc.newStub(channel);
    if (config.token().isPresent()) {
      stub = stub.withCallCredentials(config.token().get());
    }
    CountDownLatch ended = new CountDownLatch(1);
    String[] why = {"stream ended"};
    StreamObserver<AgentReport> out =
        stub.connect(
            new StreamObserver<>() {
              @Override
              public void onNext(AgentUpdate value) {
                apply(value);
              }

              @Override
              public void onError(Throwable t) {
                why[0] = Status.fromThrowable(t) + "; the allow-list stays as it was";
                ended.countDown();
              }

              @Override
              public void onCompleted() {
                ended.countDown();
              }
            });
    synchronized (this) {
      out.onNext(
          AgentReport.newBuilder()
              .setRegister(
                  Register.newBuilder()
                      .setAgentId(config.id())
                      .setCoLocated(config.coLocatedWith().isPresent())
                      .addAllAddresses(
                          config.addresses().stream().map(InetAddress::getHostAddress).toList()))
              .build());
      lastLoad = null; // a new stream, perhaps to another coordinator: report afresh
    }
    reports = out;
    log.info("connected to coordinator {}", target);
    try {
      ended.await();
      return why[0];
    } finally {
      reports = null;
    }
  }

  private void apply(AgentUpdate next) {
    Set<InetAddress> peers = new HashSet<>();
    for (ByteString peer : next.getAllowList().getPeersList()) {
      try {
        peers.add(InetAddress.getByAddress(peer.toByteArray()));
      } catch (UnknownHostException e) {
        log.warn("ignoring an allow-list entry of {} bytes", peer.size());
      }
    }
    dataplane.setPeers(peers);
    Set<java.net.InetSocketAddress> endpoints = new HashSet<>();
    Set<ServiceKey> served = new HashSet<>();
    for (ServiceTarget target : next.getServicesList()) {
      try {
        InetAddress vip = InetAddress.getByAddress(target.getVip().toByteArray());
        endpoints.add(new java.net.InetSocketAddress(vip, target.getPort()));
        served.add(
            new ServiceKey(
                vip,
                target.getPort(),
                target.getProtocol() == Protocol.UDP ? ServiceKey.UDP : ServiceKey.TCP));
      } catch (UnknownHostException e) {
        log.warn(
            "ignoring service {}: its VIP has {} bytes", target.getName(), target.getVip().size());
      }
    }
    try {
      dataplane.setServed(served);
    } catch (IllegalArgumentException e) {
      // Fail closed: what was served stays served, the new services are not delivered.
      log.error(
          "cannot serve the {} services the coordinators gave: {}", served.size(), e.getMessage());
    }
    dataplane.serveEndpoints(endpoints);
    AgentUpdate before = update;
    update = next;
    // Updates also come with every data-plane version; say only what an operator would notice.
    if (!before.getAllowList().getPeersList().equals(next.getAllowList().getPeersList())
        || !before.getServicesList().equals(next.getServicesList())
        || before.getCheckIntervalMillis() != next.getCheckIntervalMillis()) {
      log.info(
          "allow-list of {} directors and proxies; checking {} services every {} ms",
          peers.size(),
          next.getServicesCount(),
          next.getCheckIntervalMillis());
    }
  }

  /** What this agent counts and last found, for its metrics endpoint. */
  public List<Metric> metrics() {
    List<Metric.Sample> verdicts = new java.util.ArrayList<>();
    dataplane
        .verdicts()
        .forEach(
            (verdict, count) ->
                verdicts.add(
                    Metric.Sample.of(
                        Map.of("verdict", verdict.name().toLowerCase(java.util.Locale.ROOT)),
                        count)));
    List<Metric.Sample> healthy = new java.util.ArrayList<>();
    runs.forEach(
        (service, run) ->
            healthy.add(
                Metric.Sample.of(
                    Map.of("service", service), run.health() == Health.HEALTHY ? 1 : 0)));
    List<Metric.Sample> connections = new java.util.ArrayList<>();
    live.forEach(
        (service, count) -> connections.add(Metric.Sample.of(Map.of("service", service), count)));
    List<Metric> out =
        new java.util.ArrayList<>(
            List.of(
                Metric.counter(
                    "veer_proxy_packets_total",
                    "Packets by the verdict the proxy program gave them"
                        + " (proxy_forward: second-chance forwards).",
                    verdicts),
                Metric.gauge(
                    "veer_proxy_flows",
                    "Connections in the proxy's flow table, handshakes included.",
                    dataplane.flowCount()),
                Metric.gauge(
                    "veer_proxy_flow_table_complete",
                    "1 while the flow table holds every connection, so that"
                        + " packets it does not know are forwarded without a socket lookup.",
                    dataplane.flowTableComplete() ? 1 : 0),
                Metric.gauge(
                    "veer_proxy_allowed_peers",
                    "Directors and proxies in the allow-list.",
                    dataplane.program().allowedPeers().size()),
                Metric.gauge(
                    "veer_proxy_service_healthy",
                    "1 if the service passed its last check here.",
                    healthy),
                Metric.gauge(
                    "veer_proxy_service_live_connections",
                    "Established connections to the service's VIP:port.",
                    connections),
                Metric.gauge(
                    "veer_proxy_coordinator_connected",
                    "1 while a coordinator stream is open.",
                    reports == null ? 0 : 1)));
    dataplane
        .attachment()
        .ifPresent(
            a -> out.addAll(Metric.attachment("veer_proxy", a.attached(), a.reattachments())));
    return out;
  }

  /** Stops reporting, detaches the program and releases its maps. */
  @Override
  public void close() throws Exception {
    resources.close();
  }
}
