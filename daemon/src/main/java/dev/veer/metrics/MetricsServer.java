package dev.veer.metrics;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Serves a daemon's metrics at {@code /metrics} in Prometheus's text format, reading them when
 * scraped (BPF counters are read from the maps then, nothing is kept in between).
 */
public final class MetricsServer implements AutoCloseable {
  static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private final WebServer server;

  private MetricsServer(WebServer server) {
    this.server = server;
  }

  /** Listens on {@code address}; {@code metrics} is asked for every scrape. */
  public static MetricsServer start(InetSocketAddress address, Supplier<List<Metric>> metrics)
      throws IOException {
    return new MetricsServer(
        WebServer.start(
            address,
            "metrics",
            Map.of(
                "/metrics",
                () ->
                    WebServer.Response.ok(
                        CONTENT_TYPE, render(metrics.get()).getBytes(StandardCharsets.UTF_8)))));
  }

  public static String render(List<Metric> metrics) {
    StringBuilder out = new StringBuilder();
    metrics.forEach(m -> m.writeTo(out));
    return out.toString();
  }

  /** The port it listens on (useful after asking for port 0). */
  public int port() {
    return server.port();
  }

  @Override
  public void close() {
    server.close();
  }
}
