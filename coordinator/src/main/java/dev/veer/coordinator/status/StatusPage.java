package dev.veer.coordinator.status;

import com.google.protobuf.util.JsonFormat;
import dev.veer.coordinator.admin.AdminServer;
import dev.veer.metrics.WebServer;
import dev.veer.proto.admin.v1.GetTableRequest;
import dev.veer.proto.admin.v1.ListServicesResponse;
import dev.veer.proto.admin.v1.Service;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A small read-only web page of the cluster: services, backends with state and health, directors
 * with their versions, proxy agents, and each service's table drawn as every backend's share of
 * rows (as primary and as second hop). The page is static and fetches {@code /status.json} (what
 * the admin API's reads answer) every two seconds. It shows no secret; bind it to an address only
 * operators reach.
 */
public final class StatusPage implements AutoCloseable {
  private final WebServer server;

  private StatusPage(WebServer server) {
    this.server = server;
  }

  public static StatusPage start(InetSocketAddress address, AdminServer admin) throws IOException {
    byte[] page;
    try (InputStream in = StatusPage.class.getResourceAsStream("/status/index.html")) {
      page = in.readAllBytes();
    }
    return new StatusPage(
        WebServer.start(
            address,
            "status page",
            Map.of(
                "/", () -> WebServer.Response.ok("text/html; charset=utf-8", page),
                "/status.json",
                    () ->
                        WebServer.Response.ok(
                            "application/json", json(admin).getBytes(StandardCharsets.UTF_8)))));
  }

  /**
   * {"status": ClusterStatus, "services": ListServicesResponse, "tables": {name: ServiceTable}}.
   */
  static String json(AdminServer admin) throws Exception {
    JsonFormat.Printer printer =
        JsonFormat.printer().omittingInsignificantWhitespace().alwaysPrintFieldsWithNoPresence();
    ListServicesResponse services = admin.services();
    StringBuilder tables = new StringBuilder("{");
    for (Service service : services.getServicesList()) {
      if (tables.length() > 1) {
        tables.append(',');
      }
      String name = service.getSpec().getName();
      tables
          .append('"')
          .append(name)
          .append("\":")
          .append(
              printer.print(admin.table(GetTableRequest.newBuilder().setService(name).build())));
    }
    tables.append('}');
    return "{\"status\":"
        + printer.print(admin.status())
        + ",\"services\":"
        + printer.print(services)
        + ",\"tables\":"
        + tables
        + "}";
  }

  public int port() {
    return server.port();
  }

  @Override
  public void close() {
    server.close();
  }
}
