package dev.veer.metrics;

import com.google.common.collect.ImmutableMap;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A daemon's small read-only web endpoints (metrics, the status page): fixed paths answered by GET
 * only, each page made when asked. One thread; closed with the daemon.
 */
public final class WebServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(WebServer.class);

  /** What a GET of a path answers. */
  public record Response(int status, String contentType, byte[] body) {
    public static Response ok(String contentType, byte[] body) {
      return new Response(200, contentType, body);
    }
  }

  /** Makes a path's answer; a failure is answered 503 with its message. */
  @FunctionalInterface
  public interface Page {
    Response get() throws Exception;
  }

  private final HttpServer server;
  private final ExecutorService executor;

  private WebServer(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  public static WebServer start(InetSocketAddress address, String name, Map<String, Page> pages)
      throws IOException {
    ImmutableMap<String, Page> byPath = ImmutableMap.copyOf(pages);
    HttpServer server = HttpServer.create(address, 16);
    server.createContext(
        "/",
        exchange -> {
          try (exchange) {
            Page page = byPath.get(exchange.getRequestURI().getPath());
            if (page == null) {
              exchange.sendResponseHeaders(404, -1);
              return;
            }
            if (!exchange.getRequestMethod().equals("GET")) {
              exchange.sendResponseHeaders(405, -1);
              return;
            }
            Response response;
            try {
              response = page.get();
            } catch (Exception e) {
              log.warn("{} {}: {}", name, exchange.getRequestURI().getPath(), e.toString());
              response =
                  new Response(
                      503,
                      "text/plain; charset=utf-8",
                      ("unavailable: " + e.getMessage() + "\n").getBytes(StandardCharsets.UTF_8));
            }
            send(exchange, response);
          }
        });
    ExecutorService executor =
        Executors.newSingleThreadExecutor(
            Thread.ofPlatform().name("veer-" + name).daemon(true).factory());
    server.setExecutor(executor);
    server.start();
    log.info(
        "{} at http://{}:{}{}",
        name,
        address.getHostString(),
        server.getAddress().getPort(),
        byPath.keySet());
    return new WebServer(server, executor);
  }

  private static void send(HttpExchange exchange, Response response) throws IOException {
    exchange.getResponseHeaders().set("Content-Type", response.contentType());
    exchange.getResponseHeaders().set("Cache-Control", "no-store");
    exchange.sendResponseHeaders(response.status(), response.body().length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(response.body());
    }
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
