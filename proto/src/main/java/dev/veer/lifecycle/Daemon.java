package dev.veer.lifecycle;

import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** How Veer's daemons end: they run until SIGTERM (or SIGINT), then stop with {@code stop}. */
public final class Daemon {
  private static final Logger log = LoggerFactory.getLogger(Daemon.class);

  /** What a daemon does when told to stop. */
  @FunctionalInterface
  public interface Stop {
    void run() throws Exception;
  }

  private Daemon() {}

  /** Blocks until the JVM is asked to exit, runs {@code stop} from the shutdown hook, returns 0. */
  public static int runUntilSignalled(String name, Stop stop) throws InterruptedException {
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      log.info("{} stopping", name);
      try {
        stop.run();
      } catch (Exception e) {
        log.warn("{} stopping: {}", name, e.toString());
      }
      stopped.countDown();
    }, name + "-stop"));
    stopped.await();
    return 0;
  }
}
