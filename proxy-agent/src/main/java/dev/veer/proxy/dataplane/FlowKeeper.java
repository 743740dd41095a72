package dev.veer.proxy.dataplane;

import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.dataplane.ProxyProgram;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Vouches for the proxy's flow table when it holds every connection of the namespace, so that the
 * data plane may take a miss as "not ours" and forward without asking the kernel; and removes
 * handshakes the kernel gave up on. It vouches only while
 *
 * <ul>
 *   <li>no socket older than the sockops program is left on an endpoint that tunnelled packets
 *       reach: no connection (it never entered the table, and its close would not take it out), and
 *       no listener (it cannot tell of the SYN cookies it answers with);
 *   <li>no insert has failed for a whole handshake lifetime (a full table: a SYN flood, or more
 *       connections than it holds), since the SYN-cookie answer that found no room is not seen
 *       again.
 * </ul>
 *
 * Otherwise misses take the kernel's socket lookup, as before the table existed.
 */
final class FlowKeeper implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(FlowKeeper.class);
  private static final Duration TICK = Duration.ofSeconds(1);

  /** Handshakes live a minute or more: sweeping every half minute keeps garbage bounded. */
  private static final long SWEEP_EVERY_TICKS = 30;

  private final ProxyProgram program;
  private final NetworkNamespace namespace;
  private final long openingNanos;
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-flow-keeper").daemon(true).factory());

  /** Sockets that were there before the table; shrinks as they end. Guarded by this. */
  private final Set<Flow> older;

  /** Every endpoint (VIP, port) that tunnelled packets were for so far; null: any. */
  private volatile Set<InetSocketAddress> served;

  private long failuresSeen;
  private long lastFailure;
  private boolean failedOnce;
  private long ticks;
  private long olderBlocking = -1;
  private volatile long distrustedUntil = System.nanoTime();

  private record Flow(InetAddress remote, int remotePort, InetAddress local, int localPort) {
    boolean on(InetSocketAddress endpoint) {
      return localPort == endpoint.getPort()
          && (local.equals(endpoint.getAddress()) || local.isAnyLocalAddress());
    }
  }

  private FlowKeeper(
      ProxyProgram program, NetworkNamespace namespace, int openingSeconds, Set<Flow> older) {
    this.program = program;
    this.namespace = namespace;
    this.openingNanos = TimeUnit.SECONDS.toNanos(openingSeconds);
    this.older = older;
    this.failuresSeen = program.flowInsertFailures();
  }

  /** Starts keeping the table of {@code namespace}; call once the sockops program is attached. */
  static FlowKeeper start(ProxyProgram program, NetworkNamespace namespace, int openingSeconds) {
    Set<Flow> older = connections(namespace);
    FlowKeeper keeper = new FlowKeeper(program, namespace, openingSeconds, older);
    keeper.tick();
    keeper.timer.scheduleWithFixedDelay(
        keeper::tickSafely, TICK.toMillis(), TICK.toMillis(), TimeUnit.MILLISECONDS);
    return keeper;
  }

  /**
   * Adds endpoints that tunnelled packets are for (the services' VIP and port): only older sockets
   * on those keep the table from being trusted. Until the first call, every one does.
   */
  synchronized void serve(Set<InetSocketAddress> endpoints) {
    Set<InetSocketAddress> all = new HashSet<>(served == null ? Set.of() : served);
    all.addAll(endpoints);
    served = Set.copyOf(all);
  }

  /** Makes misses take the socket lookup for {@code duration}, whatever the table holds. */
  void distrustFor(Duration duration) {
    distrustedUntil = System.nanoTime() + duration.toNanos();
    program.distrustFlows();
  }

  private void tickSafely() {
    try {
      tick();
    } catch (RuntimeException e) {
      log.warn("keeping the flow table: {}", e.toString());
    }
  }

  private synchronized void tick() {
    long now = System.nanoTime();
    long failures = program.flowInsertFailures();
    if (failures != failuresSeen) {
      if (!failedOnce || now - lastFailure >= openingNanos) {
        log.warn(
            "the flow table is full ({} inserts failed): packets it does not know take the socket lookup"
                + " until it has room again for {} s",
            failures - failuresSeen,
            openingNanos / 1_000_000_000L);
      }
      failuresSeen = failures;
      lastFailure = now;
      failedOnce = true;
    }
    if (++ticks % SWEEP_EVERY_TICKS == 0) {
      program.removeExpiredFlows(now);
    }
    long blocking = 0;
    Set<InetSocketAddress> endpoints = served;
    // The socket table is read only while an older socket is on a served endpoint (it can be
    // large).
    if (older.stream().anyMatch(f -> endpoints == null || endpoints.stream().anyMatch(f::on))) {
      older.retainAll(connections(namespace));
      blocking =
          older.stream()
              .filter(f -> endpoints == null || endpoints.stream().anyMatch(f::on))
              .count();
    }
    if (blocking != olderBlocking) {
      if (blocking > 0) {
        log.info(
            "{} sockets of served endpoints are older than the flow table: until they end, packets it"
                + " does not know take the kernel's socket lookup",
            blocking);
      } else if (olderBlocking > 0) {
        log.info(
            "no socket older than the flow table is left on a served endpoint: it holds every connection");
      }
      olderBlocking = blocking;
    }
    boolean complete = blocking == 0 && (!failedOnce || now - lastFailure >= openingNanos);
    if (complete && now - distrustedUntil >= 0 && !program.flowsTrusted()) {
      program.trustFlows(failures);
    }
  }

  /** The namespace's sockets that can own a packet: connections and listeners, not TIME_WAIT. */
  private static Set<Flow> connections(NetworkNamespace namespace) {
    List<SocketTable.Entry> sockets = SocketTable.read(namespace);
    Set<Flow> out = new HashSet<>();
    for (SocketTable.Entry s : sockets) {
      if (s.state() != SocketTable.TIME_WAIT && s.state() != SocketTable.CLOSE) {
        out.add(new Flow(s.remote(), s.remotePort(), s.local(), s.localPort()));
      }
    }
    return out;
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
