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
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/** Client workloads through the VIP, each bounded in count and time. */
public final class Traffic {
  public static final int TIMEOUT_MILLIS = 5_000;

  private Traffic() {}

  /** What a burst of short connections saw. */
  public record BurstResult(ImmutableMultiset<String> perServer, List<String> failures) {}

  /**
   * Opens {@code count} connections (at most {@code concurrency} at once), makes
   * one request on each and closes it.
   */
  public static BurstResult burst(NetworkNamespace clientNs, InetSocketAddress vip, int count, int concurrency)
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
        pool.execute(() -> {
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
  public static String from(NetworkNamespace clientNs, int sourcePort, InetSocketAddress vip) throws IOException {
    try (ClientConnection c = ClientConnection.bound(clientNs, sourcePort)) {
      c.connect(vip, TIMEOUT_MILLIS);
      return c.exchange("from-" + sourcePort);
    }
  }

  /**
   * Long-lived connections that each make a request every {@code interval}
   * until stopped; any failed request breaks (and ends) its connection.
   */
  public static final class LongLived implements AutoCloseable {
    private final List<ClientConnection> connections;
    private final Duration interval;
    private final long maxRequestsPerConnection;
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final AtomicLong answered = new AtomicLong();
    private final Queue<String> failures = new ConcurrentLinkedQueue<>();
    private final Multiset<String> perServer = ConcurrentHashMultiset.create();
    private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

    private LongLived(List<ClientConnection> connections, Duration interval, long maxRequestsPerConnection) {
      this.connections = connections;
      this.interval = interval;
      this.maxRequestsPerConnection = maxRequestsPerConnection;
    }

    /** Connects all, checks one answer on each, then starts the request loops. */
    public static LongLived start(NetworkNamespace clientNs, InetSocketAddress vip, int count, Duration interval,
        Duration maxRuntime) throws IOException {
      LongLived traffic = new LongLived(ClientConnection.create(clientNs, count), interval,
          Math.max(1, maxRuntime.toMillis() / Math.max(1, interval.toMillis())));
      try {
        for (int i = 0; i < count; i++) {
          ClientConnection c = traffic.connections.get(i);
          c.connect(vip, TIMEOUT_MILLIS);
          traffic.perServer.add(c.exchange("hello-" + i));
          traffic.answered.incrementAndGet();
        }
      } catch (IOException e) {
        traffic.close();
        throw e;
      }
      for (int i = 0; i < count; i++) {
        int n = i;
        traffic.pool.execute(() -> traffic.loop(n));
      }
      return traffic;
    }

    private void loop(int n) {
      ClientConnection c = connections.get(n);
      try {
        for (long seq = 0; seq < maxRequestsPerConnection && running.get(); seq++) {
          c.exchange("c" + n + "-r" + seq);
          answered.incrementAndGet();
          Thread.sleep(interval);
        }
      } catch (IOException e) {
        failures.add("connection " + n + " (" + c.server() + "): " + e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }

    public long answered() {
      return answered.get();
    }

    public List<String> failures() {
      return List.copyOf(failures);
    }

    public ImmutableMultiset<String> perServer() {
      return ImmutableMultiset.copyOf(perServer);
    }

    /** Stops the loops (each finishes its request in flight) and closes the connections. */
    @Override
    public void close() {
      running.set(false);
      pool.shutdown();
      try {
        if (!pool.awaitTermination(TIMEOUT_MILLIS * 2L, TimeUnit.MILLISECONDS)) {
          pool.shutdownNow();
        }
      } catch (InterruptedException e) {
        pool.shutdownNow();
        Thread.currentThread().interrupt();
      }
      connections.forEach(ClientConnection::close);
    }
  }
}
