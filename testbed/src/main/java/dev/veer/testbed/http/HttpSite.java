package dev.veer.testbed.http;

import com.sun.net.httpserver.HttpServer;
import dev.veer.bpf.NetworkNamespace;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A real HTTP/1.1 server on a proxy host (the JDK's), listening on every address of the host's
 * namespace, the VIP on its loopback included. Every page names the host that served it, so a
 * client can tell where its requests went.
 */
public final class HttpSite implements AutoCloseable {
  private final HttpServer server;
  private final ExecutorService executor;
  private final AtomicLong requests = new AtomicLong();

  private HttpSite(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  public static HttpSite start(NetworkNamespace ns, int port, String name) {
    // The listening socket is made in the namespace; its threads need not be.
    HttpServer server = ns.call(() -> HttpServer.create(new InetSocketAddress(port), 1024));
    ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    HttpSite site = new HttpSite(server, executor);
    byte[] body = ("served by " + name + "\n").getBytes(StandardCharsets.US_ASCII);
    server.createContext(
        "/",
        exchange -> {
          try (exchange) {
            site.requests.incrementAndGet();
            exchange.getResponseHeaders().set("Content-Type", "text/plain");
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
              out.write(body);
            }
          }
        });
    server.setExecutor(executor);
    server.start();
    return site;
  }

  /** Requests answered so far. */
  public long requests() {
    return requests.get();
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
