package dev.veer.testbed.packet;

import static dev.veer.testbed.lab.PacketLab.CLIENT4;
import static dev.veer.testbed.lab.PacketLab.CLIENT6;
import static dev.veer.testbed.lab.PacketLab.PEERS4;
import static dev.veer.testbed.lab.PacketLab.PEERS6;
import static dev.veer.testbed.lab.PacketLab.SELF4;
import static dev.veer.testbed.lab.PacketLab.SELF6;
import static dev.veer.testbed.lab.PacketLab.VIP4;
import static dev.veer.testbed.lab.PacketLab.VIP6;
import static dev.veer.testbed.packet.Frames.XDP_DROP;
import static dev.veer.testbed.packet.Frames.XDP_PASS;
import static dev.veer.testbed.packet.Frames.XDP_TX;
import static dev.veer.testbed.packet.Frames.ack;
import static dev.veer.testbed.packet.Frames.syn;
import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.net.InetAddresses;
import com.google.common.primitives.Bytes;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.TestRunResult;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.Await;
import dev.veer.testbed.lab.PacketLab;
import dev.veer.testbed.wire.Ipv4Header;
import dev.veer.testbed.wire.MacAddress;
import dev.veer.testbed.wire.Packets;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every verdict of the proxy program through BPF_PROG_TEST_RUN in the lab namespace: decapsulation,
 * socket lookups against real sockets, second-chance forwarding and every malformed or unauthorised
 * input.
 */
class ProxyPacketTest {
  static final int SPORT = 0xc123;

  /** The proxy under test answers for this address; the outer destination of what it receives. */
  static final Inet4Address ME4 = PEERS4.get(2);

  static final Inet6Address ME6 = PEERS6.get(2);
  static final Inet4Address OUTSIDER4 = PEERS4.get(3);
  static final Inet6Address OUTSIDER6 = PEERS6.get(3);

  /**
   * What the proxy under test delivers: its listener's port and 80 on both VIPs, DNS on the IPv4
   * VIP.
   */
  static final Set<ServiceKey> SERVED =
      Set.of(
          ServiceKey.tcp(VIP4, 80),
          ServiceKey.tcp(VIP4, 8000),
          ServiceKey.tcp(VIP6, 80),
          ServiceKey.tcp(VIP6, 8000),
          new ServiceKey(VIP4, 53, ServiceKey.UDP));

  static PacketLab lab;
  static ProxyDataplane proxy;
  static ServerSocketChannel listener;

  /** Connected before the proxy's flow table existed: only a socket lookup finds them. */
  static SocketChannel client4;

  static SocketChannel client6;

  /** Connected after: the flow table has them. */
  static SocketChannel tracked4;

  static SocketChannel tracked6;
  static final List<AutoCloseable> sockets = new ArrayList<>();

  @BeforeAll
  static void setUp() throws Exception {
    lab = PacketLab.create("pkt-prx");
    // A dual-stack listener: its IPv4 connections are v4-mapped sockets, keyed as IPv4.
    listener = lab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(8000)));
    client4 = connect(SELF4, VIP4);
    client6 = connect(SELF6, VIP6);
    Path cgroup =
        BpfSystem.cgroupV2Root()
            .orElseThrow(() -> new IllegalStateException("no cgroup v2 mounted"));
    proxy =
        ProxyDataplane.detached(
            VeerAbi.GUE_PORT_DEFAULT,
            List.of(ME4, ME6),
            Optional.of(new ProxyDataplane.FlowTracking(cgroup, lab.handle())));
    proxy.setServed(SERVED);
    proxy.setPeers(
        Set.of(
            SELF4,
            SELF6,
            PEERS4.get(0),
            PEERS4.get(1),
            ME4,
            PEERS6.get(0),
            PEERS6.get(1),
            ME6,
            PacketLab.UNRESOLVED4,
            PacketLab.UNROUTABLE4));
    tracked4 = connect(SELF4, VIP4);
    tracked6 = connect(SELF6, VIP6);
  }

  /** A real connection in the lab namespace, both ends kept open until the end of the class. */
  static SocketChannel connect(InetAddress from, InetAddress vip) throws Exception {
    SocketChannel client =
        lab.call(() -> SocketChannel.open().bind(new InetSocketAddress(from, 0)));
    sockets.add(client);
    client.connect(new InetSocketAddress(vip, 8000));
    sockets.add(listener.accept());
    return client;
  }

  @AfterAll
  static void tearDown() throws Exception {
    List<AutoCloseable> all = new ArrayList<>(sockets);
    all.addAll(Arrays.asList(listener, proxy, lab));
    for (AutoCloseable c : all) {
      if (c != null) {
        c.close();
      }
    }
  }

  static TestRunResult run(byte[] frame, ProxyVerdict expected) {
    EnumMap<ProxyVerdict, Long> before = proxy.verdicts();
    TestRunResult result = lab.run(proxy.program().program(), frame);
    EnumMap<ProxyVerdict, Long> after = proxy.verdicts();
    for (ProxyVerdict v : ProxyVerdict.values()) {
      assertThat(after.get(v) - before.get(v)).as("counter %s", v).isEqualTo(v == expected ? 1 : 0);
    }
    return result;
  }

  /** GUE as a director (or a forwarding proxy) sends it. */
  static byte[] gueFrame(
      MacAddress dstMac,
      MacAddress srcMac,
      InetAddress from,
      InetAddress to,
      int nextHop,
      List<? extends InetAddress> hops,
      byte[] inner) {
    byte[] gue =
        Packets.gue(Packets.gueProtocol(inner), nextHop, hops, from instanceof Inet6Address, inner);
    byte[] udp = Packets.udp(from, to, SPORT, VeerAbi.GUE_PORT_DEFAULT, gue, false);
    byte[] ip =
        from instanceof Inet4Address f4
            ? Packets.ipv4(Ipv4Header.of(f4, (Inet4Address) to, Packets.PROTO_UDP), udp)
            : Packets.ipv6((Inet6Address) from, (Inet6Address) to, Packets.PROTO_UDP, udp);
    return Packets.ethernet(dstMac, srcMac, Frames.etherType(from), ip);
  }

  static byte[] fromDirector(
      InetAddress from,
      InetAddress to,
      int nextHop,
      List<? extends InetAddress> hops,
      byte[] inner) {
    return gueFrame(PacketLab.LAB_MAC, Frames.ROUTER_MAC, from, to, nextHop, hops, inner);
  }

  static byte[] delivered(byte[] inner) {
    return Packets.ethernet(
        PacketLab.LAB_MAC,
        Frames.ROUTER_MAC,
        Frames.etherType(inner[0] >> 4 == 4 ? VIP4 : VIP6),
        inner);
  }

  static int port(SocketChannel ch) throws Exception {
    return ((InetSocketAddress) ch.getLocalAddress()).getPort();
  }

  @Test
  void synIsDeliveredWithTheOuterHeadersStripped() {
    byte[] inner = syn(CLIENT4, 40000, VIP4, 80);
    TestRunResult r =
        run(
            fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), inner),
            ProxyVerdict.PRX_DELIVER_SYN);
    assertThat(r.retval()).isEqualTo(XDP_PASS);
    assertThat(r.packetOut()).isEqualTo(delivered(inner));
  }

  /** A mid-flow packet of each connection, from a director, is delivered with {@code verdict}. */
  static void assertDeliveredMidFlow(SocketChannel v4, SocketChannel v6, ProxyVerdict verdict)
      throws Exception {
    byte[] inner4 = ack(SELF4, port(v4), VIP4, 8000, "more");
    TestRunResult r = run(fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), inner4), verdict);
    assertThat(r.packetOut()).isEqualTo(delivered(inner4));
    byte[] inner6 = ack(SELF6, port(v6), VIP6, 8000, "more");
    r = run(fromDirector(SELF6, ME6, 0, List.of(PEERS6.get(0)), inner6), verdict);
    assertThat(r.packetOut()).isEqualTo(delivered(inner6));
  }

  @Test
  void packetOfAnAcceptedConnectionIsDeliveredByTheFlowTable() throws Exception {
    assertDeliveredMidFlow(tracked4, tracked6, ProxyVerdict.PRX_DELIVER_FLOW);
  }

  @Test
  void closedConnectionLeavesTheFlowTableAndItsPacketsGoOn() throws Exception {
    int before = proxy.flowCount();
    SocketChannel client = connect(SELF4, VIP4);
    int clientPort = port(client);
    SocketChannel server = (SocketChannel) sockets.get(sockets.size() - 1);
    assertThat(proxy.flowCount()).isEqualTo(before + 1);
    byte[] inner = ack(SELF4, clientPort, VIP4, 8000, "late");
    run(fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), inner), ProxyVerdict.PRX_DELIVER_FLOW);

    // The client closes first and keeps TIME_WAIT; the accepted socket ends in CLOSE.
    client.close();
    server.close();
    Await.until(
        "the closed connection to leave the flow table",
        () -> proxy.flowCount() == before,
        java.time.Duration.ofSeconds(2));
    run(fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), inner), ProxyVerdict.PRX_FORWARD);
  }

  @Test
  void connectionsOfAnotherNamespaceAreNotKept() throws Exception {
    int before = proxy.flowCount();
    try (ServerSocketChannel elsewhere =
            ServerSocketChannel.open()
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        SocketChannel client = SocketChannel.open(elsewhere.getLocalAddress());
        SocketChannel accepted = elsewhere.accept()) {
      assertThat(accepted.isConnected()).isTrue();
      assertThat(proxy.flowCount()).isEqualTo(before);
    }
  }

  @Test
  void packetOfAnOlderLocalConnectionIsFoundBySocketLookup() throws Exception {
    assertDeliveredMidFlow(client4, client6, ProxyVerdict.PRX_DELIVER_SOCKET);
  }

  @Test
  void unknownFlowIsForwardedToTheNextHopSecondChance() {
    byte[] inner = ack(CLIENT4, 40001, VIP4, 80, "data");
    List<Inet4Address> hops = List.of(PEERS4.get(0), PEERS4.get(1));
    TestRunResult r = run(fromDirector(SELF4, ME4, 0, hops, inner), ProxyVerdict.PRX_FORWARD);
    assertThat(r.retval()).isEqualTo(XDP_TX);
    // Outer source becomes this proxy (the old destination), destination the next hop, index
    // advanced.
    assertThat(r.packetOut())
        .isEqualTo(
            gueFrame(
                PacketLab.macOf(PEERS4.get(0)),
                PacketLab.LAB_MAC,
                ME4,
                PEERS4.get(0),
                1,
                hops,
                inner));

    // This proxy as the second hop: forwarded by the first, on to the third, from this proxy's
    // address.
    List<Inet4Address> later = List.of(ME4, PEERS4.get(1));
    r = run(fromDirector(PEERS4.get(0), ME4, 1, later, inner), ProxyVerdict.PRX_FORWARD);
    assertThat(r.packetOut())
        .isEqualTo(
            gueFrame(
                PacketLab.macOf(PEERS4.get(1)),
                PacketLab.LAB_MAC,
                ME4,
                PEERS4.get(1),
                2,
                later,
                inner));
  }

  @Test
  void ackToAListeningPortWithoutConnectionOrCookieIsForwarded() {
    byte[] inner = ack(CLIENT4, 40002, VIP4, 8000, "");
    run(fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(1)), inner), ProxyVerdict.PRX_FORWARD);
  }

  @Test
  void ipv6UnknownFlowIsForwardedOverIpv6Hops() {
    byte[] inner = ack(CLIENT6, 40003, VIP6, 80, "data");
    List<Inet6Address> hops = List.of(PEERS6.get(1));
    TestRunResult r = run(fromDirector(SELF6, ME6, 0, hops, inner), ProxyVerdict.PRX_FORWARD);
    assertThat(r.retval()).isEqualTo(XDP_TX);
    assertThat(r.packetOut())
        .isEqualTo(
            gueFrame(
                PacketLab.macOf(PEERS6.get(1)),
                PacketLab.LAB_MAC,
                ME6,
                PEERS6.get(1),
                1,
                hops,
                inner));
  }

  @Test
  void nextHopWithoutNeighbourOrRouteOrRoomIsDropped() {
    byte[] inner = ack(CLIENT4, 40011, VIP4, 80, "x");
    assertThat(
            run(
                    fromDirector(SELF4, ME4, 0, List.of(PacketLab.UNRESOLVED4), inner),
                    ProxyVerdict.PRX_DROP_NO_NEIGH)
                .retval())
        .isEqualTo(XDP_DROP);
    assertThat(
            run(
                    fromDirector(SELF4, ME4, 0, List.of(PacketLab.UNROUTABLE4), inner),
                    ProxyVerdict.PRX_DROP_NO_ROUTE)
                .retval())
        .isEqualTo(XDP_DROP);
    // Arrived over a link with a larger MTU than the one towards the next hop.
    byte[] big = ack(CLIENT4, 40011, VIP4, 80, "x".repeat(PacketLab.MTU));
    assertThat(
            run(
                    fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), big),
                    ProxyVerdict.PRX_DROP_TOO_BIG)
                .retval())
        .isEqualTo(XDP_DROP);
  }

  @Test
  void forwardingClearsAUdpChecksumTheAddressChangeMadeStale() {
    byte[] inner = ack(CLIENT4, 40012, VIP4, 80, "data");
    List<Inet4Address> hops = List.of(PEERS4.get(0));
    byte[] in = fromDirector(SELF4, ME4, 0, hops, inner);
    in[14 + 20 + 6] = 0x12; // a sender that computed a checksum
    in[14 + 20 + 7] = 0x34;
    TestRunResult r = run(in, ProxyVerdict.PRX_FORWARD);
    assertThat(r.packetOut())
        .isEqualTo(
            gueFrame(
                PacketLab.macOf(PEERS4.get(0)),
                PacketLab.LAB_MAC,
                ME4,
                PEERS4.get(0),
                1,
                hops,
                inner));
  }

  @Test
  void ipv6TcpWithExtensionHeadersGetsItsSecondChanceToo() {
    byte[] tcp = Packets.tcp(CLIENT6, VIP6, 40013, 80, Packets.TCP_ACK, 1, 1, new byte[4]);
    byte[] inner = Packets.ipv6(CLIENT6, VIP6, 60, Packets.ipv6Extension(Packets.PROTO_TCP, tcp));
    assertThat(
            run(
                    fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), inner),
                    ProxyVerdict.PRX_FORWARD)
                .retval())
        .isEqualTo(XDP_TX);
  }

  @Test
  void gueBehindIpv6ExtensionHeadersOrInFragmentsIsDroppedWhoeverSentIt() {
    byte[] gue = Packets.gue(Packets.PROTO_IPIP, 0, List.of(), true, syn(CLIENT4, 1, VIP4, 80));
    byte[] udp = Packets.udp(SELF6, ME6, SPORT, VeerAbi.GUE_PORT_DEFAULT, gue, false);
    byte[] behindOptions =
        Packets.ipv6(SELF6, ME6, 60, Packets.ipv6Extension(Packets.PROTO_UDP, udp));
    assertThat(run(Frames.frame(behindOptions), ProxyVerdict.PRX_DROP_MALFORMED).retval())
        .isEqualTo(XDP_DROP);

    byte[] firstFragment =
        Packets.ipv6(OUTSIDER6, ME6, 44, Bytes.concat(new byte[] {17, 0, 0, 1, 0, 0, 0, 9}, udp));
    assertThat(run(Frames.frame(firstFragment), ProxyVerdict.PRX_DROP_FRAGMENT).retval())
        .isEqualTo(XDP_DROP);

    byte[] laterFragment =
        Frames.frame(
            Packets.ipv6(
                OUTSIDER6,
                ME6,
                44,
                Bytes.concat(new byte[] {17, 0, 0, 8, 0, 0, 0, 9}, new byte[32])));
    TestRunResult later = run(laterFragment, ProxyVerdict.PRX_PASS_NOT_GUE);
    assertThat(later.packetOut()).isEqualTo(laterFragment);

    byte[] dns = Packets.udp(CLIENT6, ME6, 5000, 53, new byte[12], true);
    byte[] hostUdp =
        Frames.frame(Packets.ipv6(CLIENT6, ME6, 60, Packets.ipv6Extension(Packets.PROTO_UDP, dns)));
    assertThat(run(hostUdp, ProxyVerdict.PRX_PASS_NOT_GUE).packetOut()).isEqualTo(hostUdp);
  }

  @Test
  void lastHopDeliversSoTheKernelCanAnswerWithReset() {
    byte[] inner = ack(CLIENT4, 40004, VIP4, 80, "late");
    TestRunResult r =
        run(
            fromDirector(SELF4, ME4, 1, List.of(PEERS4.get(0)), inner),
            ProxyVerdict.PRX_DELIVER_LAST_HOP);
    assertThat(r.packetOut()).isEqualTo(delivered(inner));
    byte[] noHops = ack(CLIENT6, 40004, VIP6, 80, "late");
    r = run(fromDirector(SELF6, ME6, 0, List.of(), noHops), ProxyVerdict.PRX_DELIVER_LAST_HOP);
    assertThat(r.packetOut()).isEqualTo(delivered(noHops));
  }

  @Test
  void innerUdpAndIcmpAreDelivered() {
    byte[] udp =
        Packets.ipv4(
            CLIENT4,
            VIP4,
            Packets.PROTO_UDP,
            Packets.udp(CLIENT4, VIP4, 5000, 53, new byte[0], true));
    assertThat(
            run(fromDirector(SELF4, ME4, 0, List.of(), udp), ProxyVerdict.PRX_DELIVER_NOT_TCP)
                .packetOut())
        .isEqualTo(delivered(udp));
    byte[] icmp =
        Packets.ipv6(
            CLIENT6,
            VIP6,
            Packets.PROTO_ICMPV6,
            Packets.icmp(CLIENT6, VIP6, 128, 0, 0, new byte[4]));
    assertThat(
            run(fromDirector(SELF4, ME4, 0, List.of(), icmp), ProxyVerdict.PRX_DELIVER_NOT_TCP)
                .packetOut())
        .isEqualTo(delivered(icmp));
  }

  @Test
  void vlanTagSurvivesDecapsulation() {
    byte[] inner = syn(CLIENT4, 40005, VIP4, 80);
    byte[] gue = Packets.gue(Packets.PROTO_IPIP, 0, List.of(), inner);
    byte[] ip =
        Packets.ipv4(
            Ipv4Header.of(SELF4, ME4, Packets.PROTO_UDP),
            Packets.udp(SELF4, ME4, SPORT, VeerAbi.GUE_PORT_DEFAULT, gue, false));
    byte[] tagged =
        Packets.ethernet(PacketLab.LAB_MAC, Frames.ROUTER_MAC, 9, Packets.ETHERTYPE_IPV4, ip);
    TestRunResult r = run(tagged, ProxyVerdict.PRX_DELIVER_SYN);
    assertThat(r.packetOut())
        .isEqualTo(
            Packets.ethernet(
                PacketLab.LAB_MAC, Frames.ROUTER_MAC, 9, Packets.ETHERTYPE_IPV4, inner));
  }

  @Test
  void gueFromOutsideTheAllowListIsDropped() {
    byte[] inner = syn(CLIENT4, 40006, VIP4, 80);
    assertThat(
            run(
                    fromDirector(OUTSIDER4, ME4, 0, List.of(), inner),
                    ProxyVerdict.PRX_DROP_NOT_ALLOWED)
                .retval())
        .isEqualTo(XDP_DROP);
    assertThat(
            run(
                    fromDirector(OUTSIDER6, ME6, 0, List.of(), inner),
                    ProxyVerdict.PRX_DROP_NOT_ALLOWED)
                .retval())
        .isEqualTo(XDP_DROP);
  }

  @Test
  void hopOutsideTheAllowListIsNeverForwardedTo() {
    byte[] inner = ack(CLIENT4, 40007, VIP4, 80, "x");
    assertThat(
            run(
                    fromDirector(SELF4, ME4, 0, List.of(OUTSIDER4), inner),
                    ProxyVerdict.PRX_DROP_HOP_NOT_ALLOWED)
                .retval())
        .isEqualTo(XDP_DROP);
    assertThat(
            run(
                    fromDirector(SELF6, ME6, 0, List.of(OUTSIDER6), ack(CLIENT6, 1, VIP6, 80, "x")),
                    ProxyVerdict.PRX_DROP_HOP_NOT_ALLOWED)
                .retval())
        .isEqualTo(XDP_DROP);
  }

  /** A valid GUE frame with one byte of the GUE header (offset from the GUE start) replaced. */
  static byte[] withGueByte(int offset, int value) {
    byte[] f =
        fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), ack(CLIENT4, 40008, VIP4, 80, "x"));
    f[14 + 20 + 8 + offset] = (byte) value;
    return f;
  }

  @Test
  void wrongGueVersionControlBitProtocolTypeLengthAndHopsEachHaveTheirVerdict() {
    assertThat(run(withGueByte(0, 0x40 | 2), ProxyVerdict.PRX_DROP_GUE_VERSION).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(withGueByte(0, 0x20 | 2), ProxyVerdict.PRX_DROP_GUE_VERSION).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(withGueByte(1, 17), ProxyVerdict.PRX_DROP_GUE_PROTO).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(withGueByte(4, 0x7f), ProxyVerdict.PRX_DROP_GUE_TYPE).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(withGueByte(0, 3), ProxyVerdict.PRX_DROP_GUE_LENGTH).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(withGueByte(0, 0), ProxyVerdict.PRX_DROP_GUE_LENGTH).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(withGueByte(7, 4), ProxyVerdict.PRX_DROP_GUE_HOPS).retval()).isEqualTo(XDP_DROP);
    assertThat(run(withGueByte(6, 2), ProxyVerdict.PRX_DROP_GUE_HOPS).retval()).isEqualTo(XDP_DROP);
    // IPv4 hop type inside an IPv6 outer header.
    byte[] v6 = fromDirector(SELF6, ME6, 0, List.of(PEERS6.get(0)), syn(CLIENT6, 1, VIP6, 80));
    v6[14 + 40 + 8 + 4] = 0;
    v6[14 + 40 + 8 + 5] = 0;
    assertThat(run(v6, ProxyVerdict.PRX_DROP_GUE_TYPE).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void innerPacketDisagreeingWithGueProtocolIsMalformed() {
    byte[] f = withGueByte(1, Packets.PROTO_IPV6); // says IPv6, carries IPv4
    assertThat(run(f, ProxyVerdict.PRX_DROP_MALFORMED).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void udpLengthDisagreeingWithIpLengthIsMalformed() {
    byte[] f = fromDirector(SELF4, ME4, 0, List.of(), syn(CLIENT4, 1, VIP4, 80));
    f[14 + 20 + 5] += 1;
    assertThat(run(f, ProxyVerdict.PRX_DROP_MALFORMED).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void firstFragmentOfGueIsDropped() {
    byte[] gue = Packets.gue(Packets.PROTO_IPIP, 0, List.of(), syn(CLIENT4, 1, VIP4, 80));
    byte[] ip =
        Packets.ipv4(
            Ipv4Header.of(SELF4, ME4, Packets.PROTO_UDP).withFlagsAndOffset(Packets.IPV4_MF),
            Packets.udp(SELF4, ME4, SPORT, VeerAbi.GUE_PORT_DEFAULT, gue, false));
    assertThat(run(Frames.frame(ip), ProxyVerdict.PRX_DROP_FRAGMENT).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void everythingElseIsTheHostsAndPassedUntouched() {
    byte[] dns =
        Frames.frame(
            Packets.ipv4(
                CLIENT4,
                ME4,
                Packets.PROTO_UDP,
                Packets.udp(CLIENT4, ME4, 5000, 53, new byte[12], true)));
    byte[] ssh = Frames.frame(syn(CLIENT6, 1, ME6, 22));
    byte[] arp =
        Packets.ethernet(PacketLab.LAB_MAC, Frames.ROUTER_MAC, Packets.ETHERTYPE_ARP, new byte[28]);
    byte[] laterFragment =
        Frames.frame(
            Packets.ipv4(
                Ipv4Header.of(CLIENT4, ME4, Packets.PROTO_UDP).withFlagsAndOffset(100),
                new byte[40]));
    for (byte[] f : List.of(dns, ssh, arp, laterFragment)) {
      TestRunResult r = run(f, ProxyVerdict.PRX_PASS_NOT_GUE);
      assertThat(r.retval()).isEqualTo(XDP_PASS);
      assertThat(r.packetOut()).isEqualTo(f);
    }
  }

  @Test
  void truncatedAtEveryHeaderBoundaryIsDroppedAsMalformed() {
    byte[] f4 =
        fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), ack(CLIENT4, 40009, VIP4, 80, "data"));
    // Ethernet 14, outer IPv4 34, UDP 42, GUE 46, private data 50, hop 54, inner IPv4 74, TCP 94,
    // payload 98.
    for (int len :
        new int[] {14, 20, 33, 34, 41, 42, 45, 46, 49, 50, 53, 54, 60, 73, 74, 80, 93, 94, 97}) {
      assertThat(run(Arrays.copyOf(f4, len), ProxyVerdict.PRX_DROP_MALFORMED).retval())
          .as("length %s", len)
          .isEqualTo(XDP_DROP);
    }
    byte[] f6 =
        fromDirector(SELF6, ME6, 0, List.of(PEERS6.get(0)), ack(CLIENT6, 40009, VIP6, 80, "data"));
    for (int len : new int[] {14, 53, 54, 61, 62, 66, 70, 86, 100, 126, 137}) {
      assertThat(run(Arrays.copyOf(f6, len), ProxyVerdict.PRX_DROP_MALFORMED).retval())
          .as("length %s", len)
          .isEqualTo(XDP_DROP);
    }
  }

  @Test
  void truncatedInnerPacketWithConsistentOuterLengthsIsMalformed() {
    byte[] inner =
        Arrays.copyOf(ack(CLIENT4, 40010, VIP4, 80, "data"), 30); // IPv4 header + 10 bytes of TCP
    byte[] f = fromDirector(SELF4, ME4, 0, List.of(), inner);
    assertThat(run(f, ProxyVerdict.PRX_DROP_MALFORMED).retval()).isEqualTo(XDP_DROP);
  }

  /**
   * An IPv4 GUE frame whose outer IP and UDP headers declare a datagram of {@code udpLength} bytes.
   */
  static byte[] withDatagramLength(byte[] frame, int udpLength) {
    byte[] copy = frame.clone();
    int ip = 14;
    int total = 20 + udpLength;
    copy[ip + 2] = (byte) (total >> 8);
    copy[ip + 3] = (byte) total;
    copy[ip + 20 + 4] = (byte) (udpLength >> 8);
    copy[ip + 20 + 5] = (byte) udpLength;
    return copy;
  }

  @Test
  void bytesPastTheDeclaredDatagramAreNotDeliveredAsPartOfTheInnerPacketNorForwarded() {
    byte[] inner = ack(CLIENT4, 40020, VIP4, 80, "data");
    byte[] f = fromDirector(SELF4, ME4, 1, List.of(PEERS4.get(0)), inner);
    byte[] padded = Arrays.copyOf(f, f.length + 23);
    Arrays.fill(padded, f.length, padded.length, (byte) 0x5a);
    // Delivered: the inner packet, then the same trailer, which the stack drops by the IP length.
    byte[] trailer = Arrays.copyOfRange(padded, f.length, padded.length);
    assertThat(run(padded, ProxyVerdict.PRX_DELIVER_LAST_HOP).packetOut())
        .isEqualTo(Bytes.concat(delivered(inner), trailer));

    byte[] unknown = ack(CLIENT4, 40021, VIP4, 80, "data");
    List<Inet4Address> hops = List.of(PEERS4.get(0));
    byte[] g = fromDirector(SELF4, ME4, 0, hops, unknown);
    // Forwarded: nothing past the datagram is sent on.
    assertThat(run(Arrays.copyOf(g, g.length + 9), ProxyVerdict.PRX_FORWARD).packetOut())
        .isEqualTo(
            gueFrame(
                PacketLab.macOf(PEERS4.get(0)),
                PacketLab.LAB_MAC,
                ME4,
                PEERS4.get(0),
                1,
                hops,
                unknown));
  }

  @Test
  void headersThatEndPastTheDeclaredDatagramAreMalformed() {
    byte[] inner = syn(CLIENT4, 40022, VIP4, 80);
    byte[] f = fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), inner);
    // UDP 8 + GUE 4 + private data 4 + one hop 4 + inner 40 = 60. The frame keeps every byte; the
    // headers say the datagram ends inside GUE, inside the hop list, before the inner packet,
    // inside it, or that the inner packet lies wholly in what follows the datagram.
    for (int udpLength : new int[] {8, 10, 14, 18, 20, 40, 59}) {
      assertThat(run(withDatagramLength(f, udpLength), ProxyVerdict.PRX_DROP_MALFORMED).retval())
          .as("UDP length %s", udpLength)
          .isEqualTo(XDP_DROP);
    }
    byte[] noHops = fromDirector(SELF4, ME4, 0, List.of(), inner);
    assertThat(run(withDatagramLength(noHops, 16), ProxyVerdict.PRX_DROP_MALFORMED).retval())
        .isEqualTo(XDP_DROP);
    // An inner packet that says it is shorter than the rest of the datagram.
    byte[] shorter = fromDirector(SELF4, ME4, 0, List.of(), Bytes.concat(inner, new byte[6]));
    assertThat(run(shorter, ProxyVerdict.PRX_DROP_MALFORMED).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void gueNotAddressedToThisProxyIsDropped() {
    byte[] inner = syn(CLIENT4, 40023, VIP4, 80);
    for (InetAddress to :
        List.of(
            PEERS4.get(0),
            SELF4,
            VIP4,
            InetAddresses.forString("255.255.255.255"),
            InetAddresses.forString("127.0.0.1"))) {
      assertThat(
              run(fromDirector(SELF4, to, 0, List.of(), inner), ProxyVerdict.PRX_DROP_NOT_LOCAL)
                  .retval())
          .as("to %s", to)
          .isEqualTo(XDP_DROP);
    }
    byte[] inner6 = syn(CLIENT6, 40023, VIP6, 80);
    for (InetAddress to : List.of(PEERS6.get(0), VIP6, InetAddresses.forString("ff02::1"))) {
      assertThat(
              run(fromDirector(SELF6, to, 0, List.of(), inner6), ProxyVerdict.PRX_DROP_NOT_LOCAL)
                  .retval())
          .as("to %s", to)
          .isEqualTo(XDP_DROP);
    }
  }

  @Test
  void innerPacketsToAnythingThisProxyDoesNotServeAreDropped() {
    List<byte[]> unserved =
        List.of(
            syn(CLIENT4, 40024, VIP4, 22), // another port of the VIP
            syn(CLIENT4, 40024, ME4, 22), // the host's own SSH server, through the tunnel
            syn(CLIENT4, 40024, SELF4, 80),
            syn(CLIENT6, 40024, ME6, 22),
            Packets.ipv4(
                CLIENT4,
                VIP4,
                Packets.PROTO_UDP,
                Packets.udp(CLIENT4, VIP4, 5000, 54, new byte[4], true)),
            Packets.ipv4(CLIENT4, VIP4, 47, new byte[20]), // GRE
            Packets.ipv4(
                CLIENT4,
                ME4,
                Packets.PROTO_ICMP,
                Packets.icmp(CLIENT4, ME4, 8, 0, 1, new byte[8])));
    for (byte[] inner : unserved) {
      assertThat(
              run(fromDirector(SELF4, ME4, 0, List.of(), inner), ProxyVerdict.PRX_DROP_NOT_SERVED)
                  .retval())
          .isEqualTo(XDP_DROP);
      // Not forwarded either: a hop would drop it the same way.
      assertThat(
              run(
                      fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), inner),
                      ProxyVerdict.PRX_DROP_NOT_SERVED)
                  .retval())
          .isEqualTo(XDP_DROP);
    }
    // What is not delivered here is the next hop's to judge: a packet of a flow this proxy does not
    // own goes on even to a port it does not serve (a proxy that has not yet heard it serves a new
    // service still passes packets on), and the last hop drops it.
    byte[] otherPort = ack(CLIENT4, 40024, VIP4, 22, "x");
    assertThat(
            run(
                    fromDirector(SELF4, ME4, 0, List.of(PEERS4.get(0)), otherPort),
                    ProxyVerdict.PRX_FORWARD)
                .retval())
        .isEqualTo(XDP_TX);
    assertThat(
            run(
                    fromDirector(PEERS4.get(0), ME4, 1, List.of(ME4), otherPort),
                    ProxyVerdict.PRX_DROP_NOT_SERVED)
                .retval())
        .isEqualTo(XDP_DROP);
    // ICMP about a served VIP still reaches it.
    byte[] tooBig =
        Packets.ipv4(
            CLIENT4,
            VIP4,
            Packets.PROTO_ICMP,
            Packets.icmp(
                CLIENT4, VIP4, 3, 4, 1400, Arrays.copyOf(ack(VIP4, 80, CLIENT4, 40025, "x"), 28)));
    assertThat(
            run(fromDirector(SELF4, ME4, 0, List.of(), tooBig), ProxyVerdict.PRX_DELIVER_NOT_TCP)
                .packetOut())
        .isEqualTo(delivered(tooBig));
  }

  @Test
  void innerFragmentsAreDropped() {
    byte[] fragment = syn(CLIENT4, 40026, VIP4, 80).clone();
    fragment[6] = 0x20; // more fragments
    assertThat(
            run(fromDirector(SELF4, ME4, 0, List.of(), fragment), ProxyVerdict.PRX_DROP_FRAGMENT)
                .retval())
        .isEqualTo(XDP_DROP);
  }

  @Test
  void aNextHopThatIsTheSenderOrThisProxyIsNeverForwardedTo() {
    byte[] inner = ack(CLIENT4, 40027, VIP4, 80, "data");
    assertThat(
            run(
                    fromDirector(PEERS4.get(0), ME4, 0, List.of(PEERS4.get(0)), inner),
                    ProxyVerdict.PRX_DROP_HOP_LOOP)
                .retval())
        .isEqualTo(XDP_DROP);
    assertThat(
            run(fromDirector(SELF4, ME4, 0, List.of(ME4), inner), ProxyVerdict.PRX_DROP_HOP_LOOP)
                .retval())
        .isEqualTo(XDP_DROP);
    byte[] inner6 = ack(CLIENT6, 40027, VIP6, 80, "data");
    assertThat(
            run(
                    fromDirector(PEERS6.get(1), ME6, 0, List.of(PEERS6.get(1)), inner6),
                    ProxyVerdict.PRX_DROP_HOP_LOOP)
                .retval())
        .isEqualTo(XDP_DROP);
    assertThat(
            run(fromDirector(SELF6, ME6, 0, List.of(ME6), inner6), ProxyVerdict.PRX_DROP_HOP_LOOP)
                .retval())
        .isEqualTo(XDP_DROP);
  }

  @Test
  void connectionsToWhatIsNotServedStayOutOfTheFlowTableAndTheTunnel() throws Exception {
    int before = proxy.flowCount();
    try (ServerSocketChannel other =
            lab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(9000)));
        SocketChannel client =
            lab.call(() -> SocketChannel.open().bind(new InetSocketAddress(SELF4, 0)))) {
      client.connect(new InetSocketAddress(VIP4, 9000));
      try (SocketChannel accepted = other.accept()) {
        assertThat(proxy.flowCount())
            .as("flow table after a connection to VIP:9000")
            .isEqualTo(before);
        byte[] inner = ack(SELF4, port(client), VIP4, 9000, "x");
        assertThat(
                run(fromDirector(SELF4, ME4, 0, List.of(), inner), ProxyVerdict.PRX_DROP_NOT_SERVED)
                    .retval())
            .isEqualTo(XDP_DROP);
      }
    }
  }
}
