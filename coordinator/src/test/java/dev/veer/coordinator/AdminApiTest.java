package dev.veer.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.net.InetAddresses;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.ServiceOptions.HashFields;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.BackendShare;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceRequest;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.GetTableRequest;
import dev.veer.proto.admin.v1.ListServicesRequest;
import dev.veer.proto.admin.v1.ListServicesResponse;
import dev.veer.proto.admin.v1.LookupFlowRequest;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.ServiceTable;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.admin.v1.SetBackendWeightRequest;
import dev.veer.proto.admin.v1.UpdateServiceRequest;
import dev.veer.proto.state.v1.ClusterSettings;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Balance;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The admin API of a real coordinator on an embedded ZooKeeper, over a real gRPC channel. */
class AdminApiTest {
  @TempDir static Path dataDir;

  static Coordinator coordinator;
  static ManagedChannel channel;
  static AdminServiceGrpc.AdminServiceBlockingStub admin;

  @BeforeAll
  static void start() throws Exception {
    coordinator = Coordinator.start(Coordinators.config("c1", dataDir, Optional.empty()));
    channel = Transport.channel(Coordinators.target(coordinator), Optional.empty());
    admin = AdminServiceGrpc.newBlockingStub(channel);
  }

  @AfterAll
  static void stop() throws Exception {
    Transport.close(channel);
    coordinator.close();
  }

  static ServiceSpec spec(String name, String vip, int port) {
    return ServiceSpec.newBuilder()
        .setName(name)
        .setVip(vip)
        .setPort(port)
        .setProtocol(Protocol.TCP)
        .build();
  }

  static Service create(String name, String vip, int port) {
    return admin.createService(
        CreateServiceRequest.newBuilder().setSpec(spec(name, vip, port)).build());
  }

  static Service addBackend(String service, String address, BackendState state) {
    return admin.addBackend(
        AddBackendRequest.newBuilder()
            .setService(service)
            .setAddress(address)
            .setState(state)
            .build());
  }

  static long version() {
    return admin.listServices(ListServicesRequest.getDefaultInstance()).getVersion();
  }

  /**
   * The call fails with {@code code}, its message mentions {@code hint}, and the state is
   * unchanged.
   */
  static void refused(Status.Code code, String hint, Supplier<?> call) {
    long before = version();
    assertThatThrownBy(call::get)
        .isInstanceOfSatisfying(
            StatusRuntimeException.class,
            e -> {
              assertThat(e.getStatus().getCode()).isEqualTo(code);
              assertThat(e.getStatus().getDescription()).contains(hint);
            });
    assertThat(version()).as("state version after a refused call").isEqualTo(before);
  }

  @Test
  void servicesAreListedPageByPageInNameOrderAndThePagesAddUpToTheWholeList() {
    for (int i = 0; i < 5; i++) {
      create("paged-" + i, "203.0.113." + (180 + i), 80);
    }
    List<String> whole =
        admin.listServices(ListServicesRequest.getDefaultInstance()).getServicesList().stream()
            .map(s -> s.getSpec().getName())
            .toList();
    assertThat(whole).isSorted().hasSizeGreaterThanOrEqualTo(5);
    List<String> paged = new ArrayList<>();
    String token = "";
    int pages = 0;
    do {
      ListServicesResponse page =
          admin.listServices(
              ListServicesRequest.newBuilder().setPageSize(2).setPageToken(token).build());
      assertThat(page.getServicesCount()).isBetween(1, 2);
      page.getServicesList().forEach(s -> paged.add(s.getSpec().getName()));
      token = page.getNextPageToken();
      pages++;
    } while (!token.isEmpty());
    assertThat(paged).isEqualTo(whole);
    assertThat(pages).isEqualTo((whole.size() + 1) / 2);
  }

  @Test
  void
      aServiceCreatedWithItsBackendsIsOneWriteWithNoEarlierGenerationAndABadBackendWritesNothing() {
    long before = admin.listServices(ListServicesRequest.getDefaultInstance()).getVersion();
    Service created =
        admin.createService(
            CreateServiceRequest.newBuilder()
                .setSpec(spec("born-whole", "203.0.113.77", 80))
                .addBackends(Backend.newBuilder().setAddress("192.0.2.71"))
                .addBackends(Backend.newBuilder().setAddress("192.0.2.72"))
                .addBackends(
                    Backend.newBuilder().setAddress("192.0.2.73").setState(BackendState.DRAINING))
                .build());
    assertThat(created.getVersion()).isEqualTo(before + 1);
    assertThat(created.getRetainedGenerations()).isZero();
    assertThat(created.getBackendsList())
        .extracting(Backend::getAddress, Backend::getState)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("192.0.2.71", BackendState.ACTIVE),
            org.assertj.core.groups.Tuple.tuple("192.0.2.72", BackendState.ACTIVE),
            org.assertj.core.groups.Tuple.tuple("192.0.2.73", BackendState.DRAINING));

    assertThatThrownBy(
            () ->
                admin.createService(
                    CreateServiceRequest.newBuilder()
                        .setSpec(spec("half-made", "203.0.113.78", 80))
                        .addBackends(Backend.newBuilder().setAddress("192.0.2.74"))
                        .addBackends(Backend.newBuilder().setAddress("2001:db8::74"))
                        .build()))
        .isInstanceOf(StatusRuntimeException.class)
        .hasMessageContaining("INVALID_ARGUMENT")
        .hasMessageContaining("one address family");
    assertThat(admin.listServices(ListServicesRequest.getDefaultInstance()).getServicesList())
        .extracting(s -> s.getSpec().getName())
        .doesNotContain("half-made");
    assertThat(admin.listServices(ListServicesRequest.getDefaultInstance()).getVersion())
        .isEqualTo(created.getVersion());
  }

  @Test
  void servicesAndBackendsAreStoredAndEveryWriteCountsOneVersion() {
    long before = version();
    Service created = create("web", "203.0.113.10", 80);
    assertThat(created.getVersion()).isEqualTo(before + 1);
    assertThat(created.getSpec().getHopCount()).isEqualTo(2);
    addBackend("web", "192.0.2.130", BackendState.ACTIVE);
    Service two = addBackend("web", "192.0.2.134", BackendState.ACTIVE);
    assertThat(two.getVersion()).isEqualTo(before + 3);
    assertThat(two.getBackendsList())
        .extracting(b -> b.getAddress())
        .containsExactly("192.0.2.130", "192.0.2.134");

    Service read = admin.getService(GetServiceRequest.newBuilder().setName("web").build());
    assertThat(read).isEqualTo(two.toBuilder().clearImpact().build());

    Service drained =
        admin.setBackendState(
            SetBackendStateRequest.newBuilder()
                .setService("web")
                .setAddress("192.0.2.130")
                .setState(BackendState.DRAINING)
                .build());
    assertThat(drained.getBackends(0).getState()).isEqualTo(BackendState.DRAINING);
    // Adding the second backend and draining the first each moved rows: two generations kept.
    assertThat(drained.getRetainedGenerations()).isEqualTo(2);
    Service removed =
        admin.removeBackend(
            RemoveBackendRequest.newBuilder().setService("web").setAddress("192.0.2.130").build());
    assertThat(removed.getBackendsList())
        .extracting(b -> b.getAddress())
        .containsExactly("192.0.2.134");
  }

  @Test
  void invalidRequestsAreRefusedWithAnActionableStatusAndChangeNothing() {
    create("api", "203.0.113.20", 443);
    addBackend("api", "192.0.2.140", BackendState.ACTIVE);
    refused(
        Status.Code.INVALID_ARGUMENT, "service name", () -> create("Bad_Name", "203.0.113.21", 80));
    refused(
        Status.Code.INVALID_ARGUMENT,
        "not an IPv4 or IPv6 address",
        () -> create("x", "vip.example", 80));
    refused(
        Status.Code.INVALID_ARGUMENT, "not a usable unicast", () -> create("x", "127.0.0.1", 80));
    refused(
        Status.Code.INVALID_ARGUMENT,
        "port must be 1..65535",
        () -> create("x", "203.0.113.21", 0));
    refused(
        Status.Code.INVALID_ARGUMENT,
        "protocol must be TCP or UDP",
        () ->
            admin.createService(
                CreateServiceRequest.newBuilder()
                    .setSpec(
                        spec("x", "203.0.113.21", 80).toBuilder()
                            .setProtocol(Protocol.PROTOCOL_UNSPECIFIED))
                    .build()));
    refused(
        Status.Code.INVALID_ARGUMENT,
        "hop_count",
        () ->
            admin.createService(
                CreateServiceRequest.newBuilder()
                    .setSpec(spec("x", "203.0.113.21", 80).toBuilder().setHopCount(5))
                    .build()));
    refused(Status.Code.ALREADY_EXISTS, "exists already", () -> create("api", "203.0.113.22", 80));
    refused(
        Status.Code.ALREADY_EXISTS,
        "belong to one service",
        () -> create("api2", "203.0.113.20", 443));
    refused(
        Status.Code.NOT_FOUND,
        "no service named",
        () -> addBackend("nope", "192.0.2.1", BackendState.ACTIVE));
    refused(
        Status.Code.INVALID_ARGUMENT,
        "one address family",
        () -> addBackend("api", "2001:db8::1", BackendState.ACTIVE));
    refused(
        Status.Code.ALREADY_EXISTS,
        "has backend",
        () -> addBackend("api", "192.0.2.140", BackendState.ACTIVE));
    refused(
        Status.Code.INVALID_ARGUMENT,
        "backend state",
        () ->
            admin.setBackendState(
                SetBackendStateRequest.newBuilder()
                    .setService("api")
                    .setAddress("192.0.2.140")
                    .build()));
    refused(
        Status.Code.NOT_FOUND,
        "no backend",
        () ->
            admin.removeBackend(
                RemoveBackendRequest.newBuilder()
                    .setService("api")
                    .setAddress("192.0.2.141")
                    .build()));
    refused(
        Status.Code.FAILED_PRECONDITION,
        "drain it first",
        () ->
            admin.removeBackend(
                RemoveBackendRequest.newBuilder()
                    .setService("api")
                    .setAddress("192.0.2.140")
                    .build()));
    refused(
        Status.Code.FAILED_PRECONDITION,
        "still has 1 backends",
        () -> admin.deleteService(DeleteServiceRequest.newBuilder().setName("api").build()));
    refused(
        Status.Code.ABORTED,
        "read it again",
        () ->
            admin.updateService(
                UpdateServiceRequest.newBuilder()
                    .setSpec(spec("api", "203.0.113.20", 8443))
                    .setExpectedVersion(version() - 1)
                    .build()));
  }

  @Test
  void compareAndSetWithTheCurrentVersionSucceeds() {
    create("cas", "203.0.113.30", 80);
    long current = version();
    Service updated =
        admin.updateService(
            UpdateServiceRequest.newBuilder()
                .setSpec(spec("cas", "203.0.113.30", 8080))
                .setExpectedVersion(current)
                .build());
    assertThat(updated.getSpec().getPort()).isEqualTo(8080);
    assertThat(updated.getVersion()).isEqualTo(current + 1);
  }

  /**
   * The lookup names the row the data plane hashes the flow to, computed here: the director's flow
   * hash ({@link FlowHash}, the BPF program's hash in Java, held to the program by the test bed's
   * packet tests) keyed with the cluster's key as stored, its low row bits. The hops are that row
   * of the table fetched separately.
   */
  static void assertLookup(String service, String client, int port, HashFields fields) {
    ClusterSettings settings = coordinator.store().current().getSettings();
    long hash =
        new FlowHash(settings.getFlowHashKey().toByteArray())
            .hash(InetAddresses.forString(client), port, fields);
    int expectedRow = (int) (hash & ((1L << settings.getRowBits()) - 1));

    var flow =
        admin.lookupFlow(
            LookupFlowRequest.newBuilder()
                .setService(service)
                .setClientAddress(client)
                .setClientPort(port)
                .build());
    assertThat(flow.getRow())
        .as("%s: row of %s port %s", service, client, port)
        .isEqualTo(expectedRow);
    ServiceTable row =
        admin.getTable(
            GetTableRequest.newBuilder()
                .setService(service)
                .setFirstRow(expectedRow)
                .setMaxRows(1)
                .build());
    assertThat(flow.getHopsList()).isEqualTo(row.getRows(0).getHopsList()).isNotEmpty();
  }

  @Test
  void tableSharesCoverEveryRowAndFlowLookupsNameItsHops() {
    create("tbl", "203.0.113.40", 80);
    for (int i = 0; i < 4; i++) {
      addBackend("tbl", "198.51.100." + (10 + i), BackendState.ACTIVE);
    }
    ServiceTable table =
        admin.getTable(
            GetTableRequest.newBuilder().setService("tbl").setFirstRow(100).setMaxRows(3).build());
    assertThat(table.getRowCount()).isEqualTo(65536);
    assertThat(table.getSharesList().stream().mapToInt(BackendShare::getPrimaryRows).sum())
        .isEqualTo(65536);
    assertThat(table.getSharesList().stream().mapToInt(BackendShare::getSecondHopRows).sum())
        .isEqualTo(65536);
    assertThat(table.getSharesList())
        .allSatisfy(s -> assertThat(s.getPrimaryRows()).isBetween(15000, 17800));
    assertThat(table.getRowsList()).extracting(r -> r.getRow()).containsExactly(100, 101, 102);
    // Two hops, plus the primaries of the backend sets each add replaced (retained generations).
    assertThat(table.getRows(0).getHopsCount()).isBetween(2, 4);

    for (int port : new int[] {40000, 40001, 7}) {
      assertLookup("tbl", "192.0.2.99", port, HashFields.SOURCE_IP_AND_PORT);
    }
    admin.createService(
        CreateServiceRequest.newBuilder()
            .setSpec(
                spec("sticky", "203.0.113.41", 80).toBuilder()
                    .setHashFields(dev.veer.proto.types.v1.HashFields.SOURCE_ADDRESS))
            .build());
    addBackend("sticky", "198.51.100.20", BackendState.ACTIVE);
    addBackend("sticky", "198.51.100.21", BackendState.ACTIVE);
    for (int port : new int[] {40000, 40001, 7}) {
      assertLookup("sticky", "192.0.2.99", port, HashFields.SOURCE_IP);
    }
    refused(
        Status.Code.INVALID_ARGUMENT,
        "first_row",
        () ->
            admin.getTable(
                GetTableRequest.newBuilder()
                    .setService("tbl")
                    .setFirstRow(70000)
                    .setMaxRows(1)
                    .build()));
  }

  @Test
  void weightsSetTheShareOfRowsAndAChangeOfWeightOrBalanceKeepsThePreviousPrimaries() {
    create("weighted", "203.0.113.60", 80);
    admin.addBackend(
        AddBackendRequest.newBuilder()
            .setService("weighted")
            .setAddress("192.0.2.61")
            .setState(BackendState.ACTIVE)
            .build());
    Service created =
        admin.addBackend(
            AddBackendRequest.newBuilder()
                .setService("weighted")
                .setAddress("192.0.2.62")
                .setState(BackendState.ACTIVE)
                .setWeight(300)
                .build());
    assertThat(created.getBackendsList()).extracting(Backend::getWeight).containsExactly(100, 300);
    // About a quarter and three quarters of 65,536 rows (weighted rendezvous).
    assertThat(created.getBackends(0).getPrimaryRows()).isBetween(15_000, 17_800);
    assertThat(created.getBackends(0).getPrimaryRows() + created.getBackends(1).getPrimaryRows())
        .isEqualTo(65_536);
    assertThat(created.getSpec().getBalance()).isEqualTo(Balance.RENDEZVOUS);

    Service reweighed =
        admin.setBackendWeight(
            SetBackendWeightRequest.newBuilder()
                .setService("weighted")
                .setAddress("192.0.2.62")
                .setWeight(100)
                .build());
    assertThat(reweighed.getBackends(1).getPrimaryRows()).isBetween(31_000, 34_500);
    assertThat(reweighed.getRetainedGenerations()).isEqualTo(created.getRetainedGenerations() + 1);
    ServiceTable table =
        admin.getTable(GetTableRequest.newBuilder().setService("weighted").build());
    assertThat(table.getSharesList()).extracting(BackendShare::getWeight).containsExactly(100, 100);

    Service bounded =
        admin.updateService(
            UpdateServiceRequest.newBuilder()
                .setSpec(
                    spec("weighted", "203.0.113.60", 80).toBuilder().setBalance(Balance.BOUNDED))
                .build());
    assertThat(bounded.getSpec().getBalance()).isEqualTo(Balance.BOUNDED);
    assertThat(bounded.getRetainedGenerations()).isEqualTo(reweighed.getRetainedGenerations() + 1);
    // Two equal backends, bounded: each at most 1.05x half the rows.
    assertThat(bounded.getBackendsList())
        .extracting(Backend::getPrimaryRows)
        .allMatch(rows -> rows <= 34_406);

    for (int weight : new int[] {0, 10_001}) {
      refused(
          Status.Code.INVALID_ARGUMENT,
          "weight must be 1 to 10000",
          () ->
              admin.setBackendWeight(
                  SetBackendWeightRequest.newBuilder()
                      .setService("weighted")
                      .setAddress("192.0.2.61")
                      .setWeight(weight)
                      .build()));
    }
    refused(
        Status.Code.INVALID_ARGUMENT,
        "weight must be 1 to 10000 (0 for the default 100)",
        () ->
            admin.addBackend(
                AddBackendRequest.newBuilder()
                    .setService("weighted")
                    .setAddress("192.0.2.63")
                    .setWeight(20_000)
                    .build()));
    refused(
        Status.Code.INVALID_ARGUMENT,
        "unknown balance value 7",
        () ->
            admin.createService(
                CreateServiceRequest.newBuilder()
                    .setSpec(spec("oddly", "203.0.113.61", 80).toBuilder().setBalanceValue(7))
                    .build()));
  }

  @Test
  void everyCallIsCountedByMethodAndStatusCode() throws Exception {
    create("counted", "192.0.2.77", 80);
    String get = AdminServiceGrpc.getGetServiceMethod().getFullMethodName();
    double ok = Coordinators.callsHandled(coordinator, get, "OK");
    double notFound = Coordinators.callsHandled(coordinator, get, "NOT_FOUND");
    admin.getService(GetServiceRequest.newBuilder().setName("counted").build());
    refused(
        Status.Code.NOT_FOUND,
        "no-such",
        () -> admin.getService(GetServiceRequest.newBuilder().setName("no-such").build()));
    assertThat(Coordinators.callsHandled(coordinator, get, "OK")).isEqualTo(ok + 1);
    assertThat(Coordinators.callsHandled(coordinator, get, "NOT_FOUND")).isEqualTo(notFound + 1);
    assertThat(Coordinators.callsOpen(coordinator, get)).isZero();
  }
}
