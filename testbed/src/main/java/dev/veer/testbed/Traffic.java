package dev.veer.testbed;

import com.google.common.collect.ConcurrentHashMultiset;
import com.google.common.collect.ImmutableMultiset;
import com.google.common.collect.Multiset;
import dev.veer.bpf.NetworkNamespace;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;

/** Client workloads through the VIP, each bounded in count and time. */
public final class Traffic {
  public static final int TIMEOUT_MILLIS = 5_000;

  private Traffic() {}

  /** What a burst of short connections saw. */
  public record BurstResult(ImmutableMultiset<String> perServer, List<String> failures) {}

  /**
   * Opens {@code count} connections (at most {@code concurrency} at once), makes one request on
   * each and closes it.
   */
  public static BurstResult burst(
      NetworkNamespace clientNs, InetSocketAddress vip, int count, int concurrency)
      throws InterruptedException {
    List<ClientConnection> connections = ClientConnection.create(clientNs, count);
    Multiset<String> perServer = ConcurrentHashMultiset.create();
    Queue<String> failures = new ConcurrentLinkedQueue<>();
    Semaphore slots = new Semaphore(concurrency);
    try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int i = 0; i < count; i++) {
        ClientConnection c = connections.get(i);
        int n = i;
        slots.acquire();
        pool.execute(
            () -> {
              try (c) {
                c.connect(vip, TIMEOUT_MILLIS);
                perServer.add(c.exchange("burst-" + n));
              } catch (IOException e) {
                failures.add("connection " + n + ": " + e);
              } finally {
                slots.release();
              }
            });
      }
    } finally {
      connections.forEach(ClientConnection::close); // those never started, if interrupted
    }
    return new BurstResult(ImmutableMultiset.copyOf(perServer), List.copyOf(failures));
  }

  /** One connection from client port {@code sourcePort}: the server that answered it. */
  public static String from(NetworkNamespace clientNs, int sourcePort, InetSocketAddress vip)
      throws IOException {
    try (ClientConnection c = ClientConnection.bound(clientNs, sourcePort)) {
      c.connect(vip, TIMEOUT_MILLIS);
      return c.exchange("from-" + sourcePort);
    }
  }

  /**
   * Long-lived connections that each make a request every {@code interval} until stopped; any
   * failed request breaks (and ends) its connection. Count what broke with {@link #stop()}, once
   * every request in flight has been answered or timed out.
   */
  public static final class LongLived implements AutoCloseable {
    private final List<ClientConnection> connections;
    private final ConnectionLoops loops;

    private LongLived(List<ClientConnection> connections, ConnectionLoops loops) {
      this.connections = connections;
      this.loops = loops;
    }

    /** Connects all, checks one answer on each, then starts the request loops. */
    public static LongLived start(
        NetworkNamespace clientNs,
        InetSocketAddress vip,
        int count,
        Duration interval,
        Duration maxRuntime)
        throws IOException {
      List<ClientConnection> connections = ClientConnection.create(clientNs, count);
      try {
        for (int i = 0; i < count; i++) {
          ClientConnection c = connections.get(i);
          c.connect(vip, TIMEOUT_MILLIS);
          c.exchange("hello-" + i);
        }
      } catch (IOException e) {
        connections.forEach(ClientConnection::close);
        throw e;
      }
      List<String> servers = connections.stream().map(ClientConnection::server).toList();
      ConnectionLoops loops =
          ConnectionLoops.start(
              servers,
              (n, seq) -> connections.get(n).exchange("c" + n + "-r" + seq),
              interval,
              Math.max(1, maxRuntime.toMillis() / Math.max(1, interval.toMillis())),
              Duration.ofMillis(TIMEOUT_MILLIS));
      return new LongLived(connections, loops);
    }

    /**
     * A point in time to ask later which connections answered since (see {@link
     * ConnectionLoops.Result}).
     */
    public long mark() {
      return loops.mark();
    }

    /** Requests answered so far: progress only, failures are counted by {@link #stop()}. */
    public long answered() {
      return loops.answered();
    }

    /** How many connections each server answered. */
    public ImmutableMultiset<String> perServer() {
      return loops.perServer();
    }

    /**
     * Stops the loops, waits for every request in flight to be answered or time out, and reports.
     */
    public ConnectionLoops.Result stop() {
      return loops.stop();
    }

    /** Stops (if not yet) and closes the connections. */
    @Override
    public void close() {
      loops.close();
      connections.forEach(ClientConnection::close);
    }
  }
}
