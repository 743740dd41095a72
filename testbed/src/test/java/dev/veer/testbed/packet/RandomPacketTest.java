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
import dev.veer.bpf.packet.Packets;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.Tables;
import dev.veer.testbed.lab.PacketLab;
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
 * 100,000 random and mutated packets through each program. Whatever comes in,
 * the invariants hold: nothing is sent to an address outside the tables (the
 * director) or the allow-list (the proxy), passed packets are untouched or
 * exactly decapsulated, and every packet is counted under exactly one verdict.
 */
class RandomPacketTest {
  static final int PACKETS = 100_000;
  static final long SEED = Long.getLong("veer.random.seed", System.nanoTime());
  static final byte[] KEY = "fedcba9876543210".getBytes();

  static PacketLab lab;
  static DirectorDataplane director;
  static ProxyDataplane proxy;
  static final Set<InetAddress> TABLE_BACKENDS = new HashSet<>();
  static final Set<InetAddress> ALLOWED = new HashSet<>();

  @BeforeAll
  static void setUp() {
    System.out.println("RandomPacketTest seed " + SEED + " (rerun with -Dveer.random.seed=" + SEED + ")");
    lab = PacketLab.create("pkt-rnd");
    director = DirectorDataplane.detached(DirectorConfig.of(KEY, SELF4, SELF6), 8);
    director.apply(ServiceKey.tcp(VIP4, 80), ServiceOptions.DEFAULT, Tables.allActive(PEERS4.subList(0, 3), 8, 3));
    director.apply(ServiceKey.tcp(VIP6, 80), ServiceOptions.DEFAULT, Tables.allActive(PEERS6.subList(0, 3), 8, 2));
    director.apply(new ServiceKey(VIP4, 53, ServiceKey.UDP),
        new ServiceOptions(HashFields.SOURCE_IP, Encapsulation.IPIP), Tables.allActive(PEERS4.subList(1, 4), 8, 1));
    TABLE_BACKENDS.addAll(PEERS4);
    TABLE_BACKENDS.addAll(PEERS6.subList(0, 3));
    proxy = ProxyDataplane.detached(VeerAbi.GUE_PORT_DEFAULT);
    ALLOWED.addAll(List.of(SELF4, SELF6, PEERS4.get(0), PEERS4.get(1), PEERS6.get(0), PEERS6.get(1)));
    proxy.setPeers(ALLOWED);
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
    long countedBefore = director.program().verdicts().values().stream().mapToLong(Long::longValue).sum();
    int[] retvals = lab.call(() -> {
      BpfProgram program = director.program().program();
      int[] seen = new int[5];
      for (int i = 0; i < PACKETS; i++) {
        byte[] in = mutate(random, clientPacket(random));
        TestRunResult r = program.testRun(lab.request(in));
        seen[r.retval()]++;
        checkDirectorOutput(in, r);
      }
      return seen;
    });
    long counted = director.program().verdicts().values().stream().mapToLong(Long::longValue).sum() - countedBefore;
    assertThat(counted).as("verdict counters add up to the packets sent").isEqualTo(PACKETS);
    assertThat(retvals[0]).as("XDP_ABORTED").isZero();
    assertThat(retvals[XDP_TX]).as("some packets were encapsulated").isPositive();
    assertThat(retvals[XDP_PASS]).as("some packets were passed").isPositive();
    assertThat(retvals[XDP_DROP]).as("some packets were dropped").isPositive();
  }

  @Test
  void proxyInvariantsHoldForRandomAndMutatedPackets() {
    Random random = new Random(SEED + 1);
    long countedBefore = proxy.verdicts().values().stream().mapToLong(Long::longValue).sum();
    int[] retvals = lab.call(() -> {
      BpfProgram program = proxy.program().program();
      int[] seen = new int[5];
      for (int i = 0; i < PACKETS; i++) {
        byte[] in = mutate(random, guePacket(random));
        TestRunResult r = program.testRun(lab.request(in));
        seen[r.retval()]++;
        checkProxyOutput(in, r);
      }
      return seen;
    });
    long counted = proxy.verdicts().values().stream().mapToLong(Long::longValue).sum() - countedBefore;
    assertThat(counted).as("verdict counters add up to the packets sent").isEqualTo(PACKETS);
    assertThat(retvals[0]).as("XDP_ABORTED").isZero();
    assertThat(retvals[XDP_TX]).as("some packets were forwarded").isPositive();
    assertThat(retvals[XDP_PASS]).as("some packets were delivered or passed").isPositive();
    assertThat(retvals[XDP_DROP]).as("some packets were dropped").isPositive();
  }

  static void checkDirectorOutput(byte[] in, TestRunResult r) {
    byte[] out = r.packetOut();
    switch (r.retval()) {
      case XDP_PASS -> assertThat(out).isEqualTo(in);
      case XDP_DROP -> { }
      case XDP_TX -> {
        int l2 = vlanTagged(in) ? 18 : 14;
        InetAddress dst = outerDestination(out, l2);
        assertThat(TABLE_BACKENDS).as("outer destination").contains(dst);
        assertThat(outerSource(out, l2)).isEqualTo(dst instanceof Inet4Address ? SELF4 : SELF6);
        assertThat(Arrays.copyOfRange(out, 0, 6)).isEqualTo(PacketLab.macOf(dst).bytes());
        byte[] inner = Arrays.copyOfRange(in, l2, in.length);
        assertThat(Arrays.copyOfRange(out, out.length - inner.length, out.length)).as("inner packet").isEqualTo(inner);
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
          // Decapsulated: the same link header, then a suffix of the input; only from an allowed sender.
          assertThat(ALLOWED).as("sender of a delivered packet").contains(outerSource(in, l2));
          assertThat(Arrays.copyOfRange(out, 0, 12)).isEqualTo(Arrays.copyOfRange(in, 0, 12));
          byte[] tail = Arrays.copyOfRange(out, l2, out.length);
          assertThat(Arrays.copyOfRange(in, in.length - tail.length, in.length)).isEqualTo(tail);
        }
      }
      case XDP_DROP -> { }
      case XDP_TX -> {
        assertThat(ALLOWED).as("sender of a forwarded packet").contains(outerSource(in, l2));
        InetAddress next = outerDestination(out, l2);
        assertThat(ALLOWED).as("forwarded to").contains(next);
        assertThat(outerSource(out, l2)).isEqualTo(outerDestination(in, l2));
      }
      default -> throw new AssertionError("unexpected XDP action " + r.retval());
    }
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
    byte[] l4 = switch (random.nextInt(5)) {
      case 0 -> Packets.udp(client, vip, random.nextInt(65536), port, payload, true);
      case 1 -> Packets.icmp(client, vip, v6 ? 2 : 3, v6 ? 0 : 4, 1400,
          Frames.ack(vip, port, client, random.nextInt(65536), "q"));
      default -> Packets.tcp(client, vip, random.nextInt(65536), port, random.nextInt(256), random.nextInt(),
          random.nextInt(), payload);
    };
    int proto = switch (random.nextInt(5)) {
      case 0 -> v6 ? Packets.PROTO_ICMPV6 : Packets.PROTO_ICMP;
      case 1 -> Packets.PROTO_UDP;
      default -> Packets.PROTO_TCP;
    };
    return wrap(random, Packets.ip(client, vip, proto, l4));
  }

  /** A packet towards the proxy: GUE from allowed and unknown senders, plus host traffic. */
  static byte[] guePacket(Random random) {
    boolean v6 = random.nextBoolean();
    List<InetAddress> candidates = new ArrayList<>(v6 ? List.<InetAddress>copyOf(PEERS6) : List.copyOf(PEERS4));
    candidates.add(v6 ? SELF6 : SELF4);
    InetAddress from = candidates.get(random.nextInt(candidates.size()));
    InetAddress to = candidates.get(random.nextInt(candidates.size()));
    List<InetAddress> hops = new ArrayList<>();
    int hopCount = random.nextInt(4);
    for (int i = 0; i < hopCount; i++) {
      hops.add(candidates.get(random.nextInt(candidates.size())));
    }
    boolean innerV6 = random.nextBoolean();
    InetAddress client = randomClient(random, innerV6);
    InetAddress vip = innerV6 ? VIP6 : VIP4;
    int flags = random.nextInt(3) == 0 ? Packets.TCP_SYN : random.nextInt(256);
    byte[] inner = random.nextInt(6) == 0
        ? Packets.ip(client, vip, Packets.PROTO_UDP, Packets.udp(client, vip, 1, 53, new byte[8], true))
        : Packets.ip(client, vip, Packets.PROTO_TCP,
            Packets.tcp(client, vip, random.nextInt(65536), 80, flags, 1, 2, new byte[random.nextInt(32)]));
    byte[] gue = Packets.gue(Packets.gueProtocol(inner), random.nextInt(hopCount + 1), hops, v6, inner);
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

  /** Leaves a third of packets intact; flips bytes, truncates or scrambles the rest. */
  static byte[] mutate(Random random, byte[] frame) {
    switch (random.nextInt(6)) {
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
