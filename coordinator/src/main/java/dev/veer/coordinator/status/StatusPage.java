package dev.veer.coordinator.status;

import com.google.protobuf.util.JsonFormat;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.veer.coordinator.admin.AdminServer;
import dev.veer.proto.admin.v1.GetTableRequest;
import dev.veer.proto.admin.v1.ListServicesResponse;
import dev.veer.proto.admin.v1.Service;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A small read-only web page of the cluster: services, backends with state and health,
 * directors with their versions, proxy agents, and each service's table drawn as every
 * backend's share of rows (as primary and as second hop). The page is static and fetches
 * {@code /status.json} (what the admin API's reads answer) every two seconds. It shows no
 * secret; bind it to an address only operators reach.
 */
public final class StatusPage implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StatusPage.class);

  private final HttpServer server;
  private final ExecutorService executor;

  private StatusPage(HttpServer server, ExecutorService executor) {
    this.server = server;
    this.executor = executor;
  }

  public static StatusPage start(InetSocketAddress address, AdminServer admin) throws IOException {
    byte[] page;
    try (InputStream in = StatusPage.class.getResourceAsStream("/status/index.html")) {
      page = in.readAllBytes();
    }
    HttpServer server = HttpServer.create(address, 16);
    server.createContext("/", exchange -> {
      try (exchange) {
        if (!exchange.getRequestURI().getPath().equals("/")) {
          exchange.sendResponseHeaders(404, -1);
          return;
        }
        send(exchange, 200, "text/html; charset=utf-8", page);
      }
    });
    server.createContext("/status.json", exchange -> {
      try (exchange) {
        try {
          send(exchange, 200, "application/json", json(admin).getBytes(StandardCharsets.UTF_8));
        } catch (Exception e) {
          log.warn("status page: {}", e.toString());
          send(exchange, 503, "text/plain", ("cluster state unavailable: " + e.getMessage())
              .getBytes(StandardCharsets.UTF_8));
        }
      }
    });
    ExecutorService executor = Executors.newSingleThreadExecutor(
        Thread.ofPlatform().name("veer-status-page").daemon(true).factory());
    server.setExecutor(executor);
    server.start();
    log.info("status page at http://{}:{}/", address.getHostString(), server.getAddress().getPort());
    return new StatusPage(server, executor);
  }

  /** {"status": ClusterStatus, "services": ListServicesResponse, "tables": {name: ServiceTable}}. */
  static String json(AdminServer admin) throws Exception {
    JsonFormat.Printer printer = JsonFormat.printer().omittingInsignificantWhitespace()
        .alwaysPrintFieldsWithNoPresence();
    ListServicesResponse services = admin.services();
    StringBuilder tables = new StringBuilder("{");
    for (Service service : services.getServicesList()) {
      if (tables.length() > 1) {
        tables.append(',');
      }
      String name = service.getSpec().getName();
      tables.append('"').append(name).append("\":").append(printer.print(admin.table(
          GetTableRequest.newBuilder().setService(name).build())));
    }
    tables.append('}');
    return "{\"status\":" + printer.print(admin.status()) + ",\"services\":" + printer.print(services)
        + ",\"tables\":" + tables + "}";
  }

  private static void send(HttpExchange exchange, int status, String type, byte[] body) throws IOException {
    exchange.getResponseHeaders().set("Content-Type", type);
    exchange.getResponseHeaders().set("Cache-Control", "no-store");
    exchange.sendResponseHeaders(status, body.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(body);
    }
  }

  public int port() {
    return server.getAddress().getPort();
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
