package dev.veer.coordinator;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.proto.TableRowsCodec;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceRequest;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.director.v1.Applied;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.DirectorSyncGrpc;
import dev.veer.proto.director.v1.Hello;
import dev.veer.proto.director.v1.ServiceTable;
import dev.veer.proto.director.v1.Snapshot;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The director Sync stream of a real coordinator, spoken by a test client over gRPC. */
class DirectorSyncTest {
  @TempDir Path dataDir;

  Coordinator coordinator;
  ManagedChannel channel;
  AdminServiceGrpc.AdminServiceBlockingStub admin;

  @BeforeEach
  void start() throws Exception {
    coordinator = Coordinator.start(Coordinators.config("c1", dataDir, Optional.empty()));
    channel = Transport.channel(Coordinators.target(coordinator), Optional.empty());
    admin = AdminServiceGrpc.newBlockingStub(channel);
  }

  @AfterEach
  void stop() throws Exception {
    Transport.close(channel);
    coordinator.close();
  }

  /** A director's end of the stream: what it received, and a way to answer. */
  static final class FakeLessDirector implements StreamObserver<Snapshot> {
    final BlockingQueue<Snapshot> snapshots = new LinkedBlockingQueue<>();
    final BlockingQueue<Status> ends = new LinkedBlockingQueue<>();
    StreamObserver<DirectorReport> reports;

    @Override
    public void onNext(Snapshot value) {
      snapshots.add(value);
    }

    @Override
    public void onError(Throwable t) {
      ends.add(Status.fromThrowable(t));
    }

    @Override
    public void onCompleted() {
      ends.add(Status.OK);
    }

    Snapshot next() throws InterruptedException {
      Snapshot s = snapshots.poll(10, TimeUnit.SECONDS);
      assertThat(s).as("a snapshot within 10 s").isNotNull();
      return s;
    }

    void refuse(Snapshot s, String why) {
      reports.onNext(
          DirectorReport.newBuilder()
              .setApplied(
                  Applied.newBuilder().setVersion(s.getVersion()).setSuccess(false).setError(why))
              .build());
    }

    void ack(Snapshot s) {
      reports.onNext(
          DirectorReport.newBuilder()
              .setApplied(Applied.newBuilder().setVersion(s.getVersion()).setSuccess(true))
              .build());
    }
  }

  FakeLessDirector connect(String id, int rowBits) {
    return connect(id, rowBits, false);
  }

  /** A director; {@code compactRows}: it reads rows of fewer than 4 hops (row_hops). */
  FakeLessDirector connect(String id, int rowBits, boolean compactRows) {
    return connect(Hello.newBuilder().setRowBits(rowBits).setCompactRows(compactRows), id);
  }

  /** The Hello of a director that takes versions in parts, incrementally, with packed rows. */
  static Hello.Builder packed() {
    return Hello.newBuilder()
        .setRowBits(16)
        .setCompactRows(true)
        .setIncremental(true)
        .setPackedRows(true);
  }

  FakeLessDirector connect(Hello.Builder hello, String id) {
    FakeLessDirector director = new FakeLessDirector();
    director.reports = DirectorSyncGrpc.newStub(channel).sync(director);
    director.reports.onNext(
        DirectorReport.newBuilder()
            .setHello(hello.setDirectorId(id).setAddress("192.0.2.2"))
            .build());
    return director;
  }

  /** Skips snapshots of states older than the current one (published while the test wrote). */
  Snapshot latest(FakeLessDirector director) throws InterruptedException {
    Snapshot s = director.next();
    while (s.getVersion() < coordinator.store().current().getVersion()) {
      s = director.next();
    }
    return s;
  }

  void createWeb(String name, String vip) {
    admin.createService(
        CreateServiceRequest.newBuilder()
            .setSpec(
                ServiceSpec.newBuilder()
                    .setName(name)
                    .setVip(vip)
                    .setPort(80)
                    .setProtocol(Protocol.TCP))
            .build());
    admin.addBackend(
        AddBackendRequest.newBuilder()
            .setService(name)
            .setAddress("192.0.2.130")
            .setState(BackendState.ACTIVE)
            .build());
  }

  @Test
  void anIncrementalDirectorIsSentOnlyWhatChangedAndAVersionInPartsOfBoundedSize()
      throws Exception {
    // Six services of one backend: 2^16 one-hop rows each, 128 KiB; three fit in 400 KiB.
    for (int i = 0; i < 6; i++) {
      createWeb("web-" + i, "203.0.113." + (10 + i));
    }
    int limit = 400 * 1024;
    FakeLessDirector director =
        connect(
            Hello.newBuilder()
                .setRowBits(16)
                .setCompactRows(true)
                .setIncremental(true)
                .setMaxSnapshotBytes(limit),
            "parts");
    List<Snapshot> parts = new java.util.ArrayList<>();
    Snapshot part;
    do {
      part = director.next();
      parts.add(part);
    } while (part.getMore());
    assertThat(parts).hasSizeGreaterThanOrEqualTo(2);
    for (int i = 0; i < parts.size(); i++) {
      assertThat(parts.get(i).getPart()).isEqualTo(i);
      assertThat(parts.get(i).getIncremental()).isFalse();
      assertThat(parts.get(i).getSerializedSize()).isLessThanOrEqualTo(limit);
      assertThat(parts.get(i).getVersion()).isEqualTo(parts.get(0).getVersion());
    }
    assertThat(parts.stream().mapToInt(Snapshot::getServicesCount).sum()).isEqualTo(6);
    director.ack(parts.getLast());

    // One backend added to one service: one message naming only that service.
    admin.addBackend(
        AddBackendRequest.newBuilder()
            .setService("web-3")
            .setAddress("192.0.2.131")
            .setState(BackendState.ACTIVE)
            .build());
    Snapshot change = latest(director);
    assertThat(change.getIncremental()).isTrue();
    assertThat(change.getMore()).isFalse();
    assertThat(change.getServicesList()).extracting(ServiceTable::getName).containsExactly("web-3");
    assertThat(change.getServices(0).getHasTable()).isTrue();
    director.ack(change);

    admin.deleteService(DeleteServiceRequest.newBuilder().setName("web-1").setForce(true).build());
    Snapshot deletion = latest(director);
    assertThat(deletion.getIncremental()).isTrue();
    assertThat(deletion.getServicesList()).isEmpty();
    assertThat(deletion.getRemovedList()).containsExactly("web-1");
    director.ack(deletion);
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (admin.getStatus(GetStatusRequest.getDefaultInstance()).getDirectorsList().stream()
            .noneMatch(d -> d.getAppliedVersion() == deletion.getVersion())
        && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertThat(
            admin
                .getStatus(GetStatusRequest.getDefaultInstance())
                .getDirectors(0)
                .getAppliedVersion())
        .isEqualTo(deletion.getVersion());
  }

  @Test
  void aVersionADirectorCannotApplyIsResentWholeOnceNotInALoopAndItsStatusKeepsWhatItHas()
      throws Exception {
    createWeb("web", "203.0.113.10");
    FakeLessDirector director = connect("failing", 16);
    Snapshot first = latest(director);
    director.refuse(first, "the services table is full");
    Snapshot whole = director.next();
    assertThat(whole.getVersion()).isEqualTo(first.getVersion());
    assertThat(whole.getServices(0).getHasTable()).isTrue();
    director.refuse(whole, "the services table is full");
    // No third copy: the director forwards on with what it has until a newer version comes.
    assertThat(director.snapshots.poll(2, TimeUnit.SECONDS)).isNull();
    DirectorStatus status = admin.getStatus(GetStatusRequest.getDefaultInstance()).getDirectors(0);
    assertThat(status.getAppliedVersion()).isLessThan(first.getVersion());
    assertThat(status.getError())
        .contains("could not apply version " + first.getVersion() + " even sent whole")
        .contains("the services table is full");

    createWeb("api", "203.0.113.11");
    Snapshot newer = latest(director);
    assertThat(newer.getVersion()).isGreaterThan(first.getVersion());
    director.ack(newer);
  }

  @Test
  void aDirectorThatTakesRowDeltasIsSentOnlyTheRowsAChangeMovedAndTheyMakeTheWholeTable()
      throws Exception {
    createWeb("web", "203.0.113.10");
    for (int i = 131; i < 140; i++) {
      addBackend("web", "192.0.2." + i);
    }
    // Connected once every change is compiled, its first snapshot is the whole current table.
    long current = coordinator.store().current().getVersion();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (coordinator.publishedVersion() < current && System.nanoTime() < deadline) {
      Thread.sleep(10);
    }
    Hello.Builder hello = packed().setRowDeltas(true);
    FakeLessDirector director = connect(hello, "deltas");
    Snapshot first = latest(director);
    director.ack(first);
    ServiceTable before = first.getServices(0);
    assertThat(before.getBaseTableVersion()).isZero();

    // One of ten backends drained: about a tenth of the rows take a new primary.
    admin.setBackendState(
        dev.veer.proto.admin.v1.SetBackendStateRequest.newBuilder()
            .setService("web")
            .setAddress("192.0.2.133")
            .setState(BackendState.DRAINING)
            .build());
    Snapshot change = latest(director);
    ServiceTable delta = change.getServices(0);
    assertThat(delta.getBaseTableVersion()).isEqualTo(before.getTableVersion());
    assertThat(delta.getTableVersion()).isGreaterThan(before.getTableVersion());
    ServiceTable whole = latest(connect(hello.clone().setRowDeltas(false), "whole")).getServices(0);
    assertThat(whole.getTableVersion()).isEqualTo(delta.getTableVersion());
    assertThat(whole.getBaseTableVersion()).isZero();
    assertThat(delta.getRows().size()).isLessThan(whole.getRows().size() / 2);

    char[] base = TableRowsCodec.cells(before, 16, 4);
    char[] after = TableRowsCodec.cells(delta, 16, 4, base);
    assertThat(after).isEqualTo(TableRowsCodec.cells(whole, 16, 4));
    int moved = 0;
    for (int row = 0; row < 65536; row++) {
      if (after[row * 4] != base[row * 4]) {
        moved++;
      }
    }
    assertThat(moved).isBetween(65536 / 20, 65536 / 5);
    // Applied to any other table, or alone, it is refused, never taken as a whole table.
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> TableRowsCodec.cells(delta, 16, 4))
        .hasMessageContaining("delta against table version " + before.getTableVersion());
    director.ack(change);
  }

  @Test
  void servicesOfATableGroupWithTheSameBackendsGetTheSameTableAndTheGroupIsSetOnce()
      throws Exception {
    for (String[] s :
        new String[][] {{"web", "80", "front"}, {"tls", "443", "front"}, {"api", "81", ""}}) {
      admin.createService(
          CreateServiceRequest.newBuilder()
              .setSpec(
                  ServiceSpec.newBuilder()
                      .setName(s[0])
                      .setVip("203.0.113.10")
                      .setPort(Integer.parseInt(s[1]))
                      .setProtocol(Protocol.TCP)
                      .setTableGroup(s[2]))
              .addBackends(
                  dev.veer.proto.admin.v1.Backend.newBuilder()
                      .setAddress("192.0.2.130")
                      .setState(BackendState.ACTIVE))
              .addBackends(
                  dev.veer.proto.admin.v1.Backend.newBuilder()
                      .setAddress("192.0.2.131")
                      .setState(BackendState.ACTIVE))
              .build());
    }
    FakeLessDirector director = connect(packed(), "groups");
    // Every table as it stands: the first version whole, then what later versions changed.
    java.util.Map<String, ServiceTable> tables = new java.util.HashMap<>();
    Snapshot s;
    do {
      s = director.next();
      s.getServicesList().stream()
          .filter(ServiceTable::getHasTable)
          .forEach(t -> tables.put(t.getName(), t));
    } while (s.getMore() || s.getVersion() < coordinator.store().current().getVersion());
    assertThat(tables.get("web").getRows()).isEqualTo(tables.get("tls").getRows());
    assertThat(tables.get("web").getRows()).isNotEqualTo(tables.get("api").getRows());
    assertThat(
            admin
                .getService(
                    dev.veer.proto.admin.v1.GetServiceRequest.newBuilder().setName("tls").build())
                .getSpec()
                .getTableGroup())
        .isEqualTo("front");

    // The group is the seed, chosen once: changing it is refused, as is a malformed one.
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () ->
                admin.updateService(
                    dev.veer.proto.admin.v1.UpdateServiceRequest.newBuilder()
                        .setSpec(
                            ServiceSpec.newBuilder()
                                .setName("tls")
                                .setVip("203.0.113.10")
                                .setPort(443)
                                .setProtocol(Protocol.TCP)
                                .setTableGroup("back"))
                        .build()))
        .hasMessageContaining("table group is set when a service is created");
    org.assertj.core.api.Assertions.assertThatThrownBy(
            () ->
                admin.createService(
                    CreateServiceRequest.newBuilder()
                        .setSpec(
                            ServiceSpec.newBuilder()
                                .setName("bad")
                                .setVip("203.0.113.12")
                                .setPort(80)
                                .setProtocol(Protocol.TCP)
                                .setTableGroup("Front Door"))
                        .build()))
        .hasMessageContaining("table_group must match");
  }

  void addBackend(String service, String address) {
    admin.addBackend(
        AddBackendRequest.newBuilder()
            .setService(service)
            .setAddress(address)
            .setState(BackendState.ACTIVE)
            .build());
  }

  @Test
  void aDirectorThatReadsCompactRowsGetsOnlyTheHopsRowsHoldAnOlderOneAllFour() throws Exception {
    createWeb("web", "203.0.113.10");
    ServiceTable compact = latest(connect("compact", 16, true)).getServices(0);
    ServiceTable full = latest(connect("older", 16, false)).getServices(0);
    ServiceTable packed =
        latest(connect(Hello.newBuilder().setRowBits(16).setPackedRows(true), "packed"))
            .getServices(0);
    // One backend, 2 hops by default: every row holds one hop.
    assertThat(compact.getRowHops()).isEqualTo(1);
    assertThat(compact.getRows().size()).isEqualTo(65536 * 1 * 2);
    assertThat(full.getRowHops()).isEqualTo(4);
    assertThat(full.getRows().size()).isEqualTo(65536 * 4 * 2);
    // One byte a cell, deflated: 65,536 rows naming the same backend take a few hundred bytes.
    assertThat(packed.getCellBytes()).isEqualTo(1);
    assertThat(packed.getDeflated()).isTrue();
    assertThat(packed.getRows().size()).isLessThan(1024);
    char[] cells = TableRowsCodec.cells(full, 16, 4);
    assertThat(TableRowsCodec.cells(compact, 16, 4)).isEqualTo(cells);
    assertThat(TableRowsCodec.cells(packed, 16, 4)).isEqualTo(cells);
  }

  @Test
  void directorGetsFullTablesThenOnlyWhatChangedAndItsAcksShowInStatus() throws Exception {
    createWeb("web", "203.0.113.10");
    FakeLessDirector director = connect("d1", 16);
    Snapshot first = latest(director);
    assertThat(first.getSettings().getFlowHashKey().size()).isEqualTo(16);
    ServiceTable web = first.getServices(0);
    assertThat(web.getHasTable()).isTrue();
    assertThat(web.getRows().size()).isEqualTo(65536 * 4 * 2);
    assertThat(web.getBackendsCount()).isEqualTo(1);
    director.ack(first);

    createWeb("api", "203.0.113.11");
    Snapshot later = director.next();
    while (later.getVersion() < coordinator.store().current().getVersion()) {
      director.ack(later);
      later = director.next();
    }
    assertThat(later.getServicesList())
        .extracting(ServiceTable::getName)
        .containsExactly("api", "web");
    assertThat(later.getServices(1).getHasTable())
        .as("unchanged web sent as a reference")
        .isFalse();
    assertThat(later.getServices(1).getRows().isEmpty()).isTrue();
    director.ack(later);

    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    DirectorStatus status = null;
    while (System.nanoTime() < deadline) {
      var directors = admin.getStatus(GetStatusRequest.getDefaultInstance()).getDirectorsList();
      if (!directors.isEmpty() && directors.get(0).getAppliedVersion() == later.getVersion()) {
        status = directors.get(0);
        break;
      }
      Thread.sleep(20);
    }
    assertThat(status).as("director d1 reported at version %s", later.getVersion()).isNotNull();
    assertThat(status.getCoordinator()).isEqualTo("c1");
    director.reports.onCompleted();
  }

  @Test
  void aFailedApplyGetsEveryTableResentWhole() throws Exception {
    createWeb("web", "203.0.113.10");
    FakeLessDirector director = connect("d1", 16);
    Snapshot first = latest(director);
    director.reports.onNext(
        DirectorReport.newBuilder()
            .setApplied(
                Applied.newBuilder()
                    .setVersion(first.getVersion())
                    .setSuccess(false)
                    .setError("no memory"))
            .build());
    Snapshot again = director.next();
    assertThat(again.getVersion()).isEqualTo(first.getVersion());
    assertThat(again.getServices(0).getHasTable()).isTrue();
    director.reports.onCompleted();
  }

  @Test
  void aDirectorWithAnotherRowCountIsToldHowToFixIt() throws Exception {
    FakeLessDirector director = connect("d1", 12);
    Status end = director.ends.poll(10, TimeUnit.SECONDS);
    assertThat(end.getCode()).isEqualTo(Status.Code.FAILED_PRECONDITION);
    assertThat(end.getDescription()).contains("--row-bits 16");
  }
}
