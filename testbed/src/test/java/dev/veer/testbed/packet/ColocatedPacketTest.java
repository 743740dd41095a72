package dev.veer.testbed.packet;

import static dev.veer.testbed.lab.PacketLab.CLIENT4;
import static dev.veer.testbed.lab.PacketLab.PEERS4;
import static dev.veer.testbed.lab.PacketLab.SELF4;
import static dev.veer.testbed.lab.PacketLab.SELF6;
import static dev.veer.testbed.lab.PacketLab.VIP4;
import static dev.veer.testbed.packet.Frames.XDP_PASS;
import static dev.veer.testbed.packet.Frames.XDP_TX;
import static dev.veer.testbed.packet.Frames.ack;
import static dev.veer.testbed.packet.Frames.frame;
import static dev.veer.testbed.packet.Frames.l3;
import static dev.veer.testbed.packet.Frames.syn;
import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.TestRunResult;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ColocatedVerdict;
import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.DataplaneObject;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.bpf.dataplane.ServiceOptions.HashFields;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.lab.PacketLab;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The co-located program through BPF_PROG_TEST_RUN: its director half loaded by a director data
 * plane, its proxy half sharing the maps through their pins, as the two daemons of a co-located
 * host do. Every case checks that exactly one counter of the three kinds moved.
 */
class ColocatedPacketTest {
  static final byte[] KEY = "0123456789abcdef".getBytes();
  static final int ROW_BITS = 8;
  static final ServiceKey WEB = ServiceKey.tcp(VIP4, 80);
  static final ServiceKey ALONE = ServiceKey.tcp(VIP4, 81);
  static final FlowHash HASH = new FlowHash(KEY);

  /** This host (SELF4) and three others; two hops a row. */
  static final List<InetAddress> BACKENDS =
      List.of(SELF4, PEERS4.get(0), PEERS4.get(1), PEERS4.get(2));

  static PacketLab lab;
  static Path pins;
  static DirectorDataplane director;
  static ProxyDataplane proxy;
  static HopTable table;

  @BeforeAll
  static void setUp() {
    lab = PacketLab.create("pkt-col");
    pins = lab.namespace().pinDirectory();
    director =
        DirectorDataplane.detached(
            DirectorConfig.of(KEY, SELF4, SELF6), ROW_BITS, pins, DataplaneObject.CO_LOCATED);
    proxy =
        ProxyDataplane.sharing(
            lab.handle(), pins, VeerAbi.GUE_PORT_DEFAULT, List.of(SELF4, SELF6), Optional.empty());
    table = dev.veer.testbed.Tables.allActive(BACKENDS, ROW_BITS, 2);
    director.apply(WEB, ServiceOptions.DEFAULT, table);
    director.apply(
        ALONE,
        ServiceOptions.DEFAULT,
        dev.veer.testbed.Tables.allActive(List.of(SELF4), ROW_BITS, 1));
    proxy.setServed(Set.of(WEB, ALONE));
    proxy.setPeers(new HashSet<>(PEERS4));
  }

  @AfterAll
  static void tearDown() {
    if (proxy != null) {
      proxy.close();
    }
    if (director != null) {
      director.close();
    }
    if (lab != null) {
      lab.close();
      BpfSystem.removePins(pins);
    }
  }

  /** Every counter of the three kinds. */
  static Map<Enum<?>, Long> counts() {
    Map<Enum<?>, Long> all = new java.util.HashMap<>();
    all.putAll(director.program().verdicts());
    all.putAll(proxy.verdicts());
    all.putAll(director.program().colocatedVerdicts());
    return all;
  }

  /** Runs a frame and checks that of all counters exactly {@code expected} moved, by one. */
  static TestRunResult run(byte[] frame, Enum<?> expected) {
    Map<Enum<?>, Long> before = counts();
    TestRunResult result = lab.run(director.program().program(), frame);
    counts()
        .forEach(
            (counter, n) ->
                assertThat(n - before.get(counter))
                    .as("%s", counter)
                    .isEqualTo(counter == expected ? 1 : 0));
    return result;
  }

  /** A client port whose row's hops satisfy {@code wanted} (primary first). */
  static int portWhere(java.util.function.Predicate<List<InetAddress>> wanted) {
    for (int port = 20000; port < 40000; port++) {
      int row = FlowHash.row(HASH.hash(CLIENT4, port, HashFields.SOURCE_IP_AND_PORT), ROW_BITS);
      if (wanted.test(table.hops(row))) {
        return port;
      }
    }
    throw new AssertionError("no port gives such a row");
  }

  /** The GUE hop list (after the primary) of an encapsulated frame, and its outer destination. */
  static List<InetAddress> outerHops(byte[] out) throws Exception {
    List<InetAddress> hops = new ArrayList<>();
    hops.add(InetAddress.getByAddress(Arrays.copyOfRange(out, 14 + 16, 14 + 20)));
    int priv = 14 + 20 + 8 + 4;
    int after = out[priv + 3];
    for (int i = 0; i < after; i++) {
      int at = priv + 4 + 4 * i;
      hops.add(InetAddress.getByAddress(Arrays.copyOfRange(out, at, at + 4)));
    }
    return hops;
  }

  @Test
  void synWhoseRowThisHostLeadsIsDeliveredAsItCame() {
    int port = portWhere(h -> h.get(0).equals(SELF4));
    byte[] frame = frame(syn(CLIENT4, port, VIP4, 80));
    TestRunResult r = run(frame, ColocatedVerdict.COL_DELIVER_PRIMARY);
    assertThat(r.retval()).isEqualTo(XDP_PASS);
    assertThat(r.packetOut()).isEqualTo(frame);
  }

  @Test
  void synWhoseRowAnotherLeadsGoesToItsHopsWithoutThisHost() throws Exception {
    int port = portWhere(h -> !h.get(0).equals(SELF4) && h.get(1).equals(SELF4));
    TestRunResult r = run(frame(syn(CLIENT4, port, VIP4, 80)), DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(r.retval()).isEqualTo(XDP_TX);
    int row = FlowHash.row(HASH.hash(CLIENT4, port, HashFields.SOURCE_IP_AND_PORT), ROW_BITS);
    assertThat(outerHops(r.packetOut())).containsExactly(table.hops(row).get(0));
    assertThat(Arrays.copyOfRange(r.packetOut(), r.packetOut().length - 40, r.packetOut().length))
        .isEqualTo(syn(CLIENT4, port, VIP4, 80));
  }

  @Test
  void packetOfNoConnectionHereGoesToTheRowsOtherHops() throws Exception {
    int port = portWhere(h -> h.get(0).equals(SELF4));
    int row = FlowHash.row(HASH.hash(CLIENT4, port, HashFields.SOURCE_IP_AND_PORT), ROW_BITS);
    TestRunResult r = run(frame(ack(CLIENT4, port, VIP4, 80, "x")), DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(outerHops(r.packetOut())).containsExactly(table.hops(row).get(1));
  }

  @Test
  void packetOfNoConnectionWithNoOtherHopIsLeftToTheLocalStack() {
    TestRunResult r =
        run(frame(ack(CLIENT4, 20001, VIP4, 81, "x")), ColocatedVerdict.COL_DELIVER_LAST_HOP);
    assertThat(r.retval()).isEqualTo(XDP_PASS);
  }

  @Test
  void packetOfAConnectionThisHostAcceptedIsDeliveredWhateverItsRow() throws Exception {
    lab.namespace().exec("ip", "addr", "replace", VIP4.getHostAddress() + "/32", "dev", "lo");
    lab.namespace().exec("ip", "addr", "replace", CLIENT4.getHostAddress() + "/32", "dev", "lo");
    lab.namespace().exec("ip", "link", "set", "lo", "up");
    int port = portWhere(h -> !h.contains(SELF4));
    lab.call(
        () -> {
          try (ServerSocket server = new ServerSocket()) {
            server.bind(new InetSocketAddress(VIP4, 80));
            try (Socket client = new Socket()) {
              client.bind(new InetSocketAddress(CLIENT4, port));
              client.connect(new InetSocketAddress(VIP4, 80));
              try (Socket accepted = server.accept()) {
                TestRunResult r =
                    lab.run(director.program().program(), frame(ack(CLIENT4, port, VIP4, 80, "x")));
                assertThat(r.retval()).isEqualTo(XDP_PASS);
              }
            }
          }
          return null;
        });
    assertThat(
            director.program().colocatedVerdicts().get(ColocatedVerdict.COL_DELIVER_FLOW)
                + director.program().colocatedVerdicts().get(ColocatedVerdict.COL_DELIVER_SOCKET))
        .isEqualTo(1);
  }

  @Test
  void gueForThisHostIsTheProxyHalfs() {
    byte[] frame =
        ProxyPacketTest.fromDirector(
            PEERS4.get(0), SELF4, 0, List.of(PEERS4.get(1)), syn(CLIENT4, 20002, VIP4, 80));
    TestRunResult r = run(frame, ProxyVerdict.PRX_DELIVER_SYN);
    assertThat(r.retval()).isEqualTo(XDP_PASS);
    assertThat(l3(r.packetOut())).isEqualTo(syn(CLIENT4, 20002, VIP4, 80));
  }

  @Test
  void hostTrafficPasses() {
    TestRunResult r =
        run(frame(syn(CLIENT4, 20003, PEERS4.get(3), 22)), DirectorVerdict.DIR_PASS_NOT_SERVICE);
    assertThat(r.retval()).isEqualTo(XDP_PASS);
  }
}
