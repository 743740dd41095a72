package dev.veer.director;

import static com.google.common.base.Preconditions.checkArgument;

import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DataplaneObject;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.ServiceStats;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.director.health.Prober;
import dev.veer.director.routes.RouteAnnouncer;
import dev.veer.director.routes.SpeakerSessions;
import dev.veer.director.sync.CoordinatorLink;
import dev.veer.director.sync.SnapshotApplier;
import dev.veer.lifecycle.CloseStack;
import dev.veer.metrics.Metric;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.Hello;
import dev.veer.proto.director.v1.RouteReport;
import dev.veer.proto.types.v1.BgpSession;
import dev.veer.transport.BearerToken;
import dev.veer.transport.TlsFiles;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A director host's daemon: the director XDP program on one interface, fed with the tables the
 * coordinators stream to it. Until the first snapshot arrives it has no services and passes
 * everything; without a coordinator it keeps forwarding with the last tables it applied.
 */
public final class DirectorDaemon implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DirectorDaemon.class);

  /** A route report unchanged is sent again after this long, for coordinators connected since. */
  private static final Duration ROUTE_REPORT_REFRESH = Duration.ofSeconds(5);

  private final CloseStack resources;
  private final DirectorDataplane dataplane;
  private final SnapshotApplier applier;
  private final CoordinatorLink link;
  private final Optional<Prober> prober;
  private final Optional<RouteAnnouncer> announcer;
  private final Optional<SpeakerSessions> speaker;
  private final ScheduledExecutorService routeReports =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-route-report").daemon(true).factory());
  private RouteReport lastRouteReport;
  private long lastRouteReportNanos;
  private final Duration withdrawWait;
  private final Object applied = new Object();
  private long acknowledged;

  /** What a director daemon needs to start; built with {@link #builder}. */
  public static final class Config {
    private final String id;
    private final List<String> coordinators;
    private final NetworkNamespace namespace;
    private final Optional<String> ifname;
    private final XdpMode mode;
    private final Optional<Inet4Address> source4;
    private final Optional<Inet6Address> source6;
    private final int rowBits;
    private final Optional<TlsFiles> tls;
    private final Optional<BearerToken> token;
    private final Optional<Path> pinDir;
    private final Optional<Integer> announceTable;
    private final Duration withdrawWait;
    private final Optional<Path> speakerSocket;
    private final int maxSnapshotBytes;
    private final boolean coLocated;
    private final boolean rxHash;

    private Config(Builder b) {
      checkArgument(
          b.id != null && b.id.matches("[A-Za-z0-9._-]{1,64}"),
          "director id '%s': 1-64 of A-Z a-z 0-9 . _ -",
          b.id);
      checkArgument(!b.coordinators.isEmpty(), "give at least one coordinator (host:port)");
      checkArgument(
          b.source4.isPresent() || b.source6.isPresent(),
          "give the director's own IPv4 and/or IPv6 address: it is the outer source of what it sends");
      checkArgument(
          b.pinDir.isEmpty() || b.ifname.isPresent(),
          "pinning is for a director attached to an interface");
      this.id = b.id;
      this.coordinators = List.copyOf(b.coordinators);
      this.namespace = b.namespace;
      this.ifname = b.ifname;
      this.mode = b.mode;
      this.source4 = b.source4;
      this.source6 = b.source6;
      this.rowBits = b.rowBits;
      this.tls = b.tls;
      this.token = b.token;
      this.pinDir = b.pinDir;
      checkArgument(
          b.announceTable.isEmpty() || b.ifname.isPresent(),
          "announcing routes is for a director attached to an interface");
      checkArgument(
          b.announceTable.isEmpty() || (b.announceTable.get() >= 1 && b.announceTable.get() < 253),
          "the announcement table is a kernel routing table 1..252, not %s",
          b.announceTable.orElse(0));
      this.announceTable = b.announceTable;
      this.withdrawWait = b.withdrawWait;
      this.speakerSocket = b.speakerSocket;
      checkArgument(
          b.maxSnapshotBytes >= 1024,
          "the largest snapshot is at least 1 KiB, not %s bytes",
          b.maxSnapshotBytes);
      this.maxSnapshotBytes = b.maxSnapshotBytes;
      checkArgument(
          !b.coLocated || b.pinDir.isPresent(),
          "a co-located director shares its maps with the proxy agent through its pin directory:"
              + " give one");
      this.coLocated = b.coLocated;
      checkArgument(
          !b.rxHash || (b.pinDir.isPresent() && !b.coLocated),
          "RX-hash mode is for a director attached to an interface with pinned maps, not"
              + " co-located (the kernel keeps device-bound programs out of shared use)");
      this.rxHash = b.rxHash;
    }

    /** A director in the current namespace, natively attached, with the default row count. */
    public static Builder builder(String id, List<String> coordinators) {
      return new Builder(id, coordinators);
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

    /**
     * The interface to attach to; empty loads the program without attaching (tests, benchmarks).
     */
    public Optional<String> ifname() {
      return ifname;
    }

    public XdpMode mode() {
      return mode;
    }

    public Optional<Inet4Address> source4() {
      return source4;
    }

    public Optional<Inet6Address> source6() {
      return source6;
    }

    public int rowBits() {
      return rowBits;
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

    /** Whether the flow hash comes from the NIC's RX hash (a device-bound program). */
    public boolean rxHash() {
      return rxHash;
    }

    /** Whether this host is a proxy too: the co-located program, shared with the proxy agent. */
    public boolean coLocated() {
      return coLocated;
    }

    /** The kernel routing table the announced VIPs go to, for the host's BGP speaker. */
    public Optional<Integer> announceTable() {
      return announceTable;
    }

    /** How long a director taken out for good waits between withdrawing and detaching. */
    public Duration withdrawWait() {
      return withdrawWait;
    }

    /** The largest snapshot this director accepts from a coordinator, in bytes. */
    public int maxSnapshotBytes() {
      return maxSnapshotBytes;
    }

    /** The host BGP speaker's control socket, read for its sessions' state. */
    public Optional<Path> speakerSocket() {
      return speakerSocket;
    }

    public static final class Builder {
      private final String id;
      private final List<String> coordinators;
      private NetworkNamespace namespace = NetworkNamespace.current();
      private Optional<String> ifname = Optional.empty();
      private XdpMode mode = XdpMode.NATIVE;
      private Optional<Inet4Address> source4 = Optional.empty();
      private Optional<Inet6Address> source6 = Optional.empty();
      private int rowBits = VeerAbi.DEFAULT_ROW_BITS;
      private Optional<TlsFiles> tls = Optional.empty();
      private Optional<BearerToken> token = Optional.empty();
      private Optional<Path> pinDir = Optional.empty();
      private boolean coLocated;
      private boolean rxHash;
      private Optional<Integer> announceTable = Optional.empty();
      private Duration withdrawWait = Duration.ofSeconds(3);
      private Optional<Path> speakerSocket = Optional.empty();
      private int maxSnapshotBytes = CoordinatorLink.DEFAULT_MAX_SNAPSHOT_BYTES;

      private Builder(String id, List<String> coordinators) {
        this.id = id;
        this.coordinators = coordinators;
      }

      public Builder namespace(NetworkNamespace value) {
        this.namespace = value;
        return this;
      }

      public Builder attachTo(String interfaceName, XdpMode xdpMode) {
        this.ifname = Optional.of(interfaceName);
        this.mode = xdpMode;
        return this;
      }

      public Builder source4(Optional<Inet4Address> value) {
        this.source4 = value;
        return this;
      }

      public Builder source6(Optional<Inet6Address> value) {
        this.source6 = value;
        return this;
      }

      public Builder rowBits(int value) {
        this.rowBits = value;
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

      /**
       * Announce the VIPs this director can forward as host routes in kernel table {@code table}
       * (route health injection through the host's BGP speaker); 0: announce nothing.
       */
      public Builder announceTo(int table) {
        this.announceTable = table == 0 ? Optional.empty() : Optional.of(table);
        return this;
      }

      public Builder withdrawWait(Duration value) {
        this.withdrawWait = value;
        return this;
      }

      /**
       * The largest snapshot to accept: coordinators send nothing larger, and report this director
       * as unable to take a version whose snapshot would be.
       */
      public Builder maxSnapshotBytes(int value) {
        this.maxSnapshotBytes = value;
        return this;
      }

      /** Read the sessions of the host's BGP speaker (BIRD) from its control socket. */
      public Builder speakerSocket(Path value) {
        this.speakerSocket = Optional.of(value);
        return this;
      }

      /**
       * Co-located mode: the host is a proxy as well, on the same interface. The daemon loads the
       * co-located program, whose maps the proxy agent shares through the pin directory.
       */
      public Builder coLocated(boolean value) {
        this.coLocated = value;
        return this;
      }

      /**
       * RX-hash mode: the flow hash is the NIC's RSS hash, read by a program bound to the
       * interface's driver; the cluster must be created with the NICs' key.
       */
      public Builder rxHash(boolean value) {
        this.rxHash = value;
        return this;
      }

      /**
       * Where the program's maps and link are pinned so that a restarted daemon takes them over.
       */
      public Builder pinDir(Path value) {
        this.pinDir = Optional.of(value);
        return this;
      }

      public Config build() {
        return new Config(this);
      }
    }
  }

  private DirectorDaemon(
      CloseStack resources,
      DirectorDataplane dataplane,
      SnapshotApplier applier,
      CoordinatorLink link,
      Optional<Prober> prober,
      Optional<RouteAnnouncer> announcer,
      Optional<SpeakerSessions> speaker,
      Duration withdrawWait) {
    this.resources = resources;
    this.dataplane = dataplane;
    this.applier = applier;
    this.link = link;
    this.prober = prober;
    this.announcer = announcer;
    this.speaker = speaker;
    this.withdrawWait = withdrawWait;
  }

  /** The VIPs this director announces now (none without {@code --announce-table}). */
  public java.util.Set<java.net.InetAddress> announced() {
    return announcer
        .map(RouteAnnouncer::announced)
        .orElse(com.google.common.collect.ImmutableSet.of());
  }

  public static DirectorDaemon start(Config config) throws Exception {
    return start(config, v -> {});
  }

  /** Starts the daemon; {@code onApplied} hears every version applied and acknowledged. */
  public static DirectorDaemon start(Config config, LongConsumer onApplied) throws Exception {
    CloseStack resources = new CloseStack();
    try {
      // A key nobody knows until the coordinators send the cluster's: no service exists before
      // that.
      byte[] provisionalKey = new byte[16];
      new SecureRandom().nextBytes(provisionalKey);
      DirectorConfig initial =
          new DirectorConfig(
              provisionalKey,
              config.source4(),
              config.source6(),
              dev.veer.bpf.abi.VeerAbi.GUE_PORT_DEFAULT);
      DirectorDataplane dataplane;
      if (config.pinDir().isPresent()) {
        dataplane =
            DirectorDataplane.attachPinned(
                config.namespace(),
                config.ifname().orElseThrow(),
                config.mode(),
                initial,
                config.rowBits(),
                config.pinDir().get(),
                config.coLocated()
                    ? DataplaneObject.CO_LOCATED
                    : config.rxHash()
                        ? DataplaneObject.DIRECTOR_RX_HASH
                        : DataplaneObject.DIRECTOR);
      } else if (config.ifname().isPresent()) {
        dataplane =
            DirectorDataplane.attach(
                config.namespace(),
                config.ifname().get(),
                config.mode(),
                initial,
                config.rowBits());
      } else {
        dataplane = DirectorDataplane.detached(initial, config.rowBits());
      }
      resources.push(dataplane);
      SnapshotApplier applier = new SnapshotApplier(dataplane, config.source4(), config.source6());
      Hello identity =
          Hello.newBuilder()
              .setDirectorId(config.id())
              .setAddress(
                  config
                      .source4()
                      .map(a -> a.getHostAddress())
                      .orElseGet(() -> config.source6().orElseThrow().getHostAddress()))
              .setRowBits(config.rowBits())
              .setMaxSnapshotBytes(config.maxSnapshotBytes())
              .setCompactRows(true)
              .setIncremental(true)
              .setPackedRows(true)
              .setRowDeltas(true)
              .setCoLocated(config.coLocated())
              .setRxHash(config.rxHash())
              .addAllSourceAddresses(
                  java.util.stream.Stream.concat(
                          config.source4().stream(), config.source6().stream())
                      .map(a -> com.google.protobuf.ByteString.copyFrom(a.getAddress()))
                      .toList())
              .build();
      DirectorDaemon[] self = new DirectorDaemon[1];
      CoordinatorLink link =
          resources.push(
              new CoordinatorLink(
                  config.coordinators(),
                  config.tls(),
                  config.token(),
                  identity,
                  applier,
                  version -> {
                    onApplied.accept(version);
                    self[0].acknowledged(version);
                  }));
      Optional<RouteAnnouncer> announcer =
          config
              .announceTable()
              .map(
                  table ->
                      resources.push(
                          new RouteAnnouncer(
                              config.namespace(),
                              config.ifname().orElseThrow(),
                              table,
                              applier,
                              dataplane)));
      // Probes need the director's own path to the router; a detached program has none. A
      // co-located host has the VIPs on its own loopback: its probes would never leave it, so the
      // agents' checks alone decide health there.
      Optional<Prober> prober =
          config
              .ifname()
              .filter(i -> !config.coLocated())
              .map(
                  i ->
                      resources.push(
                          new Prober(
                              config.namespace(),
                              config.source4(),
                              config.source6(),
                              applier,
                              probes ->
                                  link.report(
                                      DirectorReport.newBuilder().setProbes(probes).build()),
                              // With route injection, only what this director announces reaches
                              // it through the router.
                              vip ->
                                  announcer.isEmpty()
                                      || announcer.get().announced().contains(vip))));
      Optional<SpeakerSessions> speaker =
          config.speakerSocket().map(socket -> resources.push(new SpeakerSessions(socket)));
      self[0] =
          new DirectorDaemon(
              resources,
              dataplane,
              applier,
              link,
              prober,
              announcer,
              speaker,
              config.withdrawWait());
      resources.push((AutoCloseable) self[0].routeReports::shutdownNow);
      link.start();
      prober.ifPresent(Prober::start);
      announcer.ifPresent(RouteAnnouncer::start);
      speaker.ifPresent(SpeakerSessions::start);
      self[0].routeReports.scheduleWithFixedDelay(
          self[0]::reportRoutes, 1, 1, java.util.concurrent.TimeUnit.SECONDS);
      log.info(
          "director {} on {} in {}, coordinators {}",
          config.id(),
          config.ifname().orElse("(detached)"),
          config.namespace(),
          config.coordinators());
      return self[0];
    } catch (Exception | Error e) {
      resources.close();
      throw e;
    }
  }

  /**
   * Tells the coordinators what this director announces and how its speaker's sessions are: at once
   * when that changed, else every few seconds (a coordinator connected since hears it too).
   */
  private void reportRoutes() {
    try {
      RouteReport.Builder report = RouteReport.newBuilder().setAnnouncing(announcer.isPresent());
      announcer.ifPresent(
          a -> {
            a.announced().stream()
                .map(vip -> com.google.protobuf.ByteString.copyFrom(vip.getAddress()))
                .sorted(com.google.protobuf.ByteString.unsignedLexicographicalComparator())
                .forEach(report::addAnnounced);
            report.setLastChange(a.lastChange());
          });
      speaker.ifPresent(
          s -> {
            report.setSpeakerRead(true).setSpeakerProblem(s.problem());
            for (SpeakerSessions.Session session : s.sessions()) {
              report.addSessions(
                  BgpSession.newBuilder()
                      .setName(session.name())
                      .setState(session.state())
                      .setInfo(session.info())
                      .setEstablished(session.established()));
            }
          });
      RouteReport built = report.build();
      long now = System.nanoTime();
      if (built.equals(lastRouteReport)
          && now - lastRouteReportNanos < ROUTE_REPORT_REFRESH.toNanos()) {
        return;
      }
      link.report(DirectorReport.newBuilder().setRoutes(built).build());
      lastRouteReport = built;
      lastRouteReportNanos = now;
    } catch (RuntimeException e) {
      log.warn("reporting routes to the coordinators: {}", e.toString());
    }
  }

  private void acknowledged(long version) {
    synchronized (applied) {
      acknowledged = Math.max(acknowledged, version);
      applied.notifyAll();
    }
  }

  public DirectorDataplane dataplane() {
    return dataplane;
  }

  /** The state version whose tables the data plane forwards with (0: none yet). */
  public long appliedVersion() {
    return applier.appliedVersion();
  }

  /** The coordinator it is connected to now, or "" while it has none. */
  public String coordinator() {
    return link.connectedTo();
  }

  /**
   * Waits until a version at least {@code version} is applied and acknowledged; false on timeout.
   */
  public boolean awaitVersion(long version, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    synchronized (applied) {
      while (acknowledged < version) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        applied.wait(Math.max(1, left / 1_000_000));
      }
    }
    return true;
  }

  /** What this director counts, for its metrics endpoint; read from the maps now. */
  public List<Metric> metrics() {
    List<Metric.Sample> verdicts = new ArrayList<>();
    dataplane
        .program()
        .verdicts()
        .forEach(
            (verdict, count) ->
                verdicts.add(
                    Metric.Sample.of(
                        Map.of("verdict", verdict.name().toLowerCase(java.util.Locale.ROOT)),
                        count)));
    // A co-located host's deliveries to itself are verdicts of the same program.
    dataplane
        .program()
        .colocatedVerdicts()
        .forEach(
            (verdict, count) ->
                verdicts.add(
                    Metric.Sample.of(
                        Map.of("verdict", verdict.name().toLowerCase(java.util.Locale.ROOT)),
                        count)));
    List<Metric.Sample> hashSources = new ArrayList<>();
    dataplane
        .program()
        .rxHashSources()
        .forEach(
            (source, count) ->
                hashSources.add(
                    Metric.Sample.of(
                        Map.of("source", source.name().toLowerCase(java.util.Locale.ROOT)),
                        count)));
    List<Metric.Sample> packets = new ArrayList<>();
    List<Metric.Sample> bytes = new ArrayList<>();
    List<Metric.Sample> drops = new ArrayList<>();
    for (SnapshotApplier.ProbeTarget service : applier.probeTargets()) {
      dataplane
          .entry(service.key())
          .ifPresent(
              entry -> {
                ServiceStats stats = dataplane.program().serviceStats(entry.statsSlot());
                Map<String, String> labels = Map.of("service", service.name());
                packets.add(Metric.Sample.of(labels, stats.packets()));
                bytes.add(Metric.Sample.of(labels, stats.bytes()));
                drops.add(Metric.Sample.of(labels, stats.drops()));
              });
    }
    List<Metric.Sample> backendPackets = new ArrayList<>();
    List<Metric.Sample> backendBytes = new ArrayList<>();
    dataplane
        .backendIndices()
        .forEach(
            (address, index) -> {
              long[] stats = dataplane.program().backendStats(index);
              Map<String, String> labels =
                  Map.of("backend", com.google.common.net.InetAddresses.toAddrString(address));
              backendPackets.add(Metric.Sample.of(labels, stats[0]));
              backendBytes.add(Metric.Sample.of(labels, stats[1]));
            });
    List<Metric> out =
        new ArrayList<>(
            List.of(
                Metric.counter(
                    "veer_director_packets_total",
                    "Packets by the verdict the director program gave them.",
                    verdicts),
                Metric.counter(
                    "veer_director_flow_hashes_total",
                    "RX-hash mode: where the flow hash of each packet to a service that hashes"
                        + " the client port came from.",
                    hashSources),
                Metric.counter(
                    "veer_director_backend_packets_total",
                    "Packets sent to a backend as its row's primary.",
                    backendPackets),
                Metric.counter(
                    "veer_director_backend_bytes_total",
                    "Bytes of those packets as received.",
                    backendBytes),
                Metric.counter(
                    "veer_director_service_packets_total",
                    "Packets encapsulated and sent, by service.",
                    packets),
                Metric.counter(
                    "veer_director_service_bytes_total",
                    "Bytes of those packets as received.",
                    bytes),
                Metric.counter(
                    "veer_director_service_drops_total",
                    "Packets of a service that were dropped.",
                    drops),
                Metric.gauge(
                    "veer_director_applied_version",
                    "The cluster state version the tables come from.",
                    appliedVersion()),
                Metric.gauge(
                    "veer_director_coordinator_connected",
                    "1 while a coordinator stream is open.",
                    coordinator().isEmpty() ? 0 : 1),
                Metric.gauge(
                    "veer_director_bpf_memlock_bytes",
                    "Kernel memory charged for the director's maps, its tables included.",
                    dataplane.memlockBytes())));
    announcer.ifPresent(a -> out.addAll(a.metrics()));
    speaker.ifPresent(s -> out.addAll(s.metrics()));
    dataplane
        .attachment()
        .ifPresent(
            a -> out.addAll(Metric.attachment("veer_director", a.attached(), a.reattachments())));
    return out;
  }

  /**
   * Takes this director out for good: withdraws its routes, waits for the router to stop sending
   * (the withdraw wait), then stops following the coordinators, detaches the program and releases
   * its maps and pins.
   */
  @Override
  public void close() throws Exception {
    if (announcer.isPresent() && !announcer.get().announced().isEmpty()) {
      announcer.get().withdrawAll("the director is being taken out");
      log.info("routes withdrawn; detaching in {} ms", withdrawWait.toMillis());
      Thread.sleep(withdrawWait.toMillis());
    }
    resources.close();
  }

  /**
   * Stops this daemon but not forwarding: the program stays attached with its tables, its maps
   * pinned, for the next director daemon started with the same pin directory to take over. What a
   * restart or an upgrade does; a killed daemon leaves the same behind.
   */
  public void handOver() {
    routeReports.shutdownNow();
    speaker.ifPresent(SpeakerSessions::close);
    announcer.ifPresent(RouteAnnouncer::close);
    prober.ifPresent(Prober::close);
    link.close();
    dataplane.handOver();
  }
}
