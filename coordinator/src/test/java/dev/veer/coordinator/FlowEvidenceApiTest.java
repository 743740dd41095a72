package dev.veer.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.veer.bpf.abi.VeerAbi;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.GetTableRequest;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.ServiceTable;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.admin.v1.TableRow;
import dev.veer.proto.proxy.v1.AgentReport;
import dev.veer.proto.proxy.v1.AgentUpdate;
import dev.veer.proto.proxy.v1.LoadReport;
import dev.veer.proto.proxy.v1.ProxyAgentServiceGrpc;
import dev.veer.proto.proxy.v1.Register;
import dev.veer.proto.proxy.v1.ServiceLoad;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.FlowRows;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Flow evidence through a real coordinator: proxy agents (real gRPC streams, playing the agent's
 * part of the protocol) report the rows their flows are in; the leader keeps those rows' owners in
 * the table, drops a generation once every backend has reported from its version, and the admin API
 * judges changes by the flows they would strand.
 */
class FlowEvidenceApiTest {
  private static final String SERVICE = "ev";
  private static final String[] BACKENDS = {"198.51.100.1", "198.51.100.2", "198.51.100.3"};
  private static final String NEWCOMER = "198.51.100.4";
  private static final int FLOWS = 60;

  @TempDir static Path dataDir;

  static Coordinator coordinator;
  static ManagedChannel channel;
  static AdminServiceGrpc.AdminServiceBlockingStub admin;

  @BeforeAll
  static void start() throws Exception {
    coordinator =
        Coordinator.start(
            Coordinators.config("c1", dataDir, Optional.empty())
                .withCluster(
                    new Coordinator.ClusterDefaults(
                        VeerAbi.DEFAULT_ROW_BITS, VeerAbi.GUE_PORT_DEFAULT, 600, 100, 50, 2)));
    channel = Transport.channel(Coordinators.target(coordinator), Optional.empty());
    admin = AdminServiceGrpc.newBlockingStub(channel);
  }

  @AfterAll
  static void stop() throws Exception {
    Transport.close(channel);
    coordinator.close();
  }

  /** One agent's stream: the updates it got, and a way to report. */
  static final class Agent implements AutoCloseable {
    final LinkedBlockingDeque<AgentUpdate> updates = new LinkedBlockingDeque<>();
    final CompletableFuture<Status> ended = new CompletableFuture<>();
    final StreamObserver<AgentReport> out;

    Agent(String id, String address) {
      out =
          ProxyAgentServiceGrpc.newStub(channel)
              .connect(
                  new StreamObserver<>() {
                    @Override
                    public void onNext(AgentUpdate value) {
                      updates.add(value);
                    }

                    @Override
                    public void onError(Throwable t) {
                      ended.complete(Status.fromThrowable(t));
                    }

                    @Override
                    public void onCompleted() {
                      ended.complete(Status.OK);
                    }
                  });
      out.onNext(
          AgentReport.newBuilder()
              .setRegister(Register.newBuilder().setAgentId(id).addAddresses(address))
              .build());
    }

    AgentUpdate latest() throws InterruptedException {
      AgentUpdate first = updates.pollFirst(10, TimeUnit.SECONDS);
      assertThat(first).as("an update from the coordinator").isNotNull();
      AgentUpdate last = first;
      for (AgentUpdate u; (u = updates.poll()) != null; ) {
        last = u;
      }
      updates.addFirst(last);
      return last;
    }

    /** Reports flows in {@code rows} (one each), as the agent does after reading its sockets. */
    void report(int[] rows, long dataPlaneVersion, int rowBits) {
      int[] ones = new int[rows.length];
      java.util.Arrays.fill(ones, 1);
      report(FlowRowsCodec.encode(rowBits, rows, ones), rows.length, dataPlaneVersion);
    }

    void report(FlowRows rows, long connections, long dataPlaneVersion) {
      out.onNext(
          AgentReport.newBuilder()
              .setLoad(
                  LoadReport.newBuilder()
                      .setDataPlaneVersion(dataPlaneVersion)
                      .addServices(
                          ServiceLoad.newBuilder()
                              .setService(SERVICE)
                              .setLiveConnections(connections)
                              .setRows(rows)))
              .build());
    }

    @Override
    public void close() {
      out.onCompleted();
    }
  }

  @Test
  void evidenceKeepsOwnersDropsGenerationsAndJudgesChanges() throws Exception {
    admin.createService(
        CreateServiceRequest.newBuilder()
            .setSpec(
                ServiceSpec.newBuilder()
                    .setName(SERVICE)
                    .setVip("203.0.113.40")
                    .setPort(80)
                    .setProtocol(Protocol.TCP))
            .build());
    for (String b : BACKENDS) {
      add(b, BackendState.ACTIVE);
    }
    List<Agent> agents = new ArrayList<>();
    try {
      for (int i = 0; i < BACKENDS.length; i++) {
        agents.add(new Agent("agent-" + i, BACKENDS[i]));
      }
      AgentUpdate update = agents.get(0).latest();
      int rowBits = update.getRowBits();
      assertThat(update.getFlowHashKey().size()).isEqualTo(16);
      assertThat(update.getServicesList()).extracting(t -> t.getName()).containsExactly(SERVICE);

      // Backend 1 holds a flow in each of its first FLOWS primary rows.
      int[] mine = primaryRows(BACKENDS[0], FLOWS);
      reportAll(agents, mine, rowBits);
      await("backend 1's flows counted", () -> liveOf(BACKENDS[0]) == FLOWS);
      await(
          "the generations of the first additions confirmed",
          () -> service().getRetainedGenerations() == 0);

      // A newcomer takes some of those rows: the generation keeps backend 1 there, then the
      // evidence does, once every backend reported from the new version.
      add(NEWCOMER, BackendState.FILLING);
      Service afterAdd = service();
      assertThat(afterAdd.getRetainedGenerations()).isEqualTo(1);
      assertThat(afterAdd.getImpact().getFlowsStranded()).isZero();
      List<Integer> taken = rowsWonBy(NEWCOMER, mine);
      assertThat(taken).as("rows of backend 1 the newcomer won").isNotEmpty();
      try (Agent newcomer = new Agent("agent-new", NEWCOMER)) {
        agents.add(newcomer);
        reportAll(agents, mine, rowBits);
        await(
            "the generation confirmed and dropped", () -> service().getRetainedGenerations() == 0);
        agents.remove(newcomer);
      }
      Service confirmed = service();
      assertThat(retainedRowsOf(confirmed, BACKENDS[0])).isEqualTo(taken.size());
      for (int row : taken) {
        assertThat(hops(row)).as("row %s", row).startsWith(NEWCOMER).contains(BACKENDS[0]);
      }
      assertThat(confirmed.getRowsOutOfHops()).isZero();
      assertThat(confirmed.getFlowsOutOfHops()).isZero();
      assertThat(
              admin
                  .getStatus(GetStatusRequest.getDefaultInstance())
                  .getRetention(0)
                  .getEvidenceRows())
          .isEqualTo(taken.size());

      // Setting it inactive strands nothing: the evidence keeps it in its rows.
      Service inactive = setState(BACKENDS[0], BackendState.INACTIVE, false, false);
      assertThat(inactive.getImpact().getFlowsStranded()).isZero();

      // Removing it would strand every flow: a dry run says so and writes nothing.
      Service dry = remove(BACKENDS[0], true, true);
      assertThat(dry.getImpact().getDryRun()).isTrue();
      assertThat(dry.getImpact().getFlowsStranded()).isEqualTo(FLOWS);
      assertThat(dry.getImpact().getRowsStranded()).isEqualTo(FLOWS);
      assertThat(dry.getImpact().getBackends(0).getAddress()).isEqualTo(BACKENDS[0]);
      assertThat(service().getBackendsList()).extracting(b -> b.getAddress()).contains(BACKENDS[0]);
      assertThatThrownBy(() -> remove(BACKENDS[0], false, false))
          .isInstanceOfSatisfying(
              StatusRuntimeException.class,
              e -> {
                assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
                assertThat(e.getStatus().getDescription()).contains(Integer.toString(FLOWS));
              });
      assertThat(service().getBackendsList()).extracting(b -> b.getAddress()).contains(BACKENDS[0]);
      Service forced = remove(BACKENDS[0], false, true);
      assertThat(forced.getImpact().getFlowsStranded()).isEqualTo(FLOWS);
      assertThat(forced.getImpact().getDryRun()).isFalse();
    } finally {
      agents.forEach(Agent::close);
    }
  }

  @Test
  void aReportWhoseRowsDoNotAscendEndsTheStream() throws Exception {
    try (Agent agent = new Agent("agent-bad", "198.51.100.77")) {
      agent.latest();
      agent.report(FlowRows.newBuilder().setRowBits(16).addGaps(5).addGaps(0).build(), 2, 0);
      Status status = agent.ended.get(10, TimeUnit.SECONDS);
      assertThat(status.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(status.getDescription()).contains("listed twice");
    }
  }

  /** Every agent reports: backend 1 the rows in {@code mine}, the others none. */
  private static void reportAll(List<Agent> agents, int[] mine, int rowBits)
      throws InterruptedException {
    for (Agent a : agents) {
      long seen = a.latest().getDataPlaneVersion();
      a.report(a == agents.get(0) ? mine : new int[0], seen, rowBits);
    }
  }

  private static int[] primaryRows(String backend, int count) {
    ServiceTable table =
        admin.getTable(
            GetTableRequest.newBuilder().setService(SERVICE).setMaxRows(1 << 16).build());
    return table.getRowsList().stream()
        .filter(r -> r.getHops(0).equals(backend))
        .limit(count)
        .mapToInt(TableRow::getRow)
        .toArray();
  }

  private static List<Integer> rowsWonBy(String backend, int[] rows) {
    List<Integer> out = new ArrayList<>();
    for (int row : rows) {
      if (hops(row).getFirst().equals(backend)) {
        out.add(row);
      }
    }
    return out;
  }

  private static List<String> hops(int row) {
    return admin
        .getTable(
            GetTableRequest.newBuilder().setService(SERVICE).setFirstRow(row).setMaxRows(1).build())
        .getRows(0)
        .getHopsList();
  }

  private static long liveOf(String backend) {
    return service().getBackendsList().stream()
        .filter(b -> b.getAddress().equals(backend))
        .findFirst()
        .orElseThrow()
        .getLiveConnections();
  }

  private static int retainedRowsOf(Service s, String backend) {
    return s.getBackendsList().stream()
        .filter(b -> b.getAddress().equals(backend))
        .findFirst()
        .orElseThrow()
        .getRetainedRows();
  }

  private static Service service() {
    return admin.getService(GetServiceRequest.newBuilder().setName(SERVICE).build());
  }

  private static Service add(String address, BackendState state) {
    return admin.addBackend(
        AddBackendRequest.newBuilder()
            .setService(SERVICE)
            .setAddress(address)
            .setState(state)
            .build());
  }

  private static Service setState(
      String address, BackendState state, boolean dryRun, boolean force) {
    return admin.setBackendState(
        SetBackendStateRequest.newBuilder()
            .setService(SERVICE)
            .setAddress(address)
            .setState(state)
            .setDryRun(dryRun)
            .setForce(force)
            .build());
  }

  private static Service remove(String address, boolean dryRun, boolean force) {
    return admin.removeBackend(
        RemoveBackendRequest.newBuilder()
            .setService(SERVICE)
            .setAddress(address)
            .setDryRun(dryRun)
            .setForce(force)
            .build());
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(50);
    }
  }
}
