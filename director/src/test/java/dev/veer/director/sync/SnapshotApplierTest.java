package dev.veer.director.sync;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.proto.director.v1.Applied;
import dev.veer.proto.director.v1.ServiceTable;
import dev.veer.proto.director.v1.Settings;
import dev.veer.proto.director.v1.Snapshot;
import dev.veer.proto.types.v1.Protocol;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Snapshots into a real (detached) director program: good ones switch tables, bad ones change nothing. */
class SnapshotApplierTest {
  static final int ROW_BITS = 8;
  static final byte[] KEY = "0123456789abcdef".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  DirectorDataplane dataplane;
  SnapshotApplier applier;

  @BeforeEach
  void load() throws Exception {
    Inet4Address self = (Inet4Address) InetAddress.getByName("192.0.2.2");
    dataplane = DirectorDataplane.detached(DirectorConfig.of(new byte[16], self, null), ROW_BITS);
    applier = new SnapshotApplier(dataplane, Optional.of(self), Optional.empty());
  }

  @AfterEach
  void close() {
    dataplane.close();
  }

  static ByteString address(String literal) throws Exception {
    return ByteString.copyFrom(InetAddress.getByName(literal).getAddress());
  }

  /** Rows naming backends 1 and 2 (cells 1, 2) alternately as primary. */
  static ByteString rows(int cellValueLimit) {
    ByteBuffer b = ByteBuffer.allocate((1 << ROW_BITS) * 4 * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (int row = 0; row < 1 << ROW_BITS; row++) {
      b.putShort((short) (1 + row % cellValueLimit)).putShort((short) (1 + (row + 1) % cellValueLimit))
          .putShort((short) 0).putShort((short) 0);
    }
    return ByteString.copyFrom(b.array());
  }

  static ServiceTable.Builder web(long tableVersion) throws Exception {
    return ServiceTable.newBuilder().setName("web").setVip(address("203.0.113.10")).setPort(80)
        .setProtocol(Protocol.TCP).setTableVersion(tableVersion).setHasTable(true)
        .addBackends(address("192.0.2.130")).addBackends(address("192.0.2.134")).setRows(rows(2));
  }

  static Snapshot snapshot(long version, ServiceTable.Builder... services) {
    Snapshot.Builder s = Snapshot.newBuilder().setVersion(version).setSettings(Settings.newBuilder()
        .setFlowHashKey(ByteString.copyFrom(KEY)).setGuePort(19523).setRowBits(ROW_BITS));
    Arrays.stream(services).forEach(s::addServices);
    return s.build();
  }

  static final ServiceKey WEB = key();

  static ServiceKey key() {
    try {
      return ServiceKey.tcp(InetAddress.getByName("203.0.113.10"), 80);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void aGoodSnapshotInstallsItsTablesAndTheClustersKey() throws Exception {
    Applied applied = applier.apply(snapshot(5, web(4)));
    assertThat(applied.getSuccess()).as(applied.getError()).isTrue();
    assertThat(applied.getVersion()).isEqualTo(5);
    assertThat(applier.appliedVersion()).isEqualTo(5);
    assertThat(applier.tableVersions()).containsEntry("web", 4L);
    assertThat(dataplane.tables().get(WEB).hops(0)).containsExactly(InetAddress.getByName("192.0.2.130"),
        InetAddress.getByName("192.0.2.134"));
    assertThat(dataplane.program().readConfig().orElseThrow().hashKey()).isEqualTo(KEY);

    // Unchanged tables come as references; a service left out is removed.
    assertThat(applier.apply(snapshot(6, web(4).setHasTable(false).clearRows().clearBackends())).getSuccess())
        .isTrue();
    assertThat(dataplane.tables()).containsKey(WEB);
    assertThat(applier.apply(snapshot(7)).getSuccess()).isTrue();
    assertThat(dataplane.tables()).isEmpty();
  }

  @Test
  void aBadSnapshotIsRefusedWholeAndChangesNothing() throws Exception {
    assertThat(applier.apply(snapshot(5, web(4))).getSuccess()).isTrue();
    var before = dataplane.tables();
    Snapshot[] bad = {
      snapshot(6, web(6).setRows(rows(2).substring(2))),
      snapshot(6, web(6).setRows(rows(3))),
      snapshot(6, web(6).setHasTable(false).clearRows()),
      snapshot(6, web(6).setVip(ByteString.copyFrom(new byte[5]))),
      snapshot(6, web(6), web(6).setName("copy")),
      snapshot(6, web(6)).toBuilder().setSettings(Settings.newBuilder().setRowBits(ROW_BITS + 1)
          .setFlowHashKey(ByteString.copyFrom(KEY)).setGuePort(19523)).build(),
      snapshot(6, web(6)).toBuilder().setSettings(Settings.newBuilder().setRowBits(ROW_BITS)
          .setFlowHashKey(ByteString.copyFrom(new byte[3])).setGuePort(19523)).build(),
    };
    for (Snapshot snapshot : bad) {
      Applied applied = applier.apply(snapshot);
      assertThat(applied.getSuccess()).as("%s", snapshot.getServicesList()).isFalse();
      assertThat(applied.getError()).isNotEmpty();
      assertThat(dataplane.tables()).isEqualTo(before);
      assertThat(applier.appliedVersion()).isEqualTo(5);
    }
  }
}
