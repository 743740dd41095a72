package dev.veer.coordinator.admin;

import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.coordinator.agents.AgentReports;
import dev.veer.coordinator.cluster.Membership;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.coordinator.retention.FlowReport;
import dev.veer.coordinator.retention.Strandings;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.BackendShare;
import dev.veer.proto.admin.v1.ChangeImpact;
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
import dev.veer.proto.admin.v1.ServiceRetention;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.ServiceTable;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.admin.v1.SetBackendWeightRequest;
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
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.UnaryOperator;
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
                  request.getExpectedVersion(),
                  s ->
                      Services.create(
                          s, request.getSpec(), seed, request.getBackendsList(), clock.millis()));
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
            change(
                request.getSpec().getName(),
                request.getExpectedVersion(),
                request.getDryRun(),
                request.getForce(),
                s -> Services.update(s, request.getSpec(), clock.millis())));
  }

  @Override
  public void deleteService(
      DeleteServiceRequest request, StreamObserver<DeleteServiceResponse> response) {
    answer(
        response,
        () -> {
          Outcome outcome =
              apply(
                  request.getName(),
                  request.getExpectedVersion(),
                  request.getDryRun(),
                  // Deleting a service with backends needs force anyway, and breaks every flow.
                  true,
                  s -> Services.delete(s, request.getName(), request.getForce()));
          if (!request.getDryRun()) {
            log.info(
                "service {} deleted at version {}: {} live flows ended with it",
                request.getName(),
                outcome.state().getVersion(),
                outcome.impact().getFlowsStranded());
          }
          return DeleteServiceResponse.newBuilder()
              .setVersion(outcome.state().getVersion())
              .setImpact(outcome.impact())
              .build();
        });
  }

  @Override
  public void getService(GetServiceRequest request, StreamObserver<Service> response) {
    answer(response, () -> view(store.read(), request.getName()));
  }

  @Override
  public void listServices(
      ListServicesRequest request, StreamObserver<ListServicesResponse> response) {
    answer(response, () -> services(request));
  }

  /** Every service as the admin API shows it. */
  public ListServicesResponse services() throws Exception {
    return services(ListServicesRequest.getDefaultInstance());
  }

  /** A page of services, in name order, after the page token's name. */
  private ListServicesResponse services(ListServicesRequest request) throws Exception {
    ClusterState state = store.read();
    ListServicesResponse.Builder out =
        ListServicesResponse.newBuilder().setVersion(state.getVersion());
    AgentReports reports = AgentReports.of(agents.all());
    var tables = compiler.compile(state);
    int size = request.getPageSize() == 0 ? Integer.MAX_VALUE : request.getPageSize();
    String after = request.getPageToken();
    for (ServiceState s : state.getServicesList()) {
      if (!after.isEmpty() && s.getName().compareTo(after) <= 0) {
        continue;
      }
      if (out.getServicesCount() == size) {
        out.setNextPageToken(out.getServices(size - 1).getSpec().getName());
        break;
      }
      out.addServices(view(state, s, reports, tables.get(s.getName())));
    }
    return out.build();
  }

  @Override
  public void addBackend(AddBackendRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () ->
            change(
                request.getService(),
                request.getExpectedVersion(),
                request.getDryRun(),
                request.getForce(),
                s ->
                    Services.addBackend(
                        s,
                        request.getService(),
                        request.getAddress(),
                        request.getState(),
                        request.getWeight(),
                        clock.millis())));
  }

  @Override
  public void removeBackend(RemoveBackendRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () -> {
          long live =
              Addresses.isLiteral(request.getAddress())
                  ? AgentReports.of(agents.all())
                      .liveConnections(request.getService(), request.getAddress())
                  : -1;
          return change(
              request.getService(),
              request.getExpectedVersion(),
              request.getDryRun(),
              request.getForce(),
              s ->
                  Services.removeBackend(
                      s,
                      request.getService(),
                      request.getAddress(),
                      request.getForce() || request.getDryRun(),
                      live,
                      clock.millis()));
        });
  }

  @Override
  public void setBackendState(SetBackendStateRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () ->
            change(
                request.getService(),
                request.getExpectedVersion(),
                request.getDryRun(),
                request.getForce(),
                s ->
                    Services.setBackendState(
                        s,
                        request.getService(),
                        request.getAddress(),
                        request.getState(),
                        request.getDrainTimeoutSeconds(),
                        clock.millis())));
  }

  @Override
  public void setBackendWeight(SetBackendWeightRequest request, StreamObserver<Service> response) {
    answer(
        response,
        () ->
            change(
                request.getService(),
                request.getExpectedVersion(),
                request.getDryRun(),
                request.getForce(),
                s ->
                    Services.setBackendWeight(
                        s,
                        request.getService(),
                        request.getAddress(),
                        request.getWeight(),
                        clock.millis())));
  }

  /** A change's resulting state (for a dry run: the state it would write) and its impact. */
  private record Outcome(ClusterState state, ChangeImpact impact) {}

  /** Applies a change to one service and answers with the service as it is, or would be. */
  private Service change(
      String service,
      long expectedVersion,
      boolean dryRun,
      boolean force,
      UnaryOperator<ClusterState> op)
      throws Exception {
    Outcome outcome = apply(service, expectedVersion, dryRun, force, op);
    ClusterState state = outcome.state();
    return view(
            state,
            Services.require(state, service),
            AgentReports.of(agents.all()),
            compiled(state, service))
        .toBuilder()
        .setImpact(outcome.impact())
        .build();
  }

  /**
   * Judges what {@code op} does to the flows of {@code service} from its proxies' latest reports
   * and, unless this is a dry run, writes it: a change that strands live flows (rows that would
   * lose an owner that still has flows there) only with {@code force}.
   */
  private Outcome apply(
      String service,
      long expectedVersion,
      boolean dryRun,
      boolean force,
      UnaryOperator<ClusterState> op)
      throws Exception {
    AgentReports reports = AgentReports.of(agents.all());
    if (dryRun) {
      ClusterState state = store.read();
      if (expectedVersion != 0 && expectedVersion != state.getVersion()) {
        throw AdminException.stale(expectedVersion, state.getVersion());
      }
      ClusterState next = op.apply(state);
      return new Outcome(next, impact(state, next, service, reports, true));
    }
    ChangeImpact[] impact = new ChangeImpact[1];
    ClusterState next =
        store.update(
            expectedVersion,
            s -> {
              ClusterState n = op.apply(s);
              ChangeImpact i = impact(s, n, service, reports, false);
              if (i.getFlowsStranded() > 0 && !force) {
                throw AdminException.precondition(
                    "this change would strand %d live flows in %d rows of service '%s' (%s): rows"
                        + " would lose a backend that still has connections there. See them with"
                        + " --dry-run; wait for them to end (drain the backend first), or force"
                        + " the change to break them",
                    i.getFlowsStranded(),
                    i.getRowsStranded(),
                    service,
                    i.getBackendsList().stream()
                        .map(b -> b.getAddress() + ": " + b.getFlows() + " flows")
                        .collect(java.util.stream.Collectors.joining(", ")));
              }
              impact[0] = i;
              return n;
            });
    if (impact[0].getFlowsStranded() > 0) {
      log.warn(
          "service {}: a forced change at version {} stranded {} live flows in {} rows",
          service,
          next.getVersion(),
          impact[0].getFlowsStranded(),
          impact[0].getRowsStranded());
    }
    return new Outcome(next, impact[0]);
  }

  /** What changing {@code before} to {@code after} does to {@code service}'s live flows. */
  private ChangeImpact impact(
      ClusterState before,
      ClusterState after,
      String service,
      AgentReports reports,
      boolean dryRun) {
    ServiceState was = Services.find(before, service).orElse(null);
    ServiceState will = Services.find(after, service).orElse(null);
    int rowBits = after.getSettings().getRowBits();
    if (was == null || was.equals(will)) {
      return ChangeImpact.newBuilder().setDryRun(dryRun).build();
    }
    Map<ByteString, FlowReport> flows = reports.flows(was, rowBits);
    List<String> unreported =
        was.getBackendsList().stream()
            .filter(b -> !flows.containsKey(b.getAddress()))
            .map(b -> Addresses.literal(b.getAddress()))
            .toList();
    RendezvousTable from = table(before, service);
    RendezvousTable to = will == null ? null : compiler.preview(will, rowBits);
    return Strandings.lost(from, to, flows).impact(dryRun, unreported);
  }

  /** The compiled table of {@code service} in {@code state}. */
  private RendezvousTable table(ClusterState state, String service) {
    TableCompiler.Compiled compiled = compiled(state, service);
    return compiled == null ? null : compiled.table();
  }

  private TableCompiler.Compiled compiled(ClusterState state, String service) {
    return compiler.compile(state).get(service);
  }

  @Override
  public void getStatus(GetStatusRequest request, StreamObserver<ClusterStatus> response) {
    answer(response, this::status);
  }

  /** Coordinators, directors and agents, as the admin API shows them. */
  public ClusterStatus status() throws Exception {
    ClusterState state = store.read();
    ClusterStatus.Builder out = ClusterStatus.newBuilder();
    for (Service s : services().getServicesList()) {
      out.addRetention(
          ServiceRetention.newBuilder()
              .setService(s.getSpec().getName())
              .setRetainedGenerations(s.getRetainedGenerations())
              .setEvidenceRows(
                  s.getBackendsList().stream().mapToInt(Backend::getRetainedRows).sum())
              .setRowsOutOfHops(s.getRowsOutOfHops())
              .setFlowsOutOfHops(s.getFlowsOutOfHops()));
    }
    return out.setVersion(state.getVersion())
        .setSettings(
            ClusterSettings.newBuilder()
                .setRowBits(state.getSettings().getRowBits())
                .setGuePort(state.getSettings().getGuePort())
                .setSettleSeconds(state.getSettings().getSettleSeconds())
                .setCheckIntervalMillis(state.getSettings().getCheckIntervalMillis())
                .setCheckTimeoutMillis(state.getSettings().getCheckTimeoutMillis())
                .setHealthThreshold(state.getSettings().getHealthThreshold())
                .setNicHash(!state.getSettings().getNicHashKey().isEmpty()))
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
              .setSecondHopRows(second[i])
              .setWeight(table.backends().get(i).weight()));
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
          FlowHash hash =
              FlowHash.of(
                  state.getSettings().getFlowHashKey().toByteArray(),
                  state.getSettings().getNicHashKey().toByteArray());
          InetAddress vip = Addresses.fromBytes(service.getVip());
          if (vip.getAddress().length != client.getAddress().length) {
            throw AdminException.invalid(
                "client %s is not of the family of %s's VIP %s",
                request.getClientAddress(), service.getName(), vip.getHostAddress());
          }
          long h =
              hash.hash(
                  client,
                  request.getClientPort(),
                  vip,
                  service.getPort(),
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
    return view(
        state, Services.require(state, name), AgentReports.of(agents.all()), compiled(state, name));
  }

  /**
   * A service as the admin API shows it; with its table (or null), also how many rows are out of
   * hops and how many reported flows its table does not reach.
   */
  static Service view(
      ClusterState state, ServiceState s, AgentReports agents, TableCompiler.Compiled compiled) {
    Map<ByteString, Integer> retained = new java.util.HashMap<>();
    s.getEvidenceList().forEach(e -> retained.put(e.getAddress(), e.getRows().getGapsCount()));
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
                    .setHopCount(s.getHopCount())
                    .setMinHealthy(Math.max(1, s.getMinHealthy()))
                    .setTableGroup(s.getTableGroup())
                    .setBalance(Services.balance(s.getBalance()))
                    .setLoadFeedback(s.getLoadFeedback()));
    for (int i = 0; i < s.getBackendsCount(); i++) {
      BackendRecord b = s.getBackends(i);
      out.addBackends(
          Backend.newBuilder()
              .setAddress(Addresses.literal(b.getAddress()))
              .setState(b.getState())
              .setHealth(b.getHealth())
              .setDrainDeadlineMillis(b.getDrainDeadlineMillis())
              .setLiveConnections(agents.liveConnections(s.getName(), b.getAddress()))
              .setRetainedRows(retained.getOrDefault(b.getAddress(), 0))
              .setWeight(Services.weight(b))
              .setEffectiveWeight(Services.effectiveWeight(b))
              .setPrimaryRows(
                  compiled == null || compiled.primaryRows().length() != s.getBackendsCount()
                      ? 0
                      : compiled.primaryRows().get(i)));
    }
    if (compiled != null) {
      // The rows are decoded only for a service whose proxies report flows.
      var flows = agents.flows(s, state.getSettings().getRowBits());
      out.setRowsOutOfHops(compiled.rowsOutOfHops())
          .setFlowsOutOfHops(
              flows.isEmpty() ? 0 : Strandings.unreachable(compiled.table(), flows).flows());
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
