package dev.veer.director.health;

import com.google.protobuf.ByteString;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.director.sync.SnapshotApplier;
import dev.veer.director.sync.SnapshotApplier.ProbeTarget;
import dev.veer.proto.director.v1.BackendProbe;
import dev.veer.proto.director.v1.ProbeReport;
import dev.veer.proto.types.v1.Health;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.channels.SocketChannel;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Probes every backend the way a client's packets travel: a TCP connection from the director's own
 * address to the VIP, from a source port whose flow the table sends to that backend first. The SYN
 * leaves through the router, which hands it to a director (any: they all hash alike), whose program
 * encapsulates it to the backend; the backend answers the director directly. A connection that
 * opens within the timeout means the whole path works. Only backends that are some row's primary
 * can be reached so; the others' recovery is seen by their agents.
 */
public final class Prober implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Prober.class);

  /** Probe source ports come from here: below the usual ephemeral range. */
  private static final int FIRST_PORT = 20_000;

  private static final int PORTS = 12_000;

  private final NetworkNamespace namespace;
  private final Optional<Inet4Address> source4;
  private final Optional<Inet6Address> source6;
  private final SnapshotApplier applier;
  private final Consumer<ProbeReport> report;
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-probes").daemon(true).factory());
  private final Map<String, Run> runs = new HashMap<>();

  /** Per table (by identity: a new table is a new object), the port that reaches each backend. */
  private final Map<HopTable, Map<Integer, Integer>> portsByTable = new IdentityHashMap<>();

  private record Run(Health health, int count) {}

  /** Whether the last report had results; confined to the timer thread. */
  private boolean reportedAny;

  /**
   * Whether the router sends a VIP to the directors: probes go out through the router and back, so
   * a VIP no director announces cannot be probed, and a failure then says nothing of a backend.
   */
  private final java.util.function.Predicate<InetAddress> routed;

  public Prober(
      NetworkNamespace namespace,
      Optional<Inet4Address> source4,
      Optional<Inet6Address> source6,
      SnapshotApplier applier,
      Consumer<ProbeReport> report,
      java.util.function.Predicate<InetAddress> routed) {
    this.routed = routed;
    this.namespace = namespace;
    this.source4 = source4;
    this.source6 = source6;
    this.applier = applier;
    this.report = report;
  }

  public void start() {
    schedule(1000);
  }

  private void schedule(long delayMillis) {
    timer.schedule(
        () -> {
          try {
            round();
          } catch (RuntimeException e) {
            log.warn("probe round failed: {}", e.toString());
          }
          int interval = applier.checkIntervalMillis();
          schedule(interval > 0 ? interval : 1000);
        },
        delayMillis,
        TimeUnit.MILLISECONDS);
  }

  void round() {
    Optional<byte[]> key = applier.hashKey();
    int timeout = applier.checkTimeoutMillis();
    if (key.isEmpty() || applier.checkIntervalMillis() <= 0 || timeout <= 0) {
      return;
    }
    byte[] nicKey = applier.nicHashKey();
    FlowHash hash = FlowHash.of(key.get(), nicKey);
    ProbeReport.Builder out = ProbeReport.newBuilder();
    Map<HopTable, Map<Integer, Integer>> stillUsed = new IdentityHashMap<>();
    for (ProbeTarget target : applier.probeTargets()) {
      Optional<InetAddress> source =
          target.key().vip() instanceof Inet6Address ? source6.map(a -> a) : source4.map(a -> a);
      if (source.isEmpty()
          || target.key().protocol() != ServiceKey.TCP
          || target.table() == null
          || !routed.test(target.key().vip())) {
        continue;
      }
      // A NIC's hash covers the destination: services that share a table do not share ports.
      Map<Integer, Integer> ports;
      if (nicKey.length > 0) {
        ports = ports(hash, source.get(), target.key(), target.options(), target.table());
      } else {
        ports =
            portsByTable.computeIfAbsent(
                target.table(), t -> ports(hash, source.get(), target.key(), target.options(), t));
        stillUsed.put(target.table(), ports);
      }
      Map<Integer, Attempt> attempts = new java.util.LinkedHashMap<>();
      ports.forEach(
          (backend, port) ->
              attempts.put(backend, probe(source.get(), port, target.key(), timeout)));
      // A director that reaches none of a service's backends is cut off itself, or the router
      // does not send it the VIP yet (route injection): the round says nothing of the backends,
      // whose agents' checks decide.
      if (attempts.values().stream().noneMatch(a -> a.health() == Health.HEALTHY)) {
        attempts.values().stream()
            .findFirst()
            .ifPresent(
                a ->
                    log.debug(
                        "no backend of {} reachable through the router; not counted: {}",
                        target.name(),
                        a.detail()));
        continue;
      }
      attempts.forEach(
          (backend, attempt) -> {
            InetAddress address = target.table().backends().get(backend);
            int port = ports.get(backend);
            if (attempt.health() == Health.HEALTH_UNKNOWN) {
              return; // the path, not the backend, failed: no vote
            }
            String detail = attempt.health() == Health.HEALTHY ? null : attempt.detail();
            Health health = attempt.health();
            String runKey = target.name() + "/" + address.getHostAddress();
            Run run =
                runs.merge(
                    runKey,
                    new Run(health, 1),
                    (before, now) ->
                        before.health() == now.health()
                            ? new Run(health, before.count() + 1)
                            : now);
            if (run.count() == 1 && health == Health.UNHEALTHY) {
              log.warn(
                  "probe of {} backend {} through the tunnel failed: {}",
                  target.name(),
                  address.getHostAddress(),
                  detail);
            }
            out.addBackends(
                BackendProbe.newBuilder()
                    .setService(target.name())
                    .setBackend(ByteString.copyFrom(address.getAddress()))
                    .setHealth(health)
                    .setDetail(
                        detail == null ? "connected through the tunnel from port " + port : detail)
                    .setConsecutive(run.count()));
          });
    }
    portsByTable.keySet().retainAll(stillUsed.keySet());
    // An empty report once probing stops takes back the votes of the last one.
    if (out.getBackendsCount() > 0 || reportedAny) {
      report.accept(out.build());
      reportedAny = out.getBackendsCount() > 0;
    }
  }

  /** For each backend that is some row's primary, a source port whose flow lands on it first. */
  private static Map<Integer, Integer> ports(
      FlowHash hash,
      InetAddress source,
      ServiceKey service,
      ServiceOptions options,
      HopTable table) {
    Map<Integer, Integer> out = new LinkedHashMap<>();
    boolean[] primary = new boolean[table.backends().size()];
    int wanted = 0;
    for (int row = 0; row < table.rowCount(); row++) {
      int b = table.hopIndex(row, 0);
      if (b >= 0 && !primary[b]) {
        primary[b] = true;
        wanted++;
      }
    }
    for (int i = 0; i < PORTS && out.size() < wanted; i++) {
      int port = FIRST_PORT + i;
      int row =
          FlowHash.row(
              hash.hash(source, port, service.vip(), service.port(), options.hashFields()),
              table.rowBits());
      int b = table.hopIndex(row, 0);
      if (b >= 0) {
        out.putIfAbsent(b, port);
      }
      if (options.hashFields() == ServiceOptions.HashFields.SOURCE_IP) {
        break; // the port does not count: one backend only
      }
    }
    return out;
  }

  /**
   * A probe's result: HEALTHY when a connection opened within the timeout; HEALTH_UNKNOWN when the
   * network had no route to the VIP (the router's, or this host's, not the backend's fault: with
   * route injection, before the router has learnt the VIP); UNHEALTHY otherwise, with why.
   */
  private record Attempt(Health health, String detail) {}

  private Attempt probe(InetAddress source, int port, ServiceKey service, int timeoutMillis) {
    return namespace.call(
        () -> {
          try (SocketChannel channel = SocketChannel.open()) {
            channel.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            // Closing with a reset leaves no TIME_WAIT on the port the next probe uses.
            channel.setOption(StandardSocketOptions.SO_LINGER, 0);
            channel.bind(new InetSocketAddress(source, port));
            channel
                .socket()
                .connect(new InetSocketAddress(service.vip(), service.port()), timeoutMillis);
            return new Attempt(Health.HEALTHY, "");
          } catch (IOException e) {
            String detail =
                "no connection to "
                    + service
                    + " from port "
                    + port
                    + " within "
                    + timeoutMillis
                    + " ms: "
                    + e.getMessage();
            boolean noRoute =
                e instanceof java.net.NoRouteToHostException
                    || String.valueOf(e.getMessage()).contains("Network is unreachable");
            return new Attempt(noRoute ? Health.HEALTH_UNKNOWN : Health.UNHEALTHY, detail);
          }
        });
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
