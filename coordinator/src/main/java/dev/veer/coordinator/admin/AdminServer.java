package dev.veer.coordinator.admin;

import com.google.common.net.InetAddresses;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.coordinator.agents.LiveConnections;
import dev.veer.coordinator.cluster.Membership;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.BackendShare;
import dev.veer.proto.admin.v1.ClusterSettings;
import dev.veer.proto.admin.v1.ClusterStatus;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceResponse;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.GetTableRequest;
import dev.veer.proto.admin.v1.ListServicesRequest;
import dev.veer.proto.admin.v1.ListServicesResponse;
import dev.veer.proto.admin.v1.LookupFlowRequest;
import dev.veer.proto.admin.v1.LookupFlowResponse;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.ServiceTable;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.admin.v1.TableRow;
import dev.veer.proto.admin.v1.UpdateServiceRequest;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.HashFields;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.net.InetAddress;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.zookeeper.KeeperException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin API. Writes go to ZooKeeper compare-and-set through {@link ClusterStore}; a call
 * returns once its change is stored (directors follow from there). Every refusal is a gRPC status
 * with a message that says what to do; nothing is written then.
 */
public final class AdminServer extends AdminServiceGrpc.AdminServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(AdminServer.class);

  private final ClusterStore store;
  private final TableCompiler compiler;
  private final StatusRegistry<DirectorStatus> directors;
  private final StatusRegistry<AgentStatus> agents;
  private final Membership membership;
  private final Clock clock;
  private final SecureRandom random = new SecureRandom();

  public AdminServer(
      ClusterStore store,
      TableCompiler compiler,
      StatusRegistry<DirectorStatus> directors,
      StatusRegistry<AgentStatus> agents,
      Membership membership,
      Clock clock) {
    this.store = store;
    this.compiler = compiler;
    this.directors = directors;
    this.agents = agents;
    this.membership = membership;
    this.clock = clock;
  }

  @Override
  public void createService(CreateServiceRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () -> {
          byte[] seed = new byte[16];
          random.nextBytes(seed);
          ClusterState next =
              store.update(
                  request.getExpectedVersion(), s -> Services.create(s, request.getSpec(), seed));
          log.info(
              "service {} created at version {}", request.getSpec().getName(), next.getVersion());
          return view(next, request.getSpec().getName());
        });
  }

  @Override
  public void updateService(UpdateServiceRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () ->
            view(
                store.update(
                    request.getExpectedVersion(), s -> Services.update(s, request.getSpec())),
                request.getSpec().getName()));
  }

  @Override
  public void deleteService(
      DeleteServiceRequest request, StreamObserver<DeleteServiceResponse> response) {
    answer(
        response,
        () -> {
          ClusterState next =
              store.update(
                  request.getExpectedVersion(),
                  s -> Services.delete(s, request.getName(), request.getForce()));
          log.info("service {} deleted at version {}", request.getName(), next.getVersion());
          return DeleteServiceResponse.newBuilder().setVersion(next.getVersion()).build();
        });
  }

  @Override
  public void getService(GetServiceRequest request, StreamObserver<Service> response) {
    answer(response, () -> view(store.read().state(), request.getName()));
  }

  @Override
  public void listServices(
      ListServicesRequest request, StreamObserver<ListServicesResponse> response) {
    answer(response, this::services);
  }

  /** Every service as the admin API shows it. */
  public ListServicesResponse services() throws Exception {
    ClusterState state = store.read().state();
    ListServicesResponse.Builder out =
        ListServicesResponse.newBuilder().setVersion(state.getVersion());
    List<AgentStatus> reports = agents.all();
    state.getServicesList().forEach(s -> out.addServices(view(state, s, reports)));
    return out.build();
  }

  @Override
  public void addBackend(AddBackendRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () ->
            view(
                store.update(
                    request.getExpectedVersion(),
                    s ->
                        Services.addBackend(
                            s,
                            request.getService(),
                            request.getAddress(),
                            request.getState(),
                            clock.millis())),
                request.getService()));
  }

  @Override
  public void removeBackend(RemoveBackendRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () -> {
          long live =
              Addresses.isLiteral(request.getAddress())
                  ? LiveConnections.of(agents.all(), request.getService(), request.getAddress())
                  : -1;
          return view(
              store.update(
                  request.getExpectedVersion(),
                  s ->
                      Services.removeBackend(
                          s,
                          request.getService(),
                          request.getAddress(),
                          request.getForce(),
                          live,
                          clock.millis())),
              request.getService());
        });
  }

  @Override
  public void setBackendState(SetBackendStateRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () ->
            view(
                store.update(
                    request.getExpectedVersion(),
                    s ->
                        Services.setBackendState(
                            s,
                            request.getService(),
                            request.getAddress(),
                            request.getState(),
                            request.getDrainTimeoutSeconds(),
                            clock.millis())),
                request.getService()));
  }

  @Override
  public void getStatus(GetStatusRequest request, StreamObserver<ClusterStatus> response) {
    answer(response, this::status);
  }

  /** Coordinators, directors and agents, as the admin API shows them. */
  public ClusterStatus status() throws Exception {
    ClusterState state = store.read().state();
    return ClusterStatus.newBuilder()
        .setVersion(state.getVersion())
        .setSettings(
            ClusterSettings.newBuilder()
                .setRowBits(state.getSettings().getRowBits())
                .setGuePort(state.getSettings().getGuePort())
                .setSettleSeconds(state.getSettings().getSettleSeconds())
                .setCheckIntervalMillis(state.getSettings().getCheckIntervalMillis())
                .setCheckTimeoutMillis(state.getSettings().getCheckTimeoutMillis())
                .setHealthThreshold(state.getSettings().getHealthThreshold()))
        .addAllCoordinators(membership.coordinators())
        .addAllDirectors(directors.all())
        .addAllAgents(agents.all())
        .build();
  }

  @Override
  public void getTable(GetTableRequest request, StreamObserver<ServiceTable> response) {
    answer(response, () -> table(request));
  }

  /** A page of a service's table rows, and every backend's share of rows. */
  public ServiceTable table(GetTableRequest request) {
    ClusterState state = store.current();
    Services.require(state, request.getService());
    TableCompiler.Compiled compiled = compiler.compile(state).get(request.getService());
    RendezvousTable table = compiled.table();
    if (request.getFirstRow() >= table.rowCount() && request.getMaxRows() > 0) {
      throw AdminException.invalid(
          "first_row %d is past the table's %d rows", request.getFirstRow(), table.rowCount());
    }
    ServiceTable.Builder out =
        ServiceTable.newBuilder()
            .setService(request.getService())
            .setTableVersion(compiled.service().getTableVersion())
            .setRowCount(table.rowCount());
    long end = Math.min((long) request.getFirstRow() + request.getMaxRows(), table.rowCount());
    for (int row = request.getFirstRow(); row < end; row++) {
      out.addRows(TableRow.newBuilder().setRow(row).addAllHops(hopLiterals(table, row)));
    }
    int[] primary = new int[table.backends().size()];
    int[] second = new int[table.backends().size()];
    for (int row = 0; row < table.rowCount(); row++) {
      int[] hops = table.hops(row);
      if (hops.length > 0) {
        primary[hops[0]]++;
      }
      if (hops.length > 1) {
        second[hops[1]]++;
      }
    }
    for (int i = 0; i < primary.length; i++) {
      out.addShares(
          BackendShare.newBuilder()
              .setAddress(InetAddresses.toAddrString(table.backends().get(i).address()))
              .setPrimaryRows(primary[i])
              .setSecondHopRows(second[i]));
    }
    return out.build();
  }

  @Override
  public void lookupFlow(LookupFlowRequest request, StreamObserver<LookupFlowResponse> response) {
    answer(
        response,
        () -> {
          ClusterState state = store.current();
          ServiceState service = Services.require(state, request.getService());
          InetAddress client = Addresses.parseUnicast(request.getClientAddress(), "client_address");
          if (request.getClientPort() > 65535) {
            throw AdminException.invalid(
                "client_port must be 0..65535, got %d", request.getClientPort());
          }
          FlowHash hash = new FlowHash(state.getSettings().getFlowHashKey().toByteArray());
          long h =
              hash.hash(
                  client,
                  request.getClientPort(),
                  service.getHashFields() == HashFields.SOURCE_ADDRESS
                      ? ServiceOptions.HashFields.SOURCE_IP
                      : ServiceOptions.HashFields.SOURCE_IP_AND_PORT);
          int row = FlowHash.row(h, state.getSettings().getRowBits());
          TableCompiler.Compiled compiled = compiler.compile(state).get(service.getName());
          return LookupFlowResponse.newBuilder()
              .setRow(row)
              .addAllHops(hopLiterals(compiled.table(), row))
              .setTableVersion(service.getTableVersion())
              .build();
        });
  }

  private static Iterable<String> hopLiterals(RendezvousTable table, int row) {
    return java.util.Arrays.stream(table.hops(row))
        .mapToObj(i -> InetAddresses.toAddrString(table.backends().get(i).address()))
        .toList();
  }

  private Service view(ClusterState state, String name) throws Exception {
    return view(state, Services.require(state, name), agents.all());
  }

  static Service view(ClusterState state, ServiceState s, List<AgentStatus> agents) {
    Service.Builder out =
        Service.newBuilder()
            .setVersion(state.getVersion())
            .setTableVersion(s.getTableVersion())
            .setRetainedGenerations(s.getGenerationsCount())
            .setSpec(
                ServiceSpec.newBuilder()
                    .setName(s.getName())
                    .setVip(Addresses.literal(s.getVip()))
                    .setPort(s.getPort())
                    .setProtocol(s.getProtocol())
                    .setHashFields(s.getHashFields())
                    .setEncapsulation(s.getEncapsulation())
                    .setHopCount(s.getHopCount()));
    for (BackendRecord b : s.getBackendsList()) {
      String address = Addresses.literal(b.getAddress());
      out.addBackends(
          Backend.newBuilder()
              .setAddress(address)
              .setState(b.getState())
              .setHealth(b.getHealth())
              .setDrainDeadlineMillis(b.getDrainDeadlineMillis())
              .setLiveConnections(LiveConnections.of(agents, s.getName(), address)));
    }
    return out.build();
  }

  /** Runs a call, turning every failure into a status a client can act on. */
  private static <T> void answer(StreamObserver<T> response, Callable<T> call) {
    T result;
    try {
      result = call.call();
    } catch (AdminException e) {
      response.onError(e.toStatus());
      return;
    } catch (KeeperException.ConnectionLossException | KeeperException.SessionExpiredException e) {
      response.onError(
          Status.UNAVAILABLE
              .withDescription(
                  "ZooKeeper is unreachable from this coordinator ("
                      + e.code()
                      + "); retry, or ask another coordinator")
              .asRuntimeException());
      return;
    } catch (StatusRuntimeException e) {
      response.onError(e);
      return;
    } catch (Exception e) {
      log.error("admin call failed", e);
      response.onError(Status.INTERNAL.withDescription(e.toString()).asRuntimeException());
      return;
    }
    response.onNext(result);
    response.onCompleted();
  }
}
