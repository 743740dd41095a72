package dev.veer.metrics;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves a daemon's metrics at {@code /metrics} in Prometheus's text format, reading them when
 * scraped (BPF counters are read from the maps then, nothing is kept in between).
 */
public final class MetricsServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(MetricsServer.class);
  static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private final HttpServer server;
  private final java.util.concurrent.ExecutorService executor;

  private MetricsServer(HttpServer server, java.util.concurrent.ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  /** Listens on {@code address}; {@code metrics} is asked for every scrape. */
  public static MetricsServer start(InetSocketAddress address, Supplier<List<Metric>> metrics) throws IOException {
    HttpServer server = HttpServer.create(address, 16);
    server.createContext("/metrics", exchange -> {
      try (exchange) {
        if (!exchange.getRequestMethod().equals("GET")) {
          exchange.sendResponseHeaders(405, -1);
          return;
        }
        byte[] body;
        int status = 200;
        try {
          body = render(metrics.get()).getBytes(StandardCharsets.UTF_8);
        } catch (RuntimeException e) {
          log.warn("collecting metrics failed: {}", e.toString());
          body = ("collecting metrics failed: " + e + "\n").getBytes(StandardCharsets.UTF_8);
          status = 500;
        }
        exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
        exchange.sendResponseHeaders(status, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
          out.write(body);
        }
      }
    });
    java.util.concurrent.ExecutorService executor = Executors.newSingleThreadExecutor(
        Thread.ofPlatform().name("veer-metrics").daemon(true).factory());
    server.setExecutor(executor);
    server.start();
    log.info("metrics at http://{}:{}/metrics", address.getHostString(), server.getAddress().getPort());
    return new MetricsServer(server, executor);
  }

  public static String render(List<Metric> metrics) {
    StringBuilder out = new StringBuilder();
    metrics.forEach(m -> m.writeTo(out));
    return out.toString();
  }

  /** The port it listens on (useful after asking for port 0). */
  public int port() {
    return server.getAddress().getPort();
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
