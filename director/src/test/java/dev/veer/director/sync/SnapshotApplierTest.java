package dev.veer.director.sync;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.collect.ImmutableMap;
import com.google.common.primitives.Ints;
import com.google.protobuf.ByteString;
import dev.veer.bpf.abi.VeerAbi;
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
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Snapshots into a real (detached) director program, checked by reading its maps back from the
 * kernel: good ones switch tables, bad ones and ones the maps cannot take change nothing.
 */
class SnapshotApplierTest {
  static final ServiceKey WEB_KEY = webKey();

  private static ServiceKey webKey() {
    try {
      return ServiceKey.tcp(InetAddress.getByName("203.0.113.10"), 80);
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }

  static final int ROW_BITS = 8;
  static final byte[] KEY = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
  static final byte[] OTHER_KEY = "fedcba9876543210".getBytes(StandardCharsets.US_ASCII);

  DirectorDataplane dataplane;
  SnapshotApplier applier;
  KernelMaps kernel;

  @BeforeEach
  void load() throws Exception {
    Inet4Address self = (Inet4Address) InetAddress.getByName("192.0.2.2");
    dataplane = DirectorDataplane.detached(DirectorConfig.of(new byte[16], self, null), ROW_BITS);
    applier = new SnapshotApplier(dataplane, Optional.of(self), Optional.empty());
    kernel = new KernelMaps(dataplane.program());
  }

  @AfterEach
  void close() {
    dataplane.close();
  }

  static ByteString address(String literal) {
    try {
      return ByteString.copyFrom(InetAddress.getByName(literal).getAddress());
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException(e);
    }
  }

  /** The n-th address of 10.0.0.0/8, counting from 10.0.0.1. */
  static ByteString tenNet(int n) {
    return ByteString.copyFrom(Ints.toByteArray(0x0a00_0001 + n));
  }

  /** Rows naming backends 1..limit in turn as primary, the next one as second hop. */
  static ByteString rows(int cellValueLimit) {
    ByteBuffer b = ByteBuffer.allocate((1 << ROW_BITS) * 4 * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (int row = 0; row < 1 << ROW_BITS; row++) {
      b.putShort((short) (1 + row % cellValueLimit))
          .putShort((short) (1 + (row + 1) % cellValueLimit))
          .putShort((short) 0)
          .putShort((short) 0);
    }
    return ByteString.copyFrom(b.array());
  }

  static ServiceTable.Builder service(
      String name, String vip, long tableVersion, List<ByteString> backends) {
    return ServiceTable.newBuilder()
        .setName(name)
        .setVip(address(vip))
        .setPort(80)
        .setProtocol(Protocol.TCP)
        .setTableVersion(tableVersion)
        .setHasTable(true)
        .addAllBackends(backends)
        .setRows(rows(backends.size()));
  }

  static ServiceTable.Builder web(long tableVersion) {
    return service(
        "web",
        "203.0.113.10",
        tableVersion,
        List.of(address("192.0.2.130"), address("192.0.2.134")));
  }

  static Snapshot snapshot(long version, byte[] key, List<ServiceTable.Builder> services) {
    Snapshot.Builder s =
        Snapshot.newBuilder()
            .setVersion(version)
            .setSettings(
                Settings.newBuilder()
                    .setFlowHashKey(ByteString.copyFrom(key))
                    .setGuePort(19523)
                    .setRowBits(ROW_BITS));
    services.forEach(s::addServices);
    return s.build();
  }

  static Snapshot snapshot(long version, ServiceTable.Builder... services) {
    return snapshot(version, KEY, Arrays.asList(services));
  }

  /** What the kernel should hold for the services of a snapshot: each row's hops as addresses. */
  static Map<ServiceKey, List<List<InetAddress>>> expectedRows(ServiceTable... services)
      throws Exception {
    Map<ServiceKey, List<List<InetAddress>>> out = new LinkedHashMap<>();
    for (ServiceTable s : services) {
      ByteBuffer cells = s.getRows().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
      List<List<InetAddress>> rows = new ArrayList<>();
      while (cells.hasRemaining()) {
        List<InetAddress> hops = new ArrayList<>();
        for (int hop = 0; hop < 4; hop++) {
          int cell = cells.getShort() & 0xffff;
          if (cell != 0) {
            hops.add(InetAddress.getByAddress(s.getBackends(cell - 1).toByteArray()));
          }
        }
        rows.add(hops);
      }
      out.put(
          ServiceKey.tcp(InetAddress.getByAddress(s.getVip().toByteArray()), s.getPort()), rows);
    }
    return out;
  }

  @Test
  void aGoodSnapshotInstallsItsTablesAndTheClustersKey() throws Exception {
    ServiceTable web = web(4).build();
    Applied applied = applier.apply(snapshot(5, web.toBuilder()));
    assertThat(applied.getSuccess()).as(applied.getError()).isTrue();
    assertThat(applied.getVersion()).isEqualTo(5);
    assertThat(applier.appliedVersion()).isEqualTo(5);
    assertThat(applier.tableVersions()).containsEntry("web", 4L);
    assertThat(kernel.services()).isEqualTo(expectedRows(web));
    assertThat(kernel.hashKey()).isEqualTo(KEY);

    // Unchanged tables come as references; a new service and a new key come along.
    ServiceTable api =
        service("api", "203.0.113.11", 1, List.of(tenNet(1), tenNet(2), tenNet(3))).build();
    applied =
        applier.apply(
            snapshot(
                6,
                OTHER_KEY,
                List.of(
                    web.toBuilder().setHasTable(false).clearRows().clearBackends(),
                    api.toBuilder())));
    assertThat(applied.getSuccess()).as(applied.getError()).isTrue();
    assertThat(kernel.services()).isEqualTo(expectedRows(web, api));
    assertThat(kernel.hashKey()).isEqualTo(OTHER_KEY);

    // A service left out is removed, its table slot emptied.
    assertThat(applier.apply(snapshot(7)).getSuccess()).isTrue();
    assertThat(kernel.services()).isEmpty();
    assertThat(kernel.image().keySet()).noneMatch(k -> k.startsWith("tables/"));
  }

  @Test
  void aBadSnapshotIsRefusedWholeAndChangesNothing() throws Exception {
    assertThat(applier.apply(snapshot(5, web(4))).getSuccess()).isTrue();
    ImmutableMap<String, ByteString> before = kernel.image();
    Snapshot[] bad = {
      snapshot(6, web(6).setRows(rows(2).substring(2))),
      snapshot(6, web(6).setRows(rows(3))),
      snapshot(6, web(6).setHasTable(false).clearRows()),
      snapshot(6, web(6).setVip(ByteString.copyFrom(new byte[5]))),
      snapshot(6, web(6), web(6).setName("copy")),
      snapshot(6, web(6)).toBuilder()
          .setSettings(
              Settings.newBuilder()
                  .setRowBits(ROW_BITS + 1)
                  .setFlowHashKey(ByteString.copyFrom(KEY))
                  .setGuePort(19523))
          .build(),
      snapshot(6, web(6)).toBuilder()
          .setSettings(
              Settings.newBuilder()
                  .setRowBits(ROW_BITS)
                  .setFlowHashKey(ByteString.copyFrom(new byte[3]))
                  .setGuePort(19523))
          .build(),
    };
    for (Snapshot snapshot : bad) {
      Applied applied = applier.apply(snapshot);
      assertThat(applied.getSuccess()).as("%s", snapshot.getServicesList()).isFalse();
      assertThat(applied.getError()).isNotEmpty();
      assertThat(KernelMaps.difference(before, kernel.image())).isEmpty();
      assertThat(applier.appliedVersion()).isEqualTo(5);
    }
  }

  static Snapshot part(Snapshot message, int part, boolean more, boolean incremental) {
    return message.toBuilder().setPart(part).setMore(more).setIncremental(incremental).build();
  }

  /**
   * A version in parts: each part is installed as it comes, the version acknowledged after the
   * last; a whole version removes what none of its parts named; an incremental one changes only
   * what it names and removes what it names as removed.
   */
  @Test
  void aVersionInPartsIsAcknowledgedAfterItsLastAndIncrementalOnesChangeOnlyWhatTheyName()
      throws Exception {
    assertThat(applier.apply(snapshot(5, web(4))).getSuccess()).isTrue();
    ServiceTable.Builder api = service("api", "203.0.113.11", 1, List.of(tenNet(1)));
    ServiceTable.Builder db = service("db", "203.0.113.12", 1, List.of(tenNet(2)));

    // Version 6 whole, in two parts: web is not named, so it goes after the last part.
    assertThat(applier.receive(part(snapshot(6, api), 0, true, false))).isEmpty();
    assertThat(applier.appliedVersion()).isEqualTo(5);
    assertThat(kernel.services()).hasSize(2); // web stays until the version is complete
    Optional<Applied> six = applier.receive(part(snapshot(6, db), 1, false, false));
    assertThat(six).get().extracting(Applied::getSuccess).isEqualTo(true);
    assertThat(applier.appliedVersion()).isEqualTo(6);
    assertThat(kernel.services()).isEqualTo(expectedRows(api.build(), db.build()));
    assertThat(applier.tableVersions()).isEqualTo(Map.of("api", 1L, "db", 1L));

    // Version 7 incremental: db's table changes, api is removed; nothing else is touched.
    ServiceTable.Builder db2 = service("db", "203.0.113.12", 2, List.of(tenNet(3)));
    Snapshot seven = part(snapshot(7, db2), 0, false, true).toBuilder().addRemoved("api").build();
    assertThat(applier.receive(seven)).get().extracting(Applied::getSuccess).isEqualTo(true);
    assertThat(kernel.services()).isEqualTo(expectedRows(db2.build()));
    assertThat(applier.announcements())
        .extracting(SnapshotApplier.Announcement::service)
        .containsExactly("db");

    // Version 8's first part fails (a reference to a table not held): the later part is ignored
    // and nothing is acknowledged for it; version 8 sent again from part 0 applies.
    ServiceTable.Builder missing =
        ServiceTable.newBuilder()
            .setName("web")
            .setVip(address("203.0.113.10"))
            .setPort(80)
            .setProtocol(Protocol.TCP)
            .setTableVersion(9);
    Optional<Applied> failed = applier.receive(part(snapshot(8, missing), 0, true, true));
    assertThat(failed).get().extracting(Applied::getSuccess).isEqualTo(false);
    assertThat(applier.receive(part(snapshot(8, api), 1, false, true))).isEmpty();
    assertThat(applier.appliedVersion()).isEqualTo(7);
    assertThat(applier.receive(part(snapshot(8, api, db2), 0, false, false)))
        .get()
        .extracting(Applied::getSuccess)
        .isEqualTo(true);
    assertThat(kernel.services()).isEqualTo(expectedRows(api.build(), db2.build()));
  }

  /** Rows of {@code hops} hops, naming the backends in turn. */
  static ByteString rows(int backends, int hops) {
    ByteBuffer b = ByteBuffer.allocate((1 << ROW_BITS) * 4 * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (int row = 0; row < 1 << ROW_BITS; row++) {
      for (int hop = 0; hop < 4; hop++) {
        b.putShort((short) (hop < hops ? 1 + (row + hop) % backends : 0));
      }
    }
    return ByteString.copyFrom(b.array());
  }

  /**
   * Rows of two hops go into a narrow table (4 bytes a row), longer ones into a wide one; a table
   * that changes width moves to a slot of its own in the same change, and the old slot is freed.
   */
  @Test
  void aTableThatChangesWidthMovesToAFreshSlotAndTheDataPlaneReadsEveryWidth() throws Exception {
    List<ByteString> four = List.of(tenNet(1), tenNet(2), tenNet(3), tenNet(4));
    ServiceTable.Builder two = service("web", "203.0.113.10", 1, four).setRows(rows(4, 2));
    assertThat(applier.apply(snapshot(5, two)).getSuccess()).isTrue();
    assertThat(kernel.services()).isEqualTo(expectedRows(two.build()));
    int narrowSlot = dataplane.entry(WEB_KEY).orElseThrow().tableSlot();
    assertThat(dataplane.entry(WEB_KEY).orElseThrow().flags() & VeerAbi.SVC_NARROW_ROWS)
        .isNotZero();

    ServiceTable.Builder wide = service("web", "203.0.113.10", 2, four).setRows(rows(4, 3));
    Applied applied = applier.apply(snapshot(6, wide));
    assertThat(applied.getSuccess()).as(applied.getError()).isTrue();
    assertThat(kernel.services()).isEqualTo(expectedRows(wide.build()));
    int wideSlot = dataplane.entry(WEB_KEY).orElseThrow().tableSlot();
    assertThat(wideSlot).isNotEqualTo(narrowSlot);
    assertThat(dataplane.entry(WEB_KEY).orElseThrow().flags() & VeerAbi.SVC_NARROW_ROWS).isZero();
    assertThat(kernel.image().keySet()).noneMatch(k -> k.equals("tables/" + narrowSlot));

    // A wide table replaced by a wide one stays in its slot (one pointer swap).
    ServiceTable.Builder wider = service("web", "203.0.113.10", 3, four).setRows(rows(4, 4));
    assertThat(applier.apply(snapshot(7, wider)).getSuccess()).isTrue();
    assertThat(kernel.services()).isEqualTo(expectedRows(wider.build()));
    assertThat(dataplane.entry(WEB_KEY).orElseThrow().tableSlot()).isEqualTo(wideSlot);

    assertThat(applier.apply(snapshot(8, two.setTableVersion(4))).getSuccess()).isTrue();
    assertThat(kernel.services()).isEqualTo(expectedRows(two.build()));
    assertThat(kernel.image().keySet()).noneMatch(k -> k.equals("tables/" + wideSlot));
  }

  /**
   * A table sent as the rows that changed since the one held (XOR of the packed rows): the data
   * plane gets the whole new table; sent against a version not held, it is refused and nothing
   * changes.
   */
  @Test
  void aTableSentAsItsChangedRowsBecomesTheWholeTableAndIsRefusedAgainstAnotherBase()
      throws Exception {
    List<ByteString> four = List.of(tenNet(1), tenNet(2), tenNet(3), tenNet(4));
    ServiceTable before = service("web", "203.0.113.10", 1, four).setRows(rows(4, 2)).build();
    assertThat(applier.apply(snapshot(5, before.toBuilder())).getSuccess()).isTrue();
    // The same rows but every fourth one's hops swapped: a quarter of the rows changed.
    ByteBuffer changed = rows(4, 2).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    ByteBuffer next = ByteBuffer.allocate(changed.remaining()).order(ByteOrder.LITTLE_ENDIAN);
    for (int row = 0; row < 1 << ROW_BITS; row++) {
      short first = changed.getShort();
      short second = changed.getShort();
      next.putShort(row % 4 == 0 ? second : first).putShort(row % 4 == 0 ? first : second);
      next.putShort(changed.getShort()).putShort(changed.getShort());
    }
    ServiceTable after =
        service("web", "203.0.113.10", 2, four).setRows(ByteString.copyFrom(next.array())).build();
    ServiceTable delta =
        dev.veer.proto.TableRowsCodec.delta(
                before.toBuilder().setRowHops(4).build(), after, ROW_BITS, VeerAbi.MAX_HOPS)
            .orElseThrow();
    assertThat(delta.getBaseTableVersion()).isEqualTo(1);

    ImmutableMap<String, ByteString> image = kernel.image();
    Applied wrongBase =
        applier.apply(snapshot(6, delta.toBuilder().setBaseTableVersion(7).setTableVersion(8)));
    assertThat(wrongBase.getSuccess()).isFalse();
    assertThat(wrongBase.getError())
        .contains("rows sent as changes to table version 7, but table version 1 is held here");
    assertThat(KernelMaps.difference(image, kernel.image())).isEmpty();

    Applied applied = applier.apply(snapshot(7, delta.toBuilder()));
    assertThat(applied.getSuccess()).as(applied.getError()).isTrue();
    assertThat(kernel.services()).isEqualTo(expectedRows(after));
    assertThat(applier.tableVersions()).containsEntry("web", 2L);

    // A new table version with no row changed (a health change that moved none): an empty list.
    ServiceTable same =
        dev.veer.proto.TableRowsCodec.delta(
                after, after.toBuilder().setTableVersion(3).build(), ROW_BITS, VeerAbi.MAX_HOPS)
            .orElseThrow();
    assertThat(same.getBaseTableVersion()).isEqualTo(2);
    applied = applier.apply(snapshot(8, same.toBuilder()));
    assertThat(applied.getSuccess()).as(applied.getError()).isTrue();
    assertThat(kernel.services()).isEqualTo(expectedRows(after));
    assertThat(applier.tableVersions()).containsEntry("web", 3L);
  }

  /**
   * Services whose tables are the same (a table group's with the same backends) share one table
   * slot; one that changes moves to a slot of its own, the others keep theirs; the last one gone
   * empties it.
   */
  @Test
  void servicesWithTheSameTableShareOneSlotUntilOneOfThemChanges() throws Exception {
    List<ByteString> four = List.of(tenNet(1), tenNet(2), tenNet(3), tenNet(4));
    ServiceTable.Builder web = service("web", "203.0.113.10", 1, four).setRows(rows(4, 2));
    ServiceTable.Builder tls =
        service("tls", "203.0.113.10", 1, four).setPort(443).setRows(rows(4, 2));
    ServiceTable.Builder api = service("api", "203.0.113.11", 1, four).setRows(rows(4, 2));
    assertThat(applier.apply(snapshot(5, web, tls, api)).getSuccess()).isTrue();
    ServiceKey tlsKey = ServiceKey.tcp(InetAddress.getByName("203.0.113.10"), 443);
    ServiceKey apiKey = ServiceKey.tcp(InetAddress.getByName("203.0.113.11"), 80);
    int shared = dataplane.entry(WEB_KEY).orElseThrow().tableSlot();
    assertThat(dataplane.entry(tlsKey).orElseThrow().tableSlot()).isEqualTo(shared);
    assertThat(dataplane.entry(apiKey).orElseThrow().tableSlot()).isEqualTo(shared);
    assertThat(dataplane.tableCount()).isEqualTo(1);
    assertThat(kernel.image().keySet().stream().filter(k -> k.matches("tables/\\d+"))).hasSize(1);
    assertThat(kernel.services()).isEqualTo(expectedRows(web.build(), tls.build(), api.build()));
    // One table of four backends counted once, not three times.
    long memlock = dataplane.memlockBytes();

    ServiceTable.Builder apiChanged = api.clone().setTableVersion(2).setRows(rows(4, 3));
    assertThat(
            applier
                .apply(snapshot(6, web.clone().setHasTable(false), tls.clone(), apiChanged))
                .getSuccess())
        .isTrue();
    assertThat(dataplane.entry(WEB_KEY).orElseThrow().tableSlot()).isEqualTo(shared);
    assertThat(dataplane.entry(tlsKey).orElseThrow().tableSlot()).isEqualTo(shared);
    assertThat(dataplane.entry(apiKey).orElseThrow().tableSlot()).isNotEqualTo(shared);
    assertThat(dataplane.tableCount()).isEqualTo(2);
    assertThat(dataplane.memlockBytes()).isGreaterThan(memlock);
    assertThat(kernel.services())
        .isEqualTo(expectedRows(web.build(), tls.build(), apiChanged.build()));

    // The shared table's services go: its slot is emptied; api's stays.
    int apiSlot = dataplane.entry(apiKey).orElseThrow().tableSlot();
    assertThat(applier.apply(snapshot(7, apiChanged.clone().setHasTable(false))).getSuccess())
        .isTrue();
    assertThat(dataplane.tableCount()).isEqualTo(1);
    assertThat(kernel.image().keySet()).noneMatch(k -> k.equals("tables/" + shared));
    assertThat(kernel.image().keySet()).anyMatch(k -> k.equals("tables/" + apiSlot));
    assertThat(kernel.services()).isEqualTo(expectedRows(apiChanged.build()));
  }

  static List<ByteString> tenNets(int from, int to) {
    return IntStream.range(from, to).mapToObj(SnapshotApplierTest::tenNet).toList();
  }

  /**
   * More backends than the backends map holds (262,143 indices), over five services: the first four
   * services' backends are written, their tables filled and installed in fresh slots before the
   * fifth runs out.
   */
  @Test
  void aSnapshotWithMoreBackendsThanTheMapHoldsFailsPartWayAndChangesNothing() throws Exception {
    assertFailsAndChangesNothing(
        fiveServices(275_000), "all 262144 backend indices are in use", fiveServices(262_000));
  }

  /** web and four more services, of 55,000 backends each but the last, {@code total} in all. */
  static List<ServiceTable.Builder> fiveServices(int total) {
    List<ServiceTable.Builder> out = new ArrayList<>();
    out.add(web(5).addAllBackends(tenNets(0, 55_000)));
    for (int i = 1; i < 5; i++) {
      out.add(
          service(
              "s" + i,
              "203.0.113." + (10 + i),
              1,
              tenNets(55_000 * i, Math.min(total, 55_000 * (i + 1)))));
    }
    return out;
  }

  /**
   * More services than the services table holds (16,384): refused before any index, slot or table
   * is spent on them.
   */
  @Test
  void aSnapshotWithMoreServicesThanTheTableHoldsChangesNothing() throws Exception {
    assertFailsAndChangesNothing(
        manyServices(VeerAbi.MAX_SERVICES), "services table", manyServices(3));
  }

  static List<ServiceTable.Builder> manyServices(int count) {
    List<ServiceTable.Builder> out = new ArrayList<>();
    out.add(web(5));
    for (int i = 0; i < count; i++) {
      out.add(
          service("s" + i, "198.18." + i / 256 + "." + i % 256, 1, List.of(tenNet(1), tenNet(2))));
    }
    return out;
  }

  /**
   * {@code tooMuch} (with a new key, so the config map would change too) fails with an error naming
   * {@code hint}; the kernel's maps read back as before, and the applier keeps its version. Then
   * {@code fitting} applies at once: the failed attempt held on to no index or slot.
   */
  void assertFailsAndChangesNothing(
      List<ServiceTable.Builder> tooMuch, String hint, List<ServiceTable.Builder> fitting)
      throws Exception {
    assertThat(applier.apply(snapshot(5, web(4))).getSuccess()).isTrue();
    ImmutableMap<String, ByteString> before = kernel.image();

    Applied applied = applier.apply(snapshot(6, OTHER_KEY, tooMuch));

    assertThat(applied.getSuccess()).isFalse();
    assertThat(KernelMaps.difference(before, kernel.image())).as(applied.getError()).isEmpty();
    assertThat(applied.getError()).contains(hint).contains("nothing was changed");
    assertThat(applier.appliedVersion()).isEqualTo(5);
    assertThat(applier.tableVersions()).isEqualTo(Map.of("web", 4L));

    Snapshot fits = snapshot(7, OTHER_KEY, fitting);
    applied = applier.apply(fits);
    assertThat(applied.getSuccess()).as(applied.getError()).isTrue();
    assertThat(kernel.services())
        .isEqualTo(expectedRows(fits.getServicesList().toArray(ServiceTable[]::new)));
    assertThat(kernel.hashKey()).isEqualTo(OTHER_KEY);
  }
}
