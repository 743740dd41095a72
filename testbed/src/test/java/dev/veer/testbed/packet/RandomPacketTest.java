package dev.veer.testbed.packet;

import static dev.veer.testbed.lab.PacketLab.PEERS4;
import static dev.veer.testbed.lab.PacketLab.PEERS6;
import static dev.veer.testbed.lab.PacketLab.SELF4;
import static dev.veer.testbed.lab.PacketLab.SELF6;
import static dev.veer.testbed.lab.PacketLab.VIP4;
import static dev.veer.testbed.lab.PacketLab.VIP6;
import static dev.veer.testbed.packet.Frames.XDP_DROP;
import static dev.veer.testbed.packet.Frames.XDP_PASS;
import static dev.veer.testbed.packet.Frames.XDP_TX;
import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.BpfProgram;
import dev.veer.bpf.TestRunResult;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.bpf.dataplane.ServiceOptions.Encapsulation;
import dev.veer.bpf.dataplane.ServiceOptions.HashFields;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.Tables;
import dev.veer.testbed.lab.PacketLab;
import dev.veer.testbed.wire.Packets;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * 100,000 random and mutated packets through each program. Whatever comes in, the invariants hold:
 * nothing is sent to an address outside the tables (the director) or the allow-list (the proxy); no
 * byte past the packet's declared length changes what a program does (every packet is run a second
 * time with those bytes scrambled); the director encapsulates exactly the declared IP packet; the
 * proxy delivers exactly the declared inner packet, and only to what it serves, and forwards only
 * from its own address; every packet is counted under exactly one verdict.
 */
class RandomPacketTest {
  static final int PACKETS = 100_000;

  /**
   * Index of the count of second runs (bytes past the declared end scrambled) among the XDP
   * actions.
   */
  static final int RERUNS = 5;

  static final long SEED = Long.getLong("veer.random.seed", System.nanoTime());
  static final byte[] KEY = "fedcba9876543210".getBytes();

  static PacketLab lab;
  static DirectorDataplane director;
  static ProxyDataplane proxy;
  static final Set<InetAddress> TABLE_BACKENDS = new HashSet<>();
  static final Set<InetAddress> ALLOWED = new HashSet<>();

  /** The proxy under test's own addresses. */
  static final InetAddress ME4 = PEERS4.get(2);

  static final InetAddress ME6 = PEERS6.get(2);
  static final Set<ServiceKey> SERVED =
      Set.of(
          ServiceKey.tcp(VIP4, 80),
          ServiceKey.tcp(VIP6, 80),
          new ServiceKey(VIP4, 53, ServiceKey.UDP));

  @BeforeAll
  static void setUp() {
    System.out.println(
        "RandomPacketTest seed " + SEED + " (rerun with -Dveer.random.seed=" + SEED + ")");
    lab = PacketLab.create("pkt-rnd");
    director = DirectorDataplane.detached(DirectorConfig.of(KEY, SELF4, SELF6), 8);
    director.apply(
        ServiceKey.tcp(VIP4, 80),
        ServiceOptions.DEFAULT,
        Tables.allActive(PEERS4.subList(0, 3), 8, 3));
    director.apply(
        ServiceKey.tcp(VIP6, 80),
        ServiceOptions.DEFAULT,
        Tables.allActive(PEERS6.subList(0, 3), 8, 2));
    director.apply(
        new ServiceKey(VIP4, 53, ServiceKey.UDP),
        new ServiceOptions(HashFields.SOURCE_IP, Encapsulation.IPIP),
        Tables.allActive(PEERS4.subList(1, 4), 8, 1));
    TABLE_BACKENDS.addAll(PEERS4);
    TABLE_BACKENDS.addAll(PEERS6.subList(0, 3));
    proxy = ProxyDataplane.detached(VeerAbi.GUE_PORT_DEFAULT, List.of(ME4, ME6));
    ALLOWED.addAll(
        List.of(
            SELF4, SELF6, PEERS4.get(0), PEERS4.get(1), PEERS6.get(0), PEERS6.get(1), ME4, ME6));
    proxy.setPeers(ALLOWED);
    proxy.setServed(SERVED);
  }

  @AfterAll
  static void tearDown() {
    for (AutoCloseable c : new AutoCloseable[] {director, proxy, lab}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }
  }

  @Test
  void directorInvariantsHoldForRandomAndMutatedPackets() {
    Random random = new Random(SEED);
    long countedBefore =
        director.program().verdicts().values().stream().mapToLong(Long::longValue).sum();
    int[] retvals =
        lab.call(
            () -> {
              BpfProgram program = director.program().program();
              int[] seen = new int[RERUNS + 1]; // by XDP action, then how many packets ran twice
              for (int i = 0; i < PACKETS; i++) {
                byte[] in = mutate(random, clientPacket(random));
                TestRunResult r = program.testRun(lab.request(in));
                seen[r.retval()]++;
                checkDirectorOutput(in, r);
                seen[RERUNS] += checkPastDeclaredEndUnused(program, random, in, r);
              }
              return seen;
            });
    long counted =
        director.program().verdicts().values().stream().mapToLong(Long::longValue).sum()
            - countedBefore;
    assertThat(counted)
        .as("verdict counters add up to the packets sent")
        .isEqualTo(PACKETS + retvals[RERUNS]);
    assertThat(retvals[0]).as("XDP_ABORTED").isZero();
    assertThat(retvals[XDP_TX]).as("some packets were encapsulated").isPositive();
    assertThat(retvals[RERUNS])
        .as("some packets ran again with their padding scrambled")
        .isPositive();
    assertThat(retvals[XDP_PASS]).as("some packets were passed").isPositive();
    assertThat(retvals[XDP_DROP]).as("some packets were dropped").isPositive();
  }

  @Test
  void proxyInvariantsHoldForRandomAndMutatedPackets() {
    Random random = new Random(SEED + 1);
    long countedBefore = proxy.verdicts().values().stream().mapToLong(Long::longValue).sum();
    int[] retvals =
        lab.call(
            () -> {
              BpfProgram program = proxy.program().program();
              int[] seen = new int[RERUNS + 1]; // by XDP action, then how many packets ran twice
              for (int i = 0; i < PACKETS; i++) {
                byte[] in = mutate(random, guePacket(random));
                TestRunResult r = program.testRun(lab.request(in));
                seen[r.retval()]++;
                checkProxyOutput(in, r);
                seen[RERUNS] += checkPastDeclaredEndUnused(program, random, in, r);
              }
              return seen;
            });
    long counted =
        proxy.verdicts().values().stream().mapToLong(Long::longValue).sum() - countedBefore;
    assertThat(counted)
        .as("verdict counters add up to the packets sent")
        .isEqualTo(PACKETS + retvals[RERUNS]);
    assertThat(retvals[0]).as("XDP_ABORTED").isZero();
    assertThat(retvals[XDP_TX]).as("some packets were forwarded").isPositive();
    assertThat(retvals[RERUNS])
        .as("some packets ran again with their padding scrambled")
        .isPositive();
    assertThat(retvals[XDP_PASS]).as("some packets were delivered or passed").isPositive();
    assertThat(retvals[XDP_DROP]).as("some packets were dropped").isPositive();
  }

  static void checkDirectorOutput(byte[] in, TestRunResult r) {
    byte[] out = r.packetOut();
    switch (r.retval()) {
      case XDP_PASS -> assertThat(out).isEqualTo(in);
      case XDP_DROP -> {}
      case XDP_TX -> {
        int l2 = vlanTagged(in) ? 18 : 14;
        InetAddress dst = outerDestination(out, l2);
        assertThat(TABLE_BACKENDS).as("outer destination").contains(dst);
        assertThat(outerSource(out, l2)).isEqualTo(dst instanceof Inet4Address ? SELF4 : SELF6);
        assertThat(Arrays.copyOfRange(out, 0, 6)).isEqualTo(PacketLab.macOf(dst).bytes());
        int end = l2 + declaredLength(in, l2);
        byte[] inner = Arrays.copyOfRange(in, l2, end);
        int outerEnd = l2 + declaredLength(out, l2);
        assertThat(Arrays.copyOfRange(out, outerEnd - inner.length, outerEnd))
            .as("the outer datagram ends with exactly the declared inner packet")
            .isEqualTo(inner);
        assertThat(Arrays.copyOfRange(out, outerEnd, out.length))
            .as("after the outer datagram only the input's own trailer (padding)")
            .isEqualTo(Arrays.copyOfRange(in, end, in.length));
        assertThat(isMartian(outerSource(in, l2)))
            .as("client address %s", outerSource(in, l2))
            .isFalse();
      }
      default -> throw new AssertionError("unexpected XDP action " + r.retval());
    }
  }

  static void checkProxyOutput(byte[] in, TestRunResult r) {
    byte[] out = r.packetOut();
    int l2 = vlanTagged(in) ? 18 : 14;
    switch (r.retval()) {
      case XDP_PASS -> {
        if (!Arrays.equals(out, in)) {
          // Decapsulated: the same link header, then exactly the datagram's end; only from an
          // allowed sender.
          assertThat(ALLOWED).as("sender of a delivered packet").contains(outerSource(in, l2));
          assertThat(outerDestination(in, l2)).as("destination of delivered GUE").isIn(ME4, ME6);
          assertThat(Arrays.copyOfRange(out, 0, 12)).isEqualTo(Arrays.copyOfRange(in, 0, 12));
          int end = l2 + declaredLength(in, l2);
          byte[] inner = Arrays.copyOfRange(out, l2, l2 + declaredLength(out, l2));
          assertThat(Arrays.copyOfRange(in, end - inner.length, end))
              .as("the inner packet is exactly the end of the outer datagram")
              .isEqualTo(inner);
          assertThat(Arrays.copyOfRange(out, l2 + inner.length, out.length))
              .as("after the inner packet only the input's own trailer")
              .isEqualTo(Arrays.copyOfRange(in, end, in.length));
          assertThat(served(inner))
              .as("delivered inner packet is for a served destination")
              .isTrue();
        }
      }
      case XDP_DROP -> {}
      case XDP_TX -> {
        InetAddress from = outerSource(in, l2);
        assertThat(ALLOWED).as("sender of a forwarded packet").contains(from);
        InetAddress next = outerDestination(out, l2);
        assertThat(ALLOWED).as("forwarded to").contains(next);
        assertThat(next).as("forwarded back to its sender or to itself").isNotIn(from, ME4, ME6);
        assertThat(outerSource(out, l2))
            .as("source of a forwarded packet")
            .isEqualTo(next instanceof Inet4Address ? ME4 : ME6);
        assertThat(out.length)
            .as("forwarded frame ends with its datagram")
            .isEqualTo(l2 + declaredLength(out, l2));
      }
      default -> throw new AssertionError("unexpected XDP action " + r.retval());
    }
  }

  /**
   * Runs the frame again with every byte past its IP packet's declared end scrambled: nothing a
   * program does may depend on them, and no packet it sends or delivers contains them (they may
   * only follow it, as a trailer, where they were).
   */
  static int checkPastDeclaredEndUnused(
      BpfProgram program, Random random, byte[] in, TestRunResult first) {
    int l2 = vlanTagged(in) ? 18 : 14;
    if (!isIp(in, l2)) {
      return 0;
    }
    int header = (in[l2] >> 4 & 0xf) == 4 ? (in[l2] & 0xf) * 4 : 40;
    int end = l2 + declaredLength(in, l2);
    // A length that ends inside the header that declares it would be scrambled itself.
    if (end >= in.length || end < l2 + header) {
      return 0;
    }
    byte[] scrambled = in.clone();
    for (int i = end; i < scrambled.length; i++) {
      scrambled[i] = (byte) random.nextInt(256);
    }
    TestRunResult again = program.testRun(lab.request(scrambled));
    assertThat(again.retval())
        .as(
            "verdict with the bytes past the declared end (%d) scrambled: %s then %s",
            end,
            java.util.HexFormat.of().formatHex(in),
            java.util.HexFormat.of().formatHex(scrambled))
        .isEqualTo(first.retval());
    boolean sent =
        first.retval() == XDP_TX
            || (first.retval() == XDP_PASS && !Arrays.equals(first.packetOut(), in));
    if (sent) {
      int outEnd = l2 + declaredLength(first.packetOut(), l2);
      assertThat(Arrays.copyOf(again.packetOut(), outEnd))
          .as("packet sent or delivered with the bytes past the declared end scrambled")
          .isEqualTo(Arrays.copyOf(first.packetOut(), outEnd));
    }
    return 1;
  }

  static boolean isIp(byte[] frame, int l2) {
    if (frame.length < l2 + 1) {
      return false;
    }
    int etherType = ((frame[l2 - 2] & 0xff) << 8) | (frame[l2 - 1] & 0xff);
    int version = (frame[l2] >> 4) & 0xf;
    return (etherType == Packets.ETHERTYPE_IPV4 && version == 4 && frame.length >= l2 + 20)
        || (etherType == Packets.ETHERTYPE_IPV6 && version == 6 && frame.length >= l2 + 40);
  }

  /** The IP packet's length as its header declares it. */
  static int declaredLength(byte[] frame, int l2) {
    return (frame[l2] >> 4 & 0xf) == 4 ? u16(frame, l2 + 2) : 40 + u16(frame, l2 + 4);
  }

  static int u16(byte[] b, int at) {
    return ((b[at] & 0xff) << 8) | (b[at + 1] & 0xff);
  }

  /**
   * Whether an inner IP packet (no extension headers: the generator makes none) is for what the
   * proxy serves.
   */
  static boolean served(byte[] ip) {
    boolean v4 = (ip[0] >> 4 & 0xf) == 4;
    int proto = v4 ? ip[9] & 0xff : ip[6] & 0xff;
    int l4 = v4 ? (ip[0] & 0xf) * 4 : 40;
    InetAddress dst = v4 ? address(ip, 16, 4) : address(ip, 24, 16);
    if (proto == (v4 ? Packets.PROTO_ICMP : Packets.PROTO_ICMPV6)) {
      return SERVED.stream().anyMatch(s -> s.vip().equals(dst));
    }
    return (proto == ServiceKey.TCP || proto == ServiceKey.UDP)
        && SERVED.contains(new ServiceKey(dst, u16(ip, l4 + 2), proto));
  }

  /** Sources the director must never encapsulate for: no client can have them. */
  static boolean isMartian(InetAddress a) {
    byte[] b = a.getAddress();
    if (b.length == 4) {
      int first = b[0] & 0xff;
      return first == 0 || first == 127 || first >= 224 || a.equals(VIP4);
    }
    boolean mapped =
        Arrays.equals(Arrays.copyOf(b, 12), new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1});
    return (b[0] & 0xff) == 0xff
        || a.isAnyLocalAddress()
        || a.isLoopbackAddress()
        || mapped
        || a.equals(VIP6);
  }

  static boolean vlanTagged(byte[] frame) {
    return frame.length >= 14 && (frame[12] & 0xff) == 0x81 && frame[13] == 0;
  }

  static InetAddress outerDestination(byte[] frame, int l2) {
    return (frame[l2] >> 4) == 4 ? address(frame, l2 + 16, 4) : address(frame, l2 + 24, 16);
  }

  static InetAddress outerSource(byte[] frame, int l2) {
    return (frame[l2] >> 4) == 4 ? address(frame, l2 + 12, 4) : address(frame, l2 + 8, 16);
  }

  static InetAddress address(byte[] frame, int offset, int len) {
    return ofBytes(Arrays.copyOfRange(frame, offset, offset + len));
  }

  static InetAddress ofBytes(byte[] address) {
    try {
      return InetAddress.getByAddress(address);
    } catch (java.net.UnknownHostException e) {
      throw new AssertionError("4 or 16 bytes are always an address", e);
    }
  }

  static InetAddress randomClient(Random random, boolean v6) {
    byte[] a = new byte[v6 ? 16 : 4];
    random.nextBytes(a);
    return ofBytes(a);
  }

  /** A packet towards the director: mostly services, some not, some not IP. */
  static byte[] clientPacket(Random random) {
    boolean v6 = random.nextBoolean();
    InetAddress client = randomClient(random, v6);
    InetAddress vip = random.nextInt(10) == 0 ? (v6 ? SELF6 : SELF4) : (v6 ? VIP6 : VIP4);
    int port = random.nextInt(4) == 0 ? random.nextInt(65536) : (random.nextBoolean() ? 80 : 53);
    byte[] payload = new byte[random.nextInt(4) == 0 ? random.nextInt(1400) : random.nextInt(64)];
    random.nextBytes(payload);
    byte[] l4 =
        switch (random.nextInt(5)) {
          case 0 -> Packets.udp(client, vip, random.nextInt(65536), port, payload, true);
          case 1 ->
              Packets.icmp(
                  client,
                  vip,
                  v6 ? 2 : 3,
                  v6 ? 0 : 4,
                  1400,
                  Frames.ack(vip, port, client, random.nextInt(65536), "q"));
          default ->
              Packets.tcp(
                  client,
                  vip,
                  random.nextInt(65536),
                  port,
                  random.nextInt(256),
                  random.nextInt(),
                  random.nextInt(),
                  payload);
        };
    int proto =
        switch (random.nextInt(5)) {
          case 0 -> v6 ? Packets.PROTO_ICMPV6 : Packets.PROTO_ICMP;
          case 1 -> Packets.PROTO_UDP;
          default -> Packets.PROTO_TCP;
        };
    return wrap(random, Packets.ip(client, vip, proto, l4));
  }

  /** A packet towards the proxy: GUE from allowed and unknown senders, plus host traffic. */
  static byte[] guePacket(Random random) {
    boolean v6 = random.nextBoolean();
    List<InetAddress> candidates =
        new ArrayList<>(v6 ? List.<InetAddress>copyOf(PEERS6) : List.copyOf(PEERS4));
    candidates.add(v6 ? SELF6 : SELF4);
    InetAddress from = candidates.get(random.nextInt(candidates.size()));
    InetAddress to =
        random.nextInt(4) == 0 ? candidates.get(random.nextInt(candidates.size())) : v6 ? ME6 : ME4;
    List<InetAddress> hops = new ArrayList<>();
    int hopCount = random.nextInt(4);
    for (int i = 0; i < hopCount; i++) {
      hops.add(candidates.get(random.nextInt(candidates.size())));
    }
    boolean innerV6 = random.nextBoolean();
    InetAddress client = randomClient(random, innerV6);
    InetAddress vip = innerV6 ? VIP6 : VIP4;
    int flags = random.nextInt(3) == 0 ? Packets.TCP_SYN : random.nextInt(256);
    byte[] inner =
        random.nextInt(6) == 0
            ? Packets.ip(
                client, vip, Packets.PROTO_UDP, Packets.udp(client, vip, 1, 53, new byte[8], true))
            : Packets.ip(
                client,
                vip,
                Packets.PROTO_TCP,
                Packets.tcp(
                    client,
                    vip,
                    random.nextInt(65536),
                    80,
                    flags,
                    1,
                    2,
                    new byte[random.nextInt(32)]));
    byte[] gue =
        Packets.gue(Packets.gueProtocol(inner), random.nextInt(hopCount + 1), hops, v6, inner);
    int dport = random.nextInt(8) == 0 ? random.nextInt(65536) : VeerAbi.GUE_PORT_DEFAULT;
    byte[] udp = Packets.udp(from, to, 0xc000 + random.nextInt(0x4000), dport, gue, false);
    return wrap(random, Packets.ip(from, to, Packets.PROTO_UDP, udp));
  }

  static byte[] wrap(Random random, byte[] ip) {
    int etherType = (ip[0] >> 4) == 4 ? Packets.ETHERTYPE_IPV4 : Packets.ETHERTYPE_IPV6;
    if (random.nextInt(20) == 0) {
      etherType = Packets.ETHERTYPE_ARP;
    }
    int vlan = random.nextInt(10) == 0 ? random.nextInt(4096) : -1;
    return Packets.ethernet(PacketLab.LAB_MAC, Frames.ROUTER_MAC, vlan, etherType, ip);
  }

  /**
   * Leaves a quarter of packets intact; flips bytes, truncates, scrambles, pads (as a NIC pads a
   * short frame, or with garbage) or shortens the IP header's declared length of the rest.
   */
  static byte[] mutate(Random random, byte[] frame) {
    switch (random.nextInt(8)) {
      case 0, 1 -> {
        return frame;
      }
      case 2 -> {
        byte[] f = frame.clone();
        for (int i = 0, n = 1 + random.nextInt(3); i < n; i++) {
          f[random.nextInt(Math.min(f.length, 120))] ^= (byte) (1 + random.nextInt(255));
        }
        return f;
      }
      case 3 -> {
        return Arrays.copyOf(frame, 14 + random.nextInt(frame.length - 14));
      }
      case 4 -> {
        byte[] f = frame.clone();
        int at = 14 + random.nextInt(Math.min(f.length - 14, 100));
        f[at] = (byte) random.nextInt(256);
        f[Math.min(f.length - 1, at + 1)] = (byte) random.nextInt(256);
        return f;
      }
      case 5 -> {
        byte[] f = Arrays.copyOf(frame, frame.length + 1 + random.nextInt(46));
        if (random.nextBoolean()) {
          for (int i = frame.length; i < f.length; i++) {
            f[i] = (byte) random.nextInt(256);
          }
        }
        return f;
      }
      case 6 -> {
        int l2 = vlanTagged(frame) ? 18 : 14;
        byte[] f = frame.clone();
        if (isIp(f, l2)) {
          int at = (f[l2] >> 4 & 0xf) == 4 ? l2 + 2 : l2 + 4;
          int shorter = Math.max(0, u16(f, at) - 1 - random.nextInt(40));
          f[at] = (byte) (shorter >> 8);
          f[at + 1] = (byte) shorter;
        }
        return f;
      }
      default -> {
        byte[] f = new byte[14 + random.nextInt(200)];
        random.nextBytes(f);
        System.arraycopy(frame, 0, f, 0, 12);
        if (random.nextBoolean()) {
          System.arraycopy(frame, 12, f, 12, 2);
        }
        return f;
      }
    }
  }
}
