package dev.veer.testbed;

import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Protocol;

/** The tests' service "web": the bed's IPv4 VIP, port 80, TCP. */
public final class WebService {
  private WebService() {}

  /**
   * Creates it with the bed's first {@code active} proxies as ACTIVE backends, and waits until the
   * router has learnt the VIP from every director in its ECMP set.
   */
  public static void create(
      AdminServiceGrpc.AdminServiceBlockingStub admin, TestBed bed, int active) {
    admin.createService(
        CreateServiceRequest.newBuilder()
            .setSpec(
                ServiceSpec.newBuilder()
                    .setName("web")
                    .setVip(TestBed.VIP4.getHostAddress())
                    .setPort(TestBed.SERVICE_PORT)
                    .setProtocol(Protocol.TCP))
            .build());
    for (int p = 0; p < active; p++) {
      admin.addBackend(
          AddBackendRequest.newBuilder()
              .setService("web")
              .setAddress(bed.proxies().get(p).address4().getHostAddress())
              .setState(BackendState.ACTIVE)
              .build());
    }
    bed.awaitEcmp(TestBed.VIP4);
  }
}
