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
import static dev.veer.testbed.packet.Frames.frame;
import static dev.veer.testbed.packet.Frames.syn;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.collect.ImmutableList;
import com.google.common.net.InetAddresses;
import com.google.common.primitives.Bytes;
import dev.veer.bpf.TestRunResult;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceEntry;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.bpf.dataplane.ServiceOptions.Encapsulation;
import dev.veer.bpf.dataplane.ServiceOptions.HashFields;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.testbed.Tables;
import dev.veer.testbed.lab.PacketLab;
import dev.veer.testbed.wire.Ipv4Header;
import dev.veer.testbed.wire.Packets;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Every verdict of the director program, through BPF_PROG_TEST_RUN in a lab namespace whose FIB and
 * neighbour tables the program reads. Outputs are compared byte for byte with packets built
 * independently.
 */
class DirectorPacketTest {
  static final byte[] KEY = "0123456789abcdef".getBytes();
  static final int ROW_BITS = 12;
  static final ServiceKey WEB4 = ServiceKey.tcp(VIP4, 80);
  static final ServiceKey WEB6 = ServiceKey.tcp(VIP6, 80);
  static final ServiceKey V6_OVER_V4 = ServiceKey.tcp(VIP6, 443);
  static final ServiceKey DNS_IPIP = new ServiceKey(VIP4, 53, ServiceKey.UDP);
  static final ServiceKey IP6IP6 = new ServiceKey(VIP6, 53, ServiceKey.UDP);
  static final ServiceKey STICKY = ServiceKey.tcp(VIP4, 8080);
  static final ServiceKey UNRESOLVED = ServiceKey.tcp(VIP4, 81);
  static final ServiceKey UNROUTABLE = ServiceKey.tcp(VIP4, 82);
  static final ServiceKey EMPTY = ServiceKey.tcp(VIP4, 83);
  static final ServiceKey TABLELESS = ServiceKey.tcp(VIP4, 84);

  static PacketLab lab;
  static DirectorDataplane director;
  static final FlowHash HASH = new FlowHash(KEY);
  static final HopTable TABLE4 = Tables.allActive(PEERS4, ROW_BITS, 3);
  static final HopTable TABLE6 = Tables.allActive(PEERS6, ROW_BITS, 2);

  @BeforeAll
  static void setUp() {
    lab = PacketLab.create("pkt-dir");
    director = DirectorDataplane.detached(DirectorConfig.of(KEY, SELF4, SELF6), ROW_BITS);
    director.apply(WEB4, ServiceOptions.DEFAULT, TABLE4);
    director.apply(WEB6, ServiceOptions.DEFAULT, TABLE6);
    director.apply(V6_OVER_V4, ServiceOptions.DEFAULT, TABLE4);
    director.apply(
        DNS_IPIP, new ServiceOptions(HashFields.SOURCE_IP_AND_PORT, Encapsulation.IPIP), TABLE4);
    director.apply(
        IP6IP6, new ServiceOptions(HashFields.SOURCE_IP_AND_PORT, Encapsulation.IPIP), TABLE6);
    director.apply(STICKY, new ServiceOptions(HashFields.SOURCE_IP, Encapsulation.GUE), TABLE4);
    director.apply(
        UNRESOLVED,
        ServiceOptions.DEFAULT,
        Tables.allActive(List.of(PacketLab.UNRESOLVED4), ROW_BITS, 1));
    director.apply(
        UNROUTABLE,
        ServiceOptions.DEFAULT,
        Tables.allActive(List.of(PacketLab.UNROUTABLE4), ROW_BITS, 1));
    director.apply(EMPTY, ServiceOptions.DEFAULT, Tables.allActive(List.of(), ROW_BITS, 1));
    // A service entry whose table slot holds no table.
    director
        .program()
        .putService(
            TABLELESS,
            new ServiceEntry(VeerAbi.MAX_TABLES - 1, VeerAbi.MAX_SERVICES - 1, ROW_BITS, 1));
  }

  @AfterAll
  static void tearDown() {
    if (director != null) {
      director.close();
    }
    if (lab != null) {
      lab.close();
    }
  }

  /** Runs a frame and checks that exactly one verdict counter moved, by one. */
  static TestRunResult run(byte[] frame, DirectorVerdict expected) {
    EnumMap<DirectorVerdict, Long> before = director.program().verdicts();
    TestRunResult result = lab.run(director.program().program(), frame);
    EnumMap<DirectorVerdict, Long> after = director.program().verdicts();
    for (DirectorVerdict v : DirectorVerdict.values()) {
      long delta = after.get(v) - before.get(v);
      assertThat(delta).as("counter %s", v).isEqualTo(v == expected ? 1 : 0);
    }
    return result;
  }

  /** The frame a director must emit for a client packet: built here from first principles. */
  static byte[] expectedGue(byte[] innerIp, HopTable table, long hash, int vlanTci) {
    List<InetAddress> hops = table.hops(FlowHash.row(hash, table.rowBits()));
    InetAddress primary = hops.getFirst();
    byte[] gue =
        Packets.gue(
            Packets.gueProtocol(innerIp),
            0,
            hops.subList(1, hops.size()),
            primary instanceof Inet6Address,
            innerIp);
    byte[] udp;
    byte[] ip;
    if (primary instanceof Inet4Address p4) {
      udp =
          Packets.udp(
              SELF4, p4, FlowHash.udpSourcePort(hash), VeerAbi.GUE_PORT_DEFAULT, gue, false);
      ip = Packets.ipv4(Ipv4Header.of(SELF4, p4, Packets.PROTO_UDP), udp);
    } else {
      udp =
          Packets.udp(
              SELF6, primary, FlowHash.udpSourcePort(hash), VeerAbi.GUE_PORT_DEFAULT, gue, false);
      ip =
          Packets.ipv6(
              SELF6, (Inet6Address) primary, Packets.PROTO_UDP, 64, FlowHash.flowLabel(hash), udp);
    }
    return Packets.ethernet(
        PacketLab.macOf(primary), PacketLab.LAB_MAC, vlanTci, Frames.etherType(primary), ip);
  }

  static long hashOf(InetAddress client, int port) {
    return HASH.hash(client, port, HashFields.SOURCE_IP_AND_PORT);
  }

  @Test
  void ipv4SynIsEncapsulatedInGueTowardsTheRowsHops() {
    byte[] inner = syn(CLIENT4, 40000, VIP4, 80);
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(r.retval()).isEqualTo(XDP_TX);
    assertThat(r.packetOut()).isEqualTo(expectedGue(inner, TABLE4, hashOf(CLIENT4, 40000), -1));
  }

  @Test
  void midFlowPacketCarriesThreeHopsAndInnerBytesUntouched() {
    byte[] inner = ack(CLIENT4, 40001, VIP4, 80, "GET / HTTP/1.1\r\n\r\n");
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE);
    byte[] expected = expectedGue(inner, TABLE4, hashOf(CLIENT4, 40001), -1);
    assertThat(r.packetOut()).isEqualTo(expected);
    // GUE hlen 3 words: private header + two further hops; inner packet at the end, unchanged.
    assertThat(r.packetOut()[14 + 20 + 8] & 0x1f).isEqualTo(3);
    assertThat(
            Arrays.copyOfRange(
                r.packetOut(), r.packetOut().length - inner.length, r.packetOut().length))
        .isEqualTo(inner);
  }

  @Test
  void sourcePortOfTheOuterUdpHeaderFollowsTheFlowHash() {
    for (int port = 1024; port < 1064; port++) {
      byte[] out =
          run(frame(syn(CLIENT4, port, VIP4, 80)), DirectorVerdict.DIR_ENCAP_GUE).packetOut();
      int sport = ((out[34] & 0xff) << 8) | (out[35] & 0xff);
      assertThat(sport)
          .isEqualTo(FlowHash.udpSourcePort(hashOf(CLIENT4, port)))
          .isBetween(0xc000, 0xffff);
    }
  }

  @Test
  void vlanTaggedFrameKeepsItsTag() {
    byte[] inner = syn(CLIENT4, 40002, VIP4, 80);
    byte[] tagged =
        Packets.ethernet(PacketLab.LAB_MAC, Frames.ROUTER_MAC, 42, Packets.ETHERTYPE_IPV4, inner);
    TestRunResult r = run(tagged, DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(r.packetOut()).isEqualTo(expectedGue(inner, TABLE4, hashOf(CLIENT4, 40002), 42));
  }

  @Test
  void ipv6VipWithIpv6ProxiesUsesIpv6OuterHeaderAndVeerHopType() {
    byte[] inner = syn(CLIENT6, 40003, VIP6, 80);
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(r.retval()).isEqualTo(XDP_TX);
    assertThat(r.packetOut()).isEqualTo(expectedGue(inner, TABLE6, hashOf(CLIENT6, 40003), -1));
    int privType =
        ((r.packetOut()[14 + 40 + 8 + 4] & 0xff) << 8) | (r.packetOut()[14 + 40 + 8 + 5] & 0xff);
    assertThat(privType).isEqualTo(VeerAbi.GUE_TYPE_IPV6_HOPS);
  }

  @Test
  void ipv6ClientThroughIpv4ProxiesIsGueProtocol41() {
    byte[] inner = ack(CLIENT6, 40004, VIP6, 443, "x");
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(r.packetOut()).isEqualTo(expectedGue(inner, TABLE4, hashOf(CLIENT6, 40004), -1));
    assertThat(r.packetOut()[14 + 20 + 8 + 1]).isEqualTo((byte) Packets.PROTO_IPV6);
  }

  @Test
  void ipipServiceSendsPlainIpInIpToThePrimaryOnly() {
    byte[] inner =
        Packets.ipv4(
            CLIENT4,
            VIP4,
            Packets.PROTO_UDP,
            Packets.udp(CLIENT4, VIP4, 5353, 53, "query".getBytes(), true));
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_IPIP);
    InetAddress primary = TABLE4.hops(FlowHash.row(hashOf(CLIENT4, 5353), ROW_BITS)).getFirst();
    byte[] expected =
        Packets.ethernet(
            PacketLab.macOf(primary),
            PacketLab.LAB_MAC,
            Packets.ETHERTYPE_IPV4,
            Packets.ipv4(Ipv4Header.of(SELF4, (Inet4Address) primary, Packets.PROTO_IPIP), inner));
    assertThat(r.packetOut()).isEqualTo(expected);
  }

  @Test
  void ip6ip6ServiceSendsPlainIpv6InIpv6() {
    byte[] inner =
        Packets.ipv6(
            CLIENT6,
            VIP6,
            Packets.PROTO_UDP,
            Packets.udp(CLIENT6, VIP6, 5353, 53, "query".getBytes(), true));
    long hash = hashOf(CLIENT6, 5353);
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_IPIP);
    InetAddress primary = TABLE6.hops(FlowHash.row(hash, ROW_BITS)).getFirst();
    byte[] expected =
        Packets.ethernet(
            PacketLab.macOf(primary),
            PacketLab.LAB_MAC,
            Packets.ETHERTYPE_IPV6,
            Packets.ipv6(
                SELF6,
                (Inet6Address) primary,
                Packets.PROTO_IPV6,
                64,
                FlowHash.flowLabel(hash),
                inner));
    assertThat(r.packetOut()).isEqualTo(expected);
  }

  @Test
  void sourceIpOnlyHashingIgnoresThePort() {
    long hash = HASH.hash(CLIENT4, 0, HashFields.SOURCE_IP);
    for (int port : new int[] {1, 999, 40000, 65535}) {
      byte[] inner = syn(CLIENT4, port, VIP4, 8080);
      TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE);
      assertThat(r.packetOut()).isEqualTo(expectedGue(inner, TABLE4, hash, -1));
    }
  }

  @Test
  void icmpFragmentationNeededIsSteeredLikeTheFlowItQuotes() {
    // The proxy's reply VIP:80 -> client:40005 was too big somewhere; the router tells the VIP.
    byte[] quoted = Arrays.copyOf(ack(VIP4, 80, CLIENT4, 40005, "reply"), 28);
    InetAddress router = PEERS4.getFirst();
    byte[] icmp =
        Packets.ipv4(
            Ipv4Header.of((Inet4Address) router, VIP4, Packets.PROTO_ICMP),
            Packets.icmp(router, VIP4, 3, 4, 1400, quoted));
    TestRunResult r = run(frame(icmp), DirectorVerdict.DIR_ENCAP_ICMP);
    assertThat(r.packetOut()).isEqualTo(expectedGue(icmp, TABLE4, hashOf(CLIENT4, 40005), -1));
  }

  @Test
  void icmpv6PacketTooBigIsSteeredLikeTheFlowItQuotes() {
    byte[] quoted = Arrays.copyOf(ack(VIP6, 80, CLIENT6, 40006, "reply"), 48);
    InetAddress router = PEERS6.getFirst();
    byte[] icmp =
        Packets.ipv6(
            (Inet6Address) router,
            VIP6,
            Packets.PROTO_ICMPV6,
            Packets.icmp(router, VIP6, 2, 0, 1280, quoted));
    TestRunResult r = run(frame(icmp), DirectorVerdict.DIR_ENCAP_ICMP);
    assertThat(r.packetOut()).isEqualTo(expectedGue(icmp, TABLE6, hashOf(CLIENT6, 40006), -1));
  }

  @Test
  void icmpAboutAVipFlowButNotAddressedToTheVipIsNotSteered() {
    byte[] quoted = Arrays.copyOf(ack(VIP4, 80, CLIENT4, 40016, "reply"), 28);
    InetAddress router = PEERS4.getFirst();
    byte[] toHost =
        Packets.ipv4(
            Ipv4Header.of((Inet4Address) router, SELF4, Packets.PROTO_ICMP),
            Packets.icmp(router, SELF4, 3, 4, 1400, quoted));
    TestRunResult r = run(frame(toHost), DirectorVerdict.DIR_PASS_NOT_SERVICE);
    assertThat(r.packetOut()).isEqualTo(frame(toHost));
    // Addressed to the VIP, but quoting a packet somebody else sent.
    byte[] forged = Arrays.copyOf(ack(SELF4, 80, CLIENT4, 40016, "reply"), 28);
    byte[] toVip =
        Packets.ipv4(
            Ipv4Header.of((Inet4Address) router, VIP4, Packets.PROTO_ICMP),
            Packets.icmp(router, VIP4, 3, 4, 1400, forged));
    assertThat(run(frame(toVip), DirectorVerdict.DIR_DROP_VIP_OTHER).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void otherTrafficToAVipIsDroppedRatherThanRoutedBackToTheRouter() {
    byte[] echo =
        Packets.ipv4(
            CLIENT4, VIP4, Packets.PROTO_ICMP, Packets.icmp(CLIENT4, VIP4, 8, 0, 1, new byte[8]));
    byte[] otherPort = syn(CLIENT4, 40010, VIP4, 22);
    byte[] otherProto = Packets.ipv4(CLIENT4, VIP4, 47, new byte[20]);
    byte[] echo6 =
        Packets.ipv6(
            CLIENT6,
            VIP6,
            Packets.PROTO_ICMPV6,
            Packets.icmp(CLIENT6, VIP6, 128, 0, 1, new byte[8]));
    for (byte[] ip : List.of(echo, otherPort, otherProto, echo6)) {
      assertThat(run(frame(ip), DirectorVerdict.DIR_DROP_VIP_OTHER).retval()).isEqualTo(XDP_DROP);
    }
  }

  @Test
  void ipv4OptionsAreCarriedInsideUnchanged() {
    byte[] options = {(byte) 0x94, 4, 0, 0}; // router alert
    byte[] inner =
        Packets.ipv4(
            Ipv4Header.of(CLIENT4, VIP4, Packets.PROTO_TCP).withOptions(options),
            Packets.tcp(CLIENT4, VIP4, 40007, 80, Packets.TCP_SYN, 1, 0, new byte[0]));
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(r.packetOut()).isEqualTo(expectedGue(inner, TABLE4, hashOf(CLIENT4, 40007), -1));
  }

  @Test
  void ipv6ExtensionHeadersAreWalkedUpToFour() {
    byte[] tcp = Packets.tcp(CLIENT6, VIP6, 40008, 80, Packets.TCP_SYN, 1, 0, new byte[0]);
    byte[] payload = Packets.ipv6Extension(60, Packets.ipv6Extension(Packets.PROTO_TCP, tcp));
    byte[] inner = Packets.ipv6(CLIENT6, VIP6, 0, payload); // hop-by-hop, destination options, TCP
    TestRunResult r = run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE);
    assertThat(r.packetOut()).isEqualTo(expectedGue(inner, TABLE6, hashOf(CLIENT6, 40008), -1));

    byte[] deep = tcp;
    int next = Packets.PROTO_TCP;
    for (int i = 0; i < 5; i++) {
      deep = Packets.ipv6Extension(next, deep);
      next = 60;
    }
    byte[] tooDeep = Packets.ipv6(CLIENT6, VIP6, 60, deep);
    assertThat(run(frame(tooDeep), DirectorVerdict.DIR_DROP_IPV6_EXT).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void fragmentsToAVipAreDroppedAndOthersPassed() {
    byte[] tcp = Packets.tcp(CLIENT4, VIP4, 40009, 80, Packets.TCP_ACK, 1, 1, new byte[16]);
    byte[] first =
        Packets.ipv4(
            Ipv4Header.of(CLIENT4, VIP4, Packets.PROTO_TCP).withFlagsAndOffset(Packets.IPV4_MF),
            tcp);
    byte[] later =
        Packets.ipv4(Ipv4Header.of(CLIENT4, VIP4, Packets.PROTO_TCP).withFlagsAndOffset(5), tcp);
    assertThat(run(frame(first), DirectorVerdict.DIR_DROP_FRAGMENT).retval()).isEqualTo(XDP_DROP);
    assertThat(run(frame(later), DirectorVerdict.DIR_DROP_FRAGMENT).retval()).isEqualTo(XDP_DROP);

    byte[] elsewhere =
        Packets.ipv4(Ipv4Header.of(CLIENT4, SELF4, Packets.PROTO_TCP).withFlagsAndOffset(5), tcp);
    assertThat(run(frame(elsewhere), DirectorVerdict.DIR_PASS_NOT_SERVICE).retval())
        .isEqualTo(XDP_PASS);

    byte[] fragHeader = {6, 0, 0, 1, 0, 0, 0, 7};
    byte[] v6frag = Packets.ipv6(CLIENT6, VIP6, 44, Bytes.concat(fragHeader, new byte[24]));
    assertThat(run(frame(v6frag), DirectorVerdict.DIR_DROP_FRAGMENT).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void trafficForTheHostIsPassedUntouched() {
    byte[] tcp = syn(CLIENT4, 40010, SELF4, 80);
    byte[] gre = Packets.ipv4(CLIENT4, SELF4, 47, new byte[20]);
    byte[] echo =
        Packets.ipv6(
            CLIENT6,
            SELF6,
            Packets.PROTO_ICMPV6,
            Packets.icmp(CLIENT6, SELF6, 128, 0, 1, new byte[8]));
    for (byte[] ip : List.of(tcp, gre, echo)) {
      TestRunResult r = run(frame(ip), DirectorVerdict.DIR_PASS_NOT_SERVICE);
      assertThat(r.retval()).isEqualTo(XDP_PASS);
      assertThat(r.packetOut()).isEqualTo(frame(ip));
    }
  }

  @Test
  void arpIsPassed() {
    byte[] arp =
        Packets.ethernet(PacketLab.LAB_MAC, Frames.ROUTER_MAC, Packets.ETHERTYPE_ARP, new byte[28]);
    TestRunResult r = run(arp, DirectorVerdict.DIR_PASS_NOT_IP);
    assertThat(r.retval()).isEqualTo(XDP_PASS);
    assertThat(r.packetOut()).isEqualTo(arp);
  }

  @Test
  void truncatedAtEveryHeaderBoundaryIsDroppedAsMalformed() {
    byte[] v4 = frame(ack(CLIENT4, 40011, VIP4, 80, "data"));
    byte[] v6 = frame(ack(CLIENT6, 40011, VIP6, 80, "data"));
    byte[] tagged =
        Packets.ethernet(
            PacketLab.LAB_MAC,
            Frames.ROUTER_MAC,
            7,
            Packets.ETHERTYPE_IPV4,
            ack(CLIENT4, 40011, VIP4, 80, "data"));
    // Ethernet, IPv4/IPv6 header, ports, TCP header, payload boundaries and one byte either side.
    for (int len : new int[] {14, 15, 33, 34, 35, 37, 38, 53, 54, 57}) {
      assertThat(run(Arrays.copyOf(v4, len), DirectorVerdict.DIR_DROP_MALFORMED).retval())
          .isEqualTo(XDP_DROP);
    }
    for (int len : new int[] {14, 15, 53, 54, 55, 58, 73, 74, 77}) {
      assertThat(run(Arrays.copyOf(v6, len), DirectorVerdict.DIR_DROP_MALFORMED).retval())
          .isEqualTo(XDP_DROP);
    }
    for (int len : new int[] {14, 17, 18, 19, 37, 38, 41}) {
      assertThat(run(Arrays.copyOf(tagged, len), DirectorVerdict.DIR_DROP_MALFORMED).retval())
          .isEqualTo(XDP_DROP);
    }
  }

  @Test
  void inconsistentIpv4HeadersAreMalformed() {
    byte[] good = syn(CLIENT4, 40012, VIP4, 80);
    byte[] badIhl = good.clone();
    badIhl[0] = 0x44;
    byte[] badVersion = good.clone();
    badVersion[0] = 0x55;
    byte[] longerThanFrame = good.clone();
    longerThanFrame[3] = (byte) (good.length + 1);
    for (byte[] ip : List.of(badIhl, badVersion, longerThanFrame)) {
      assertThat(run(frame(ip), DirectorVerdict.DIR_DROP_MALFORMED).retval()).isEqualTo(XDP_DROP);
    }
  }

  @Test
  void emptyUdpPayloadIsForwarded() {
    byte[] inner =
        Packets.ipv4(
            CLIENT4,
            VIP4,
            Packets.PROTO_UDP,
            Packets.udp(CLIENT4, VIP4, 7000, 53, new byte[0], true));
    assertThat(run(frame(inner), DirectorVerdict.DIR_ENCAP_IPIP).retval()).isEqualTo(XDP_TX);
  }

  @Test
  void packetThatWouldExceedTheMtuOnceEncapsulatedIsDropped() {
    int payload = PacketLab.MTU - 40; // inner packet exactly MTU-sized
    byte[] full = ack(CLIENT4, 40013, VIP4, 80, "x".repeat(payload));
    assertThat(full.length).isEqualTo(PacketLab.MTU);
    TestRunResult r = run(frame(full), DirectorVerdict.DIR_DROP_TOO_BIG);
    assertThat(r.retval()).isEqualTo(XDP_DROP);
    byte[] fits = ack(CLIENT4, 40013, VIP4, 80, "x".repeat(payload - 44));
    assertThat(run(frame(fits), DirectorVerdict.DIR_ENCAP_GUE).retval()).isEqualTo(XDP_TX);
  }

  @Test
  void tooBigIsJudgedOnTheRouteMtuWhetherTheNextHopIsCachedOrNot() {
    ServiceKey key = ServiceKey.tcp(VIP4, 86);
    director.apply(
        key, ServiceOptions.DEFAULT, Tables.allActive(List.of(PacketLab.SPARE4), ROW_BITS, 1));
    try {
      // One hop: 36 bytes of outer headers, so an inner packet of 1,465 bytes is one too many.
      byte[] tooBig = ack(CLIENT4, 1, VIP4, 86, "x".repeat(PacketLab.MTU - 36 - 40 + 1));
      byte[] fits = ack(CLIENT4, 1, VIP4, 86, "x".repeat(PacketLab.MTU - 36 - 40));
      // Nothing cached yet for this backend: the kernel's FIB answers "fragmentation needed".
      assertThat(run(frame(tooBig), DirectorVerdict.DIR_DROP_TOO_BIG).retval()).isEqualTo(XDP_DROP);
      // A packet that fits is sent and leaves the next hop and its MTU cached...
      assertThat(run(frame(fits), DirectorVerdict.DIR_ENCAP_GUE).packetOut().length)
          .isEqualTo(14 + PacketLab.MTU);
      // ...against which the next packet is judged.
      assertThat(run(frame(tooBig), DirectorVerdict.DIR_DROP_TOO_BIG).retval()).isEqualTo(XDP_DROP);
    } finally {
      director.remove(key);
    }
  }

  @Test
  void missingNeighbourRouteBackendTableAndSourceEachHaveTheirVerdict() {
    assertThat(run(frame(syn(CLIENT4, 1, VIP4, 81)), DirectorVerdict.DIR_DROP_NO_NEIGH).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(frame(syn(CLIENT4, 1, VIP4, 82)), DirectorVerdict.DIR_DROP_NO_ROUTE).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(frame(syn(CLIENT4, 1, VIP4, 83)), DirectorVerdict.DIR_DROP_NO_BACKEND).retval())
        .isEqualTo(XDP_DROP);
    assertThat(run(frame(syn(CLIENT4, 1, VIP4, 84)), DirectorVerdict.DIR_DROP_NO_TABLE).retval())
        .isEqualTo(XDP_DROP);
    director
        .program()
        .configure(
            new DirectorConfig(
                KEY,
                java.util.Optional.of(SELF4),
                java.util.Optional.empty(),
                VeerAbi.GUE_PORT_DEFAULT));
    try {
      run(frame(syn(CLIENT6, 1, VIP6, 80)), DirectorVerdict.DIR_DROP_NO_SOURCE);
    } finally {
      director.program().configure(DirectorConfig.of(KEY, SELF4, SELF6));
    }
  }

  @Test
  void serviceCountersCountPacketsBytesAndDrops() {
    int slot = director.entry(WEB4).orElseThrow().statsSlot();
    var before = director.program().serviceStats(slot);
    byte[] f = frame(syn(CLIENT4, 40014, VIP4, 80));
    run(f, DirectorVerdict.DIR_ENCAP_GUE);
    run(f, DirectorVerdict.DIR_ENCAP_GUE);
    var after = director.program().serviceStats(slot);
    assertThat(after.packets() - before.packets()).isEqualTo(2);
    assertThat(after.bytes() - before.bytes()).isEqualTo(2L * f.length);
    int unresolvedSlot = director.entry(UNRESOLVED).orElseThrow().statsSlot();
    long drops = director.program().serviceStats(unresolvedSlot).drops();
    run(frame(syn(CLIENT4, 1, VIP4, 81)), DirectorVerdict.DIR_DROP_NO_NEIGH);
    assertThat(director.program().serviceStats(unresolvedSlot).drops()).isEqualTo(drops + 1);
  }

  @Test
  void newTableVersionsTakeEffectWholeAndAWrongRowCountChangesNothing() {
    ServiceKey key = ServiceKey.tcp(VIP4, 9000);
    byte[] inner = syn(CLIENT4, 40015, VIP4, 9000);
    long hash = hashOf(CLIENT4, 40015);
    try {
      HopTable first = Tables.allActive(PEERS4.subList(0, 2), ROW_BITS, 2);
      director.apply(key, ServiceOptions.DEFAULT, first);
      assertThat(run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE).packetOut())
          .isEqualTo(expectedGue(inner, first, hash, -1));
      int slot = director.entry(key).orElseThrow().tableSlot();

      HopTable second = Tables.allActive(ImmutableList.of(PEERS4.get(3)), ROW_BITS, 1);
      director.apply(key, ServiceOptions.DEFAULT, second);
      assertThat(director.entry(key).orElseThrow().tableSlot()).isEqualTo(slot);
      assertThat(run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE).packetOut())
          .isEqualTo(expectedGue(inner, second, hash, -1));

      HopTable bigger = Tables.allActive(PEERS4, 16, 2);
      assertThatThrownBy(() -> director.apply(key, ServiceOptions.DEFAULT, bigger))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("2^12");
      assertThat(run(frame(inner), DirectorVerdict.DIR_ENCAP_GUE).packetOut())
          .isEqualTo(expectedGue(inner, second, hash, -1));
    } finally {
      director.remove(key);
    }
    // Its VIP still has other services: the port is now nobody's.
    assertThat(run(frame(inner), DirectorVerdict.DIR_DROP_VIP_OTHER).retval()).isEqualTo(XDP_DROP);
  }

  @Test
  void servicesAreListedWithoutVipMarkers() {
    Map<ServiceKey, ServiceEntry> services = director.program().services();
    assertThat(services).containsKeys(WEB4, WEB6, DNS_IPIP, STICKY);
    assertThat(services.keySet()).allMatch(k -> k.protocol() != 0);
  }

  /**
   * The packet with its IPv4 total length set (the director does not check the header checksum).
   */
  static byte[] withIpv4Length(byte[] ip, int totalLength) {
    byte[] copy = ip.clone();
    copy[2] = (byte) (totalLength >> 8);
    copy[3] = (byte) totalLength;
    return copy;
  }

  static byte[] withIpv6PayloadLength(byte[] ip, int payloadLength) {
    byte[] copy = ip.clone();
    copy[4] = (byte) (payloadLength >> 8);
    copy[5] = (byte) payloadLength;
    return copy;
  }

  /** The packet with the TCP data offset (in words) of its header at {@code l4} set. */
  static byte[] withDataOffset(byte[] ip, int l4, int words) {
    byte[] copy = ip.clone();
    copy[l4 + 12] = (byte) ((words << 4) | (copy[l4 + 12] & 0x0f));
    return copy;
  }

  @Test
  void packetWhoseDeclaredLengthEndsInsideItsTransportHeaderIsMalformed() {
    byte[] syn4 = syn(CLIENT4, 40100, VIP4, 80);
    byte[] udp4 =
        Packets.ipv4(
            CLIENT4,
            VIP4,
            Packets.PROTO_UDP,
            Packets.udp(CLIENT4, VIP4, 5353, 53, "query".getBytes(), true));
    byte[] syn6 = syn(CLIENT6, 40100, VIP6, 80);
    // The frames still hold every byte: only the headers say the packets end earlier.
    for (byte[] ip :
        List.of(
            withIpv4Length(syn4, 20 + 10),
            withIpv4Length(syn4, 20 + 19),
            withIpv4Length(udp4, 20 + 4),
            withIpv6PayloadLength(syn6, 12))) {
      assertThat(run(frame(ip), DirectorVerdict.DIR_DROP_MALFORMED).retval()).isEqualTo(XDP_DROP);
    }
  }

  @Test
  void tcpDataOffsetBelowFiveWordsOrPastThePacketIsMalformed() {
    byte[] syn4 = syn(CLIENT4, 40101, VIP4, 80);
    byte[] syn6 = syn(CLIENT6, 40101, VIP6, 80);
    for (byte[] ip :
        List.of(
            withDataOffset(syn4, 20, 4),
            withDataOffset(syn4, 20, 0),
            withDataOffset(syn4, 20, 6),
            withDataOffset(syn4, 20, 15),
            withDataOffset(syn6, 40, 3),
            withDataOffset(syn6, 40, 9))) {
      assertThat(run(frame(ip), DirectorVerdict.DIR_DROP_MALFORMED).retval()).isEqualTo(XDP_DROP);
    }
    // Options inside the packet are fine.
    byte[] withOptions =
        Packets.ipv4(
            CLIENT4,
            VIP4,
            Packets.PROTO_TCP,
            withDataOffset(
                Arrays.copyOfRange(ack(CLIENT4, 40102, VIP4, 80, "12345678"), 20, 48), 0, 7));
    assertThat(run(frame(withOptions), DirectorVerdict.DIR_ENCAP_GUE).retval()).isEqualTo(XDP_TX);
  }

  @Test
  void packetsFromAddressesNoClientCanHaveAreDropped() {
    for (String source :
        List.of(
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.5",
            "239.1.1.1",
            "240.0.0.1",
            VIP4.getHostAddress())) {
      byte[] ip = syn(InetAddresses.forString(source), 40200, VIP4, 80);
      assertThat(run(frame(ip), DirectorVerdict.DIR_DROP_MARTIAN).retval())
          .as(source)
          .isEqualTo(XDP_DROP);
    }
    for (String source : List.of("::1", "::", "ff02::1", "ff0e::1", VIP6.getHostAddress())) {
      byte[] ip = syn(InetAddresses.forString(source), 40200, VIP6, 80);
      assertThat(run(frame(ip), DirectorVerdict.DIR_DROP_MARTIAN).retval())
          .as(source)
          .isEqualTo(XDP_DROP);
    }
    byte[] mapped =
        new byte[16]; // ::ffff:198.51.100.7, which Java's parsers turn into an IPv4 address
    mapped[10] = (byte) 0xff;
    mapped[11] = (byte) 0xff;
    System.arraycopy(CLIENT4.getAddress(), 0, mapped, 12, 4);
    byte[] fromMapped = syn(ipv6(mapped), 40200, VIP6, 80);
    assertThat(run(frame(fromMapped), DirectorVerdict.DIR_DROP_MARTIAN).retval())
        .isEqualTo(XDP_DROP);
    // Neighbours of those ranges are clients like any other.
    for (String source : List.of("1.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.254")) {
      byte[] ip = syn(InetAddresses.forString(source), 40200, VIP4, 80);
      assertThat(run(frame(ip), DirectorVerdict.DIR_ENCAP_GUE).retval())
          .as(source)
          .isEqualTo(XDP_TX);
    }
    for (String source : List.of("::2", "fe80::1", "fc00::1", "::fffe:c633:6407")) {
      byte[] ip = syn(InetAddresses.forString(source), 40200, VIP6, 80);
      assertThat(run(frame(ip), DirectorVerdict.DIR_ENCAP_GUE).retval())
          .as(source)
          .isEqualTo(XDP_TX);
    }
  }

  @Test
  void onlyTheDeclaredPacketIsEncapsulatedThePaddingStaysAfterTheOuterDatagram() {
    byte[] ack4 = ack(CLIENT4, 40300, VIP4, 80, "");
    byte[] ack6 = ack(CLIENT6, 40300, VIP6, 80, "");
    byte[] zeroPadded = Arrays.copyOf(frame(ack4), 60); // a bare ACK as a NIC delivers it
    byte[] garbage = Arrays.copyOf(frame(ack4), 80);
    Arrays.fill(garbage, 14 + ack4.length, garbage.length, (byte) 0xa5);
    for (byte[] padded : List.of(zeroPadded, garbage)) {
      // The outer headers declare exactly the inner packet; the bytes after it are a trailer.
      byte[] trailer = Arrays.copyOfRange(padded, 14 + ack4.length, padded.length);
      assertThat(run(padded, DirectorVerdict.DIR_ENCAP_GUE).packetOut())
          .isEqualTo(Bytes.concat(expectedGue(ack4, TABLE4, hashOf(CLIENT4, 40300), -1), trailer));
    }
    byte[] padded6 = Arrays.copyOf(frame(ack6), 14 + ack6.length + 7);
    assertThat(run(padded6, DirectorVerdict.DIR_ENCAP_GUE).packetOut())
        .isEqualTo(
            Bytes.concat(expectedGue(ack6, TABLE6, hashOf(CLIENT6, 40300), -1), new byte[7]));
  }

  static Inet6Address ipv6(byte[] address) {
    try {
      return Inet6Address.getByAddress(null, address, -1);
    } catch (java.net.UnknownHostException e) {
      throw new AssertionError("16 bytes are an IPv6 address", e);
    }
  }
}
