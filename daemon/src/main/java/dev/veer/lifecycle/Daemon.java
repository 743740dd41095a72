package dev.veer.lifecycle;

import com.google.common.net.HostAndPort;
import dev.veer.metrics.Metric;
import dev.veer.metrics.MetricsServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;
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

  /**
   * A metrics endpoint at {@code listen} ("host:port"), if one is asked for (else null is given).
   */
  public static Optional<MetricsServer> metrics(String listen, Supplier<List<Metric>> metrics)
      throws IOException {
    if (listen == null) {
      return Optional.empty();
    }
    HostAndPort address = HostAndPort.fromString(listen).requireBracketsForIPv6();
    return Optional.of(
        MetricsServer.start(new InetSocketAddress(address.getHost(), address.getPort()), metrics));
  }

  /** Blocks until the JVM is asked to exit, runs {@code stop} from the shutdown hook, returns 0. */
  public static int runUntilSignalled(String name, Stop stop) throws InterruptedException {
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  log.info("{} stopping", name);
                  try {
                    stop.run();
                  } catch (Exception e) {
                    log.warn("{} stopping: {}", name, e.toString());
                  }
                  stopped.countDown();
                },
                name + "-stop"));
    stopped.await();
    return 0;
  }
}
