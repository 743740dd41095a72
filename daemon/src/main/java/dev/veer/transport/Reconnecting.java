package dev.veer.transport;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import io.grpc.ManagedChannel;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps one stream open to one coordinator of a list: when a session ends, the next coordinator is
 * tried, at once after a session that lived a while, else after a back-off (100 ms doubling to 2
 * s). One thread; {@link #close()} ends the session in progress and the thread.
 */
public final class Reconnecting implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Reconnecting.class);
  private static final long MIN_BACKOFF_MILLIS = 100;
  private static final long MAX_BACKOFF_MILLIS = 2_000;
  private static final long HEALTHY_SESSION_NANOS = TimeUnit.SECONDS.toNanos(5);

  /** One stream on one channel, until it ends. */
  @FunctionalInterface
  public interface Session {
    /** Runs the stream to its end; returns why it ended. */
    String run(ManagedChannel channel, String target) throws InterruptedException;
  }

  private final String name;
  private final ImmutableList<String> targets;
  private final Function<String, ManagedChannel> channels;
  private final Session session;
  private final Thread thread;
  private volatile boolean closed;
  private volatile ManagedChannel channel;

  /**
   * @param name what runs the streams, for the logs and the thread
   * @param channels makes the channel to a target ("host:port")
   */
  public Reconnecting(
      String name,
      List<String> targets,
      Function<String, ManagedChannel> channels,
      Session session) {
    checkArgument(!targets.isEmpty(), "at least one coordinator address is needed");
    this.name = name;
    this.targets = ImmutableList.copyOf(targets);
    this.channels = channels;
    this.session = session;
    this.thread = Thread.ofPlatform().name("veer-" + name).daemon(true).unstarted(this::run);
  }

  public void start() {
    thread.start();
  }

  private void run() {
    long backoff = MIN_BACKOFF_MILLIS;
    for (int attempt = 0; !closed; attempt++) {
      String target = targets.get(attempt % targets.size());
      long started = System.nanoTime();
      ManagedChannel ch = channels.apply(target);
      channel = ch;
      String outcome;
      try {
        outcome = session.run(ch, target);
      } catch (InterruptedException e) {
        break;
      } catch (RuntimeException e) {
        outcome = e.toString();
      } finally {
        Transport.close(ch);
      }
      if (closed) {
        break;
      }
      backoff =
          System.nanoTime() - started > HEALTHY_SESSION_NANOS
              ? MIN_BACKOFF_MILLIS
              : Math.min(backoff * 2, MAX_BACKOFF_MILLIS);
      log.warn("{}: coordinator {}: {}; next attempt in {} ms", name, target, outcome, backoff);
      try {
        Thread.sleep(backoff);
      } catch (InterruptedException e) {
        break;
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    ManagedChannel ch = channel;
    if (ch != null) {
      ch.shutdownNow();
    }
    thread.interrupt();
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
