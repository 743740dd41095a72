package dev.veer.director;

import static com.google.common.base.Preconditions.checkArgument;

import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.director.health.Prober;
import dev.veer.director.sync.CoordinatorLink;
import dev.veer.director.sync.SnapshotApplier;
import dev.veer.bpf.dataplane.ServiceStats;
import dev.veer.lifecycle.CloseStack;
import dev.veer.metrics.Metric;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.Hello;
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

  private final CloseStack resources;
  private final DirectorDataplane dataplane;
  private final SnapshotApplier applier;
  private final CoordinatorLink link;
  private final Optional<Prober> prober;
  private final Object applied = new Object();
  private long acknowledged;

  /** What a director needs to start. */
  /**
   * @param ifname the interface to attach to; empty loads the program and fills its maps without
   *     attaching it (for benchmarks and tests of the control plane)
   * @param pinDir where the maps are pinned (a directory on a BPF filesystem): a director
   *     started over pins an earlier one left takes them over without a pause in forwarding
   */
  public record Config(String id, List<String> coordinators, NetworkNamespace namespace, Optional<String> ifname,
      XdpMode mode, Optional<Inet4Address> source4, Optional<Inet6Address> source6, int rowBits,
      Optional<TlsFiles> tls, Optional<BearerToken> token, Optional<Path> pinDir) {
    public Config {
      checkArgument(id.matches("[A-Za-z0-9._-]{1,64}"), "director id '%s': 1-64 of A-Z a-z 0-9 . _ -", id);
      checkArgument(!coordinators.isEmpty(), "give at least one coordinator (host:port)");
      checkArgument(source4.isPresent() || source6.isPresent(),
          "give the director's own IPv4 and/or IPv6 address: it is the outer source of what it sends");
      checkArgument(pinDir.isEmpty() || ifname.isPresent(), "pinning is for a director attached to an interface");
      coordinators = List.copyOf(coordinators);
    }
  }

  private DirectorDaemon(CloseStack resources, DirectorDataplane dataplane, SnapshotApplier applier,
      CoordinatorLink link, Optional<Prober> prober) {
    this.resources = resources;
    this.dataplane = dataplane;
    this.applier = applier;
    this.link = link;
    this.prober = prober;
  }

  public static DirectorDaemon start(Config config) throws Exception {
    return start(config, v -> {});
  }

  /** Starts the daemon; {@code onApplied} hears every version applied and acknowledged. */
  public static DirectorDaemon start(Config config, LongConsumer onApplied) throws Exception {
    CloseStack resources = new CloseStack();
    try {
      // A key nobody knows until the coordinators send the cluster's: no service exists before that.
      byte[] provisionalKey = new byte[16];
      new SecureRandom().nextBytes(provisionalKey);
      DirectorConfig initial = new DirectorConfig(provisionalKey, config.source4(), config.source6(),
          dev.veer.bpf.abi.VeerAbi.GUE_PORT_DEFAULT);
      DirectorDataplane dataplane;
      if (config.pinDir().isPresent()) {
        dataplane = DirectorDataplane.attachPinned(config.namespace(), config.ifname().orElseThrow(),
            config.mode(), initial, config.rowBits(), config.pinDir().get());
      } else if (config.ifname().isPresent()) {
        dataplane = DirectorDataplane.attach(config.namespace(), config.ifname().get(), config.mode(), initial,
            config.rowBits());
      } else {
        dataplane = DirectorDataplane.detached(initial, config.rowBits());
      }
      resources.push(dataplane);
      SnapshotApplier applier = new SnapshotApplier(dataplane, config.source4(), config.source6());
      Hello identity = Hello.newBuilder().setDirectorId(config.id())
          .setAddress(config.source4().map(a -> a.getHostAddress())
              .orElseGet(() -> config.source6().orElseThrow().getHostAddress()))
          .setRowBits(config.rowBits())
          .addAllSourceAddresses(java.util.stream.Stream.concat(config.source4().stream(), config.source6().stream())
              .map(a -> com.google.protobuf.ByteString.copyFrom(a.getAddress())).toList())
          .build();
      DirectorDaemon[] self = new DirectorDaemon[1];
      CoordinatorLink link = resources.push(new CoordinatorLink(config.coordinators(), config.tls(), config.token(),
          identity, applier, version -> {
            onApplied.accept(version);
            self[0].acknowledged(version);
          }));
      // Probes need the director's own path to the router; a detached program has none.
      Optional<Prober> prober = config.ifname().map(i -> resources.push(new Prober(config.namespace(),
          config.source4(), config.source6(), applier,
          probes -> link.report(DirectorReport.newBuilder().setProbes(probes).build()))));
      self[0] = new DirectorDaemon(resources, dataplane, applier, link, prober);
      link.start();
      prober.ifPresent(Prober::start);
      log.info("director {} on {} in {}, coordinators {}", config.id(), config.ifname().orElse("(detached)"),
          config.namespace(), config.coordinators());
      return self[0];
    } catch (Exception | Error e) {
      resources.close();
      throw e;
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

  /** Waits until a version at least {@code version} is applied and acknowledged; false on timeout. */
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
    dataplane.program().verdicts().forEach((verdict, count) -> verdicts.add(Metric.Sample.of(
        Map.of("verdict", verdict.name().toLowerCase(java.util.Locale.ROOT)), count)));
    List<Metric.Sample> packets = new ArrayList<>();
    List<Metric.Sample> bytes = new ArrayList<>();
    List<Metric.Sample> drops = new ArrayList<>();
    for (SnapshotApplier.ProbeTarget service : applier.probeTargets()) {
      dataplane.entry(service.key()).ifPresent(entry -> {
        ServiceStats stats = dataplane.program().serviceStats(entry.statsSlot());
        Map<String, String> labels = Map.of("service", service.name());
        packets.add(Metric.Sample.of(labels, stats.packets()));
        bytes.add(Metric.Sample.of(labels, stats.bytes()));
        drops.add(Metric.Sample.of(labels, stats.drops()));
      });
    }
    List<Metric.Sample> backendPackets = new ArrayList<>();
    List<Metric.Sample> backendBytes = new ArrayList<>();
    dataplane.backendIndices().forEach((address, index) -> {
      long[] stats = dataplane.program().backendStats(index);
      Map<String, String> labels = Map.of("backend", com.google.common.net.InetAddresses.toAddrString(address));
      backendPackets.add(Metric.Sample.of(labels, stats[0]));
      backendBytes.add(Metric.Sample.of(labels, stats[1]));
    });
    return List.of(
        Metric.counter("veer_director_packets_total", "Packets by the verdict the director program gave them.",
            verdicts),
        Metric.counter("veer_director_backend_packets_total", "Packets sent to a backend as its row's primary.",
            backendPackets),
        Metric.counter("veer_director_backend_bytes_total", "Bytes of those packets as received.", backendBytes),
        Metric.counter("veer_director_service_packets_total", "Packets encapsulated and sent, by service.", packets),
        Metric.counter("veer_director_service_bytes_total", "Bytes of those packets as received.", bytes),
        Metric.counter("veer_director_service_drops_total", "Packets of a service that were dropped.", drops),
        Metric.gauge("veer_director_applied_version", "The cluster state version the tables come from.",
            appliedVersion()),
        Metric.gauge("veer_director_coordinator_connected", "1 while a coordinator stream is open.",
            coordinator().isEmpty() ? 0 : 1));
  }

  /** Stops following the coordinators, detaches the program and releases its maps and pins. */
  @Override
  public void close() throws Exception {
    resources.close();
  }

  /**
   * Stops this daemon but not forwarding: the program stays attached with its tables, its maps
   * pinned, for the next director daemon started with the same pin directory to take over. What
   * a restart or an upgrade does; a killed daemon leaves the same behind.
   */
  public void handOver() {
    prober.ifPresent(Prober::close);
    link.close();
    dataplane.handOver();
  }
}
