package dev.veer.testbed;

import com.google.common.collect.ConcurrentHashMultiset;
import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMultiset;
import com.google.common.collect.Multiset;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Request loops on long-lived connections, one virtual thread each, and an honest count of what
 * broke. A connection whose packets are silently dropped fails only when its request times out, so
 * nothing is counted while requests may still be in flight: {@link #stop()} ends every loop first
 * (each finishes or times out its request in flight) and only then reports.
 */
public final class ConnectionLoops implements AutoCloseable {
  /** One request and its checked answer on a connection; returns the server that answered. */
  @FunctionalInterface
  public interface Exchange {
    String exchange(int connection, long sequence) throws IOException;
  }

  private final int count;
  private final Duration interval;
  private final long maxRequests;
  private final Duration requestTimeout;
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final AtomicLong answered = new AtomicLong();

  /** Per connection: when it last got an answer (System.nanoTime), 0 before its first. */
  private final AtomicLongArray lastAnswer;

  /** Per connection: why it broke, null while it has not. */
  private final AtomicReferenceArray<String> failure;

  /** Per connection: the server that answered it first. */
  private final AtomicReferenceArray<String> server;

  /** Per connection: 1 once its loop has ended. */
  private final AtomicIntegerArray ended;

  private final Multiset<String> perServer = ConcurrentHashMultiset.create();
  private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  private Result result;

  private ConnectionLoops(int count, Duration interval, long maxRequests, Duration requestTimeout) {
    this.count = count;
    this.interval = interval;
    this.maxRequests = maxRequests;
    this.requestTimeout = requestTimeout;
    this.lastAnswer = new AtomicLongArray(count);
    this.failure = new AtomicReferenceArray<>(count);
    this.server = new AtomicReferenceArray<>(count);
    this.ended = new AtomicIntegerArray(count);
  }

  /**
   * Starts a loop per connection that exchanges a request every {@code interval}, at most {@code
   * maxRequests} times; a request that fails or takes longer than {@code requestTimeout} (the
   * exchange's own socket timeout) breaks and ends its connection.
   */
  public static ConnectionLoops start(
      int count, Exchange exchange, Duration interval, long maxRequests, Duration requestTimeout) {
    return start(
        java.util.Collections.nCopies(count, null),
        exchange,
        interval,
        maxRequests,
        requestTimeout);
  }

  /**
   * Like {@link #start(int, Exchange, Duration, long, Duration)}, for connections that have been
   * answered once already, by {@code servers} (in connection order).
   */
  public static ConnectionLoops start(
      List<String> servers,
      Exchange exchange,
      Duration interval,
      long maxRequests,
      Duration requestTimeout) {
    int count = servers.size();
    ConnectionLoops loops = new ConnectionLoops(count, interval, maxRequests, requestTimeout);
    long now = System.nanoTime();
    for (int i = 0; i < count; i++) {
      if (servers.get(i) != null) {
        loops.server.set(i, servers.get(i));
        loops.perServer.add(servers.get(i));
        loops.lastAnswer.set(i, now);
      }
    }
    for (int i = 0; i < count; i++) {
      int n = i;
      loops.pool.execute(() -> loops.loop(n, exchange));
    }
    return loops;
  }

  /** The longest time a request took to be answered, over every connection. */
  private final java.util.concurrent.atomic.AtomicLong longestAnswer =
      new java.util.concurrent.atomic.AtomicLong();

  private void loop(int n, Exchange exchange) {
    try {
      for (long seq = 0; seq < maxRequests && running.get(); seq++) {
        long asked = System.nanoTime();
        String name = exchange.exchange(n, seq);
        longestAnswer.accumulateAndGet(System.nanoTime() - asked, Math::max);
        if (server.compareAndSet(n, null, name)) {
          perServer.add(name);
        } else if (!server.get(n).equals(name)) {
          throw new IOException("connection served by " + server.get(n) + " answered from " + name);
        }
        lastAnswer.set(n, System.nanoTime());
        answered.incrementAndGet();
        Thread.sleep(interval);
      }
    } catch (IOException e) {
      failure.set(n, e.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      ended.set(n, 1);
    }
  }

  /** A point in time (before or after a change) to ask later which connections answered since. */
  public long mark() {
    return System.nanoTime();
  }

  /** Requests answered so far (a progress figure only: failures are counted by {@link #stop()}). */
  public long answered() {
    return answered.get();
  }

  /** How many connections each server answered first, so far. */
  public ImmutableMultiset<String> perServer() {
    return ImmutableMultiset.copyOf(perServer);
  }

  /**
   * Stops every loop, waits until each has ended (its request in flight answered or timed out), and
   * reports. A loop that has not ended even then counts as broken. Calling it again returns the
   * same result.
   */
  public synchronized Result stop() {
    if (result != null) {
      return result;
    }
    running.set(false);
    pool.shutdown();
    try {
      pool.awaitTermination(
          requestTimeout.toMillis() * 2 + interval.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    ImmutableList.Builder<Connection> connections = ImmutableList.builder();
    for (int n = 0; n < count; n++) {
      String why = failure.get(n);
      if (why == null && ended.get(n) == 0) {
        why = "still waiting for an answer when the traffic stopped";
      }
      connections.add(new Connection(n, server.get(n), lastAnswer.get(n), why));
    }
    pool.shutdownNow();
    result = new Result(connections.build(), answered.get(), longestAnswer.get());
    return result;
  }

  @Override
  public void close() {
    stop();
  }

  /** What one connection saw. */
  public record Connection(int index, String server, long lastAnswerNanos, String failure) {
    public boolean failed() {
      return failure != null;
    }

    @Override
    public String toString() {
      return "connection " + index + " (" + server + ")" + (failure == null ? "" : ": " + failure);
    }
  }

  /** What the connections saw, counted after all of them stopped. */
  public record Result(
      ImmutableList<Connection> connections, long answered, long longestAnswerNanos) {
    /** The longest any request waited for its answer: the longest stall a connection saw. */
    public long longestAnswerMillis() {
      return longestAnswerNanos / 1_000_000;
    }

    /** The connections that broke. */
    public List<Connection> failed() {
      return connections.stream().filter(Connection::failed).toList();
    }

    /**
     * The connections that broke, or gave no answer after {@code mark} (a change, or the end of
     * convergence after one): each of them is one a client would have seen hang or fail.
     */
    public List<Connection> brokenSince(long mark) {
      return connections.stream()
          .filter(c -> c.failed() || c.lastAnswerNanos() - mark <= 0)
          .toList();
    }

    /** The connections a server answered first. */
    public List<Connection> servedBy(String server) {
      return connections.stream().filter(c -> server.equals(c.server())).toList();
    }
  }
}
