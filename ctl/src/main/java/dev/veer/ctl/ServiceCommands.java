package dev.veer.ctl;

import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceResponse;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.ListServicesRequest;
import dev.veer.proto.admin.v1.ListServicesResponse;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.UpdateServiceRequest;
import dev.veer.proto.types.v1.Balance;
import dev.veer.proto.types.v1.Encapsulation;
import dev.veer.proto.types.v1.HashFields;
import dev.veer.proto.types.v1.Protocol;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(
    name = "service",
    description = "Create, change, delete and show services.",
    subcommands = {
      ServiceCommands.List.class,
      ServiceCommands.Get.class,
      ServiceCommands.Create.class,
      ServiceCommands.Update.class,
      ServiceCommands.Delete.class
    })
final class ServiceCommands {
  @ParentCommand VeerCtl ctl;

  /** The options a service definition takes; null means "not given". */
  static final class SpecOptions {
    @Option(
        names = "--vip",
        paramLabel = "ADDRESS",
        description = "The service's virtual IP (IPv4 or IPv6).")
    String vip;

    @Option(names = "--port", description = "The service's port, 1-65535.")
    Integer port;

    @Option(names = "--protocol", paramLabel = "tcp|udp", description = "Default tcp.")
    String protocol;

    @Option(
        names = "--hash",
        paramLabel = "address-port|address",
        description =
            "Flow hash over the client's address and port (default), or its address only.")
    String hash;

    @Option(
        names = "--encap",
        paramLabel = "gue|ipip",
        description = "GUE with second-chance hops (default), or plain IPIP to the primary only.")
    String encap;

    @Option(names = "--hops", description = "Hops per table row, 1-4 (default 2).")
    Integer hops;

    @Option(
        names = "--min-healthy",
        paramLabel = "N",
        description =
            "Directors announce the VIP only while at least N backends are healthy and take new"
                + " connections (default 1).")
    Integer minHealthy;

    @Option(
        names = "--table-group",
        paramLabel = "NAME",
        description =
            "Share the table seed of the services in this group (set at creation): while they have"
                + " the same backends their table is built and held once, as GLB's binds of one"
                + " table.")
    String tableGroup;

    @Option(
        names = "--balance",
        paramLabel = "rendezvous|bounded",
        description =
            "How rows choose their primary: rendezvous (default; GLB's table with equal weights,"
                + " the fewest rows moved by a change) or bounded (every backend within 1.05x of"
                + " its weighted share of rows; a change moves a few more).")
    String balance;

    @Option(
        names = "--load-feedback",
        paramLabel = "on|off",
        description =
            "Lower the weight of a backend whose proxy reports more live connections per unit of"
                + " weight than the others, a step every 2 s, and raise it again when that passes"
                + " (default off).")
    String loadFeedback;

    @Option(
        names = "--load-feedback-min",
        paramLabel = "PERCENT",
        description = "The lowest effective weight load feedback sets, in percent (default 25).")
    Integer loadFeedbackMin;

    ServiceSpec.Builder applyTo(ServiceSpec.Builder spec) {
      if (loadFeedback != null) {
        spec.getLoadFeedbackBuilder()
            .setEnabled(
                switch (loadFeedback.toLowerCase(Locale.ROOT)) {
                  case "on" -> true;
                  case "off" -> false;
                  default ->
                      throw new IllegalArgumentException(
                          "--load-feedback is on or off, not " + loadFeedback);
                });
      }
      if (loadFeedbackMin != null) {
        spec.getLoadFeedbackBuilder().setMinPercent(loadFeedbackMin);
      }
      if (balance != null) {
        spec.setBalance(
            Balance.valueOf(upper(balance, "--balance", "rendezvous, bounded", Balance.class)));
      }
      if (tableGroup != null) {
        spec.setTableGroup(tableGroup);
      }
      if (vip != null) {
        spec.setVip(vip);
      }
      if (port != null) {
        spec.setPort(port);
      }
      if (protocol != null) {
        spec.setProtocol(
            Protocol.valueOf(upper(protocol, "--protocol", "tcp, udp", Protocol.class)));
      }
      if (hash != null) {
        spec.setHashFields(
            switch (hash.toLowerCase(Locale.ROOT)) {
              case "address-port" -> HashFields.SOURCE_ADDRESS_PORT;
              case "address" -> HashFields.SOURCE_ADDRESS;
              default ->
                  throw new IllegalArgumentException(
                      "--hash is address-port or address, not " + hash);
            });
      }
      if (encap != null) {
        spec.setEncapsulation(
            Encapsulation.valueOf(upper(encap, "--encap", "gue, ipip", Encapsulation.class)));
      }
      if (minHealthy != null) {
        spec.setMinHealthy(minHealthy);
      }
      if (hops != null) {
        spec.setHopCount(hops);
      }
      return spec;
    }
  }

  static <E extends Enum<E>> String upper(
      String value, String option, String allowed, Class<E> type) {
    String name = value.toUpperCase(Locale.ROOT).replace('-', '_');
    try {
      Enum.valueOf(type, name);
      return name;
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(option + " is one of " + allowed + ", not " + value, e);
    }
  }

  /** Makes the call and prints the service it answers with. */
  void show(
      java.util.function.Function<
              dev.veer.proto.admin.v1.AdminServiceGrpc.AdminServiceBlockingStub, Service>
          call) {
    try (AdminClient client = ctl.client()) {
      Service service = client.call(call);
      ctl.print(service, () -> printService(ctl.out(), service));
    }
  }

  static void printService(PrintWriter out, Service s) {
    ServiceSpec spec = s.getSpec();
    out.printf(
        "%s  %s port %d/%s  hash %s  %s  %d hops  %s  announced with %d healthy%s  (version %d,"
            + " table version %d%s)%n",
        spec.getName(),
        spec.getVip(),
        spec.getPort(),
        spec.getProtocol().name().toLowerCase(Locale.ROOT),
        spec.getHashFields() == HashFields.SOURCE_ADDRESS ? "address" : "address-port",
        spec.getEncapsulation().name().toLowerCase(Locale.ROOT),
        spec.getHopCount(),
        (spec.getBalance() == Balance.BOUNDED ? "bounded" : "rendezvous")
            + (spec.getLoadFeedback().getEnabled() ? ", load feedback" : ""),
        spec.getMinHealthy(),
        spec.getTableGroup().isEmpty() ? "" : "  table group " + spec.getTableGroup(),
        s.getVersion(),
        s.getTableVersion(),
        s.getRetainedGenerations() > 0
            ? ", " + s.getRetainedGenerations() + " earlier generations awaiting flow reports"
            : "");
    if (s.getRowsOutOfHops() > 0 || s.getFlowsOutOfHops() > 0) {
      out.printf(
          "  OUT OF HOPS: %d rows have more possible owners than hops; %d reported flows are in rows"
              + " that do not list their owner%n",
          s.getRowsOutOfHops(), s.getFlowsOutOfHops());
    }
    if (s.getBackendsCount() == 0) {
      out.println("  no backends");
    } else {
      out.printf(
          "  %-40s %-9s %-9s %-6s %-7s %-6s %-8s %s%n",
          "BACKEND", "STATE", "HEALTH", "WEIGHT", "ROWS", "LIVE", "RETAINED", "DRAIN ENDS BY");
    }
    for (Backend b : s.getBackendsList()) {
      out.printf(
          "  %-40s %-9s %-9s %-6s %-7d %-6s %-8d %s%n",
          b.getAddress(),
          b.getState().name().toLowerCase(Locale.ROOT),
          b.getHealth().name().toLowerCase(Locale.ROOT).replace("health_", ""),
          b.getEffectiveWeight() == 0 || b.getEffectiveWeight() == b.getWeight()
              ? Integer.toString(b.getWeight())
              : b.getEffectiveWeight() + "/" + b.getWeight(),
          b.getPrimaryRows(),
          b.getLiveConnections() < 0 ? "-" : Long.toString(b.getLiveConnections()),
          b.getRetainedRows(),
          b.getDrainDeadlineMillis() > 0
              ? java.time.Instant.ofEpochMilli(b.getDrainDeadlineMillis()).toString()
              : b.getState() == dev.veer.proto.types.v1.BackendState.DRAINING
                  ? "its last connection"
                  : "");
    }
    if (s.hasImpact()) {
      ChangeOptions.printImpact(out, s.getImpact());
    }
  }

  @Command(name = "list", description = "List every service.")
  static final class List implements Runnable {
    /** Services a page: about 1.5 KB each with 10 backends, well under gRPC's 4 MiB. */
    static final int PAGE = 500;

    @ParentCommand ServiceCommands parent;

    @Override
    public void run() {
      try (AdminClient client = parent.ctl.client()) {
        // Page by page: thousands of services do not fit one message.
        ListServicesResponse.Builder all = ListServicesResponse.newBuilder();
        String token = "";
        do {
          ListServicesRequest request =
              ListServicesRequest.newBuilder().setPageSize(PAGE).setPageToken(token).build();
          ListServicesResponse page = client.call(s -> s.listServices(request));
          all.addAllServices(page.getServicesList()).setVersion(page.getVersion());
          token = page.getNextPageToken();
        } while (!token.isEmpty());
        ListServicesResponse services = all.build();
        parent.ctl.print(
            services,
            () -> {
              PrintWriter out = parent.ctl.out();
              out.printf(
                  "%d services at version %d%n",
                  services.getServicesCount(), services.getVersion());
              services.getServicesList().forEach(s -> printService(out, s));
            });
      }
    }
  }

  @Command(name = "get", description = "Show one service and its backends.")
  static final class Get implements Runnable {
    @ParentCommand ServiceCommands parent;

    @Parameters(paramLabel = "NAME")
    String name;

    @Override
    public void run() {
      parent.show(s -> s.getService(GetServiceRequest.newBuilder().setName(name).build()));
    }
  }

  @Command(name = "create", description = "Create a service, with its first backends if given.")
  static final class Create implements Runnable {
    @ParentCommand ServiceCommands parent;

    @Parameters(paramLabel = "NAME")
    String name;

    @picocli.CommandLine.Mixin SpecOptions options;

    @picocli.CommandLine.Option(
        names = "--backend",
        paramLabel = "ADDRESS[=STATE]",
        description =
            "A backend the service starts with (repeat for more); its state active (default),"
                + " filling, draining or inactive. All are written in one change.")
    java.util.List<String> backends = new ArrayList<>();

    @Override
    public void run() {
      if (options.vip == null || options.port == null) {
        throw new IllegalArgumentException("service create needs --vip and --port");
      }
      ServiceSpec.Builder spec =
          options.applyTo(ServiceSpec.newBuilder().setName(name).setProtocol(Protocol.TCP));
      CreateServiceRequest.Builder request = CreateServiceRequest.newBuilder().setSpec(spec);
      for (String backend : backends) {
        int equals = backend.indexOf('=');
        Backend.Builder b =
            Backend.newBuilder().setAddress(equals < 0 ? backend : backend.substring(0, equals));
        if (equals >= 0) {
          b.setState(BackendCommands.state(backend.substring(equals + 1)));
        }
        request.addBackends(b);
      }
      parent.show(s -> s.createService(request.build()));
    }
  }

  @Command(
      name = "update",
      description = "Change a service's definition; options not given keep their value.")
  static final class Update implements Runnable {
    @ParentCommand ServiceCommands parent;

    @Parameters(paramLabel = "NAME")
    String name;

    @picocli.CommandLine.Mixin SpecOptions options;

    @picocli.CommandLine.Mixin ChangeOptions change;

    @Override
    public void run() {
      try (AdminClient client = parent.ctl.client()) {
        Service current =
            client.call(s -> s.getService(GetServiceRequest.newBuilder().setName(name).build()));
        ServiceSpec.Builder spec = options.applyTo(current.getSpec().toBuilder());
        // Compare-and-set against what was read: a concurrent change makes this fail, not vanish.
        Service service =
            client.call(
                s ->
                    s.updateService(
                        UpdateServiceRequest.newBuilder()
                            .setSpec(spec)
                            .setExpectedVersion(current.getVersion())
                            .setDryRun(change.dryRun)
                            .setForce(change.force)
                            .build()));
        parent.ctl.print(service, () -> printService(parent.ctl.out(), service));
      }
    }
  }

  @Command(name = "delete", description = "Delete a service.")
  static final class Delete implements Runnable {
    @ParentCommand ServiceCommands parent;

    @Parameters(paramLabel = "NAME")
    String name;

    @Option(
        names = "--force",
        description = "Delete even with backends left (their connections break).")
    boolean force;

    @Option(names = "--dry-run", description = "Only say how many live flows it would end.")
    boolean dryRun;

    @Override
    public void run() {
      try (AdminClient client = parent.ctl.client()) {
        DeleteServiceResponse done =
            client.call(
                s ->
                    s.deleteService(
                        DeleteServiceRequest.newBuilder()
                            .setName(name)
                            .setForce(force)
                            .setDryRun(dryRun)
                            .build()));
        parent.ctl.print(
            done,
            () -> {
              if (!dryRun) {
                parent
                    .ctl
                    .out()
                    .printf("service %s deleted (version %d)%n", name, done.getVersion());
              }
              ChangeOptions.printImpact(parent.ctl.out(), done.getImpact());
            });
      }
    }
  }
}
