package dev.veer.ctl;

import dev.veer.proto.admin.v1.LookupFlowRequest;
import dev.veer.proto.admin.v1.LookupFlowResponse;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(
    name = "lookup",
    description = "The table row and hops a client's flow gets, as the directors compute them.")
final class LookupCommand implements Runnable {
  @ParentCommand VeerCtl ctl;

  @Parameters(index = "0", paramLabel = "SERVICE")
  String service;

  @Parameters(index = "1", paramLabel = "CLIENT_ADDRESS")
  String client;

  @Parameters(
      index = "2",
      paramLabel = "CLIENT_PORT",
      defaultValue = "0",
      description = "The client's port (ignored by services that hash the address only).")
  int port;

  @Override
  public void run() {
    try (AdminClient admin = ctl.client()) {
      LookupFlowResponse flow =
          admin.call(
              s ->
                  s.lookupFlow(
                      LookupFlowRequest.newBuilder()
                          .setService(service)
                          .setClientAddress(client)
                          .setClientPort(port)
                          .build()));
      ctl.print(
          flow,
          () ->
              ctl.out()
                  .printf(
                      "%s %s:%d -> row %d: %s (table version %d)%n",
                      service,
                      client,
                      port,
                      flow.getRow(),
                      String.join(" then ", flow.getHopsList()),
                      flow.getTableVersion()));
    }
  }
}
