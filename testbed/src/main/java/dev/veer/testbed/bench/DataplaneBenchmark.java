package dev.veer.testbed.bench;

import dev.veer.bpf.BpfObject;
import dev.veer.bpf.BpfProgram;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.TestRunRequest;
import dev.veer.bpf.TestRunResult;
import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ColocatedVerdict;
import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.abi.VeerAbi.RxHashSource;
import dev.veer.bpf.dataplane.DataplaneObject;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.Tables;
import dev.veer.testbed.lab.PacketLab;
import dev.veer.testbed.net.RssNic;
import dev.veer.testbed.wire.FrameSender;
import dev.veer.testbed.wire.Ipv4Header;
import dev.veer.testbed.wire.Packets;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.function.LongSupplier;

/**
 * Data-plane benchmark, by the method of docs/benchmarks.md: BPF_PROG_TEST_RUN with one packet per
 * call (repeat = 1), the kernel's own duration averaged over many calls, every program against the
 * floor program (swap MACs, XDP_TX) measured in the same run, interleaved in rounds so that machine
 * noise hits all of them alike. Each case proves by its verdict counter that every call took the
 * path it claims to measure.
 *
 * <pre>./veer bench dataplane [--calls N] [--rounds R] [--out FILE]</pre>
 */
public final class DataplaneBenchmark {
  private static final byte[] KEY = "veer-bench-key!!".getBytes();
  private static final Inet4Address VIP = PacketLab.VIP4;
  private static final Inet4Address CLIENT = PacketLab.CLIENT4;
  private static final Inet4Address DIRECTOR = PacketLab.SELF4;
  private static final Inet4Address ME = PacketLab.PEERS4.get(2);

  /** One measured case: a program, a frame, and the counter that proves its path. */
  private record Case(
      String name,
      PacketLab lab,
      BpfProgram program,
      byte[] frame,
      int expectedRetval,
      LongSupplier pathCounter,
      double target) {}

  private record Figure(Case c, double meanNs, double ratio, double roundMin, double roundMax) {}

  public static void main(String[] args) throws Exception {
    long calls = 1_000_000;
    int rounds = 10;
    Path out = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--calls" -> calls = Long.parseLong(args[++i]);
        case "--rounds" -> rounds = Integer.parseInt(args[++i]);
        case "--out" -> out = Path.of(args[++i]);
        default -> {
          System.err.println("usage: ./veer bench dataplane [--calls N] [--rounds R] [--out FILE]");
          System.exit(2);
        }
      }
    }
    BpfSystem.requireRoot();
    String report =
        run(calls, rounds) + "\n" + onTheWire(rounds, (int) Math.min(calls / rounds, 200_000));
    System.out.print(report);
    if (out != null) {
      Files.writeString(out, report);
    }
  }

  static String run(long calls, int rounds) throws IOException {
    Path cgroup =
        BpfSystem.cgroupV2Root()
            .orElseThrow(() -> new IllegalStateException("no cgroup v2 mounted"));
    // Two proxy hosts: one whose flow table is older than every socket (complete: it answers
    // "not ours" by itself), and one that started after a connection (misses ask the kernel).
    try (PacketLab lab = PacketLab.create("bench");
        BpfObject floor = BpfObject.load("/bpf/floor.o", LoadOptions.DEFAULT);
        DirectorDataplane director =
            DirectorDataplane.detached(DirectorConfig.of(KEY, DIRECTOR, PacketLab.SELF6), 16);
        ProxyDataplane proxy = servingProxy(cgroup, lab);
        ServerSocketChannel listener =
            lab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(80)));
        SocketChannel tracked =
            lab.call(() -> SocketChannel.open().bind(new InetSocketAddress(DIRECTOR, 0)));
        SocketChannel trackedAccepted = accept(tracked, listener);
        PacketLab oldLab = PacketLab.create("bench-old");
        ServerSocketChannel oldListener =
            oldLab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(80)));
        SocketChannel older =
            oldLab.call(() -> SocketChannel.open().bind(new InetSocketAddress(DIRECTOR, 0)));
        SocketChannel olderAccepted = accept(older, oldListener);
        ProxyDataplane oldProxy = servingProxy(cgroup, oldLab);
        // A co-located host (ME): both halves of the co-located program on one set of maps.
        PacketLab colLab = PacketLab.create("bench-col");
        DirectorDataplane colDirector =
            DirectorDataplane.detached(
                DirectorConfig.of(KEY, DIRECTOR, PacketLab.SELF6),
                16,
                colLab.namespace().pinDirectory(),
                DataplaneObject.CO_LOCATED);
        ProxyDataplane colProxy =
            ProxyDataplane.sharing(
                colLab.handle(),
                colLab.namespace().pinDirectory(),
                VeerAbi.GUE_PORT_DEFAULT,
                List.of(ME),
                Optional.empty());
        ServerSocketChannel colListener =
            colLab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(80)));
        SocketChannel colClient =
            colLab.call(() -> SocketChannel.open().bind(new InetSocketAddress(DIRECTOR, 0)));
        SocketChannel colAccepted = acceptServed(colProxy, colClient, colListener)) {
      director.apply(
          ServiceKey.tcp(VIP, 80),
          ServiceOptions.DEFAULT,
          Tables.allActive(PacketLab.PEERS4, 16, 2));
      for (ProxyDataplane p : List.of(proxy, oldProxy)) {
        p.setPeers(
            new java.util.HashSet<>(
                List.<InetAddress>of(
                    DIRECTOR, ME, PacketLab.PEERS4.get(0), PacketLab.PEERS4.get(1))));
      }
      HopTable colTable =
          Tables.allActive(List.of(ME, PacketLab.PEERS4.get(0), PacketLab.PEERS4.get(1)), 16, 2);
      colDirector.apply(ServiceKey.tcp(VIP, 80), ServiceOptions.DEFAULT, colTable);
      FlowHash colHash = new FlowHash(KEY);
      int ownedPort = clientPort(colHash, colTable, hops -> hops.get(0).equals(ME));
      int othersPort = clientPort(colHash, colTable, hops -> !hops.contains(ME));
      if (!proxy.flowTableComplete() || oldProxy.flowTableComplete()) {
        throw new IllegalStateException(
            "the proxies' flow tables are not in the states the cases need");
      }

      byte[] syn = frame(tcp(CLIENT, 40000, Packets.TCP_SYN));
      byte[] ack = frame(tcp(CLIENT, 40000, Packets.TCP_ACK));
      byte[] unpaddedAck = unpaddedFrame(tcp(CLIENT, 40000, Packets.TCP_ACK));
      byte[] gueSyn = gue(tcp(CLIENT, 40000, Packets.TCP_SYN));
      byte[] gueTracked = gue(tcp(DIRECTOR, localPort(tracked), Packets.TCP_ACK));
      byte[] gueOlder = gue(tcp(DIRECTOR, localPort(older), Packets.TCP_ACK));
      byte[] gueUnknown = gue(tcp(CLIENT, 40001, Packets.TCP_ACK));

      List<Case> cases =
          List.of(
              new Case(
                  "floor: swap MACs, XDP_TX",
                  lab,
                  floor.program("veer_floor"),
                  syn,
                  3,
                  () -> -1,
                  0),
              new Case(
                  "director, SYN (GUE encapsulation)",
                  lab,
                  director.program().program(),
                  syn,
                  3,
                  () -> director.program().verdicts().get(DirectorVerdict.DIR_ENCAP_GUE),
                  1.8),
              new Case(
                  "director, mid-flow ACK",
                  lab,
                  director.program().program(),
                  ack,
                  3,
                  () -> director.program().verdicts().get(DirectorVerdict.DIR_ENCAP_GUE),
                  1.8),
              new Case(
                  "director, mid-flow ACK, 54-byte frame (no padding to cut)",
                  lab,
                  director.program().program(),
                  unpaddedAck,
                  3,
                  () -> director.program().verdicts().get(DirectorVerdict.DIR_ENCAP_GUE),
                  Double.NaN),
              new Case(
                  "proxy deliver, SYN",
                  lab,
                  proxy.program().program(),
                  gueSyn,
                  2,
                  () -> proxy.verdicts().get(ProxyVerdict.PRX_DELIVER_SYN),
                  1.5),
              new Case(
                  "proxy deliver, established (flow table)",
                  lab,
                  proxy.program().program(),
                  gueTracked,
                  2,
                  () -> proxy.verdicts().get(ProxyVerdict.PRX_DELIVER_FLOW),
                  2.0),
              new Case(
                  "proxy second-chance forward (complete flow table)",
                  lab,
                  proxy.program().program(),
                  gueUnknown,
                  3,
                  () -> proxy.verdicts().get(ProxyVerdict.PRX_FORWARD),
                  2.2),
              new Case(
                  "proxy deliver, established before the table (socket lookup)",
                  oldLab,
                  oldProxy.program().program(),
                  gueOlder,
                  2,
                  () -> oldProxy.verdicts().get(ProxyVerdict.PRX_DELIVER_SOCKET),
                  Double.NaN),
              new Case(
                  "proxy second-chance forward (table not complete: socket lookup)",
                  oldLab,
                  oldProxy.program().program(),
                  gueUnknown,
                  3,
                  () -> oldProxy.verdicts().get(ProxyVerdict.PRX_FORWARD),
                  Double.NaN),
              new Case(
                  "co-located, SYN of a row it leads: delivered as it came",
                  colLab,
                  colDirector.program().program(),
                  frame(tcp(CLIENT, ownedPort, Packets.TCP_SYN)),
                  2,
                  () ->
                      colDirector
                          .program()
                          .colocatedVerdicts()
                          .get(ColocatedVerdict.COL_DELIVER_PRIMARY),
                  Double.NaN),
              new Case(
                  "co-located, established here (flow table): delivered as it came",
                  colLab,
                  colDirector.program().program(),
                  frame(tcp(DIRECTOR, localPort(colClient), Packets.TCP_ACK)),
                  2,
                  () ->
                      colDirector
                          .program()
                          .colocatedVerdicts()
                          .get(ColocatedVerdict.COL_DELIVER_FLOW),
                  Double.NaN),
              new Case(
                  "co-located, another host's flow: GUE to the row's hops",
                  colLab,
                  colDirector.program().program(),
                  frame(tcp(CLIENT, othersPort, Packets.TCP_ACK)),
                  3,
                  () -> colDirector.program().verdicts().get(DirectorVerdict.DIR_ENCAP_GUE),
                  Double.NaN));

      long perRound = Math.max(1, calls / rounds);
      double[][] roundMeans = new double[cases.size()][rounds];
      for (int round = 0; round < rounds; round++) {
        for (int c = 0; c < cases.size(); c++) {
          Case k = cases.get(c);
          long before = k.pathCounter().getAsLong();
          roundMeans[c][round] = k.lab().call(() -> measure(k.lab(), k, perRound));
          long taken = k.pathCounter().getAsLong() - before;
          if (before >= 0 && taken != perRound) {
            throw new IllegalStateException(
                k.name() + ": " + taken + " of " + perRound + " calls took the measured path");
          }
        }
      }
      List<Figure> figures = new ArrayList<>();
      double floorMean = Arrays.stream(roundMeans[0]).average().orElseThrow();
      for (int c = 0; c < cases.size(); c++) {
        double mean = Arrays.stream(roundMeans[c]).average().orElseThrow();
        double[] ratios = new double[rounds];
        for (int r = 0; r < rounds; r++) {
          ratios[r] = roundMeans[c][r] / roundMeans[0][r];
        }
        figures.add(
            new Figure(
                cases.get(c),
                mean,
                mean / floorMean,
                Arrays.stream(ratios).min().orElseThrow(),
                Arrays.stream(ratios).max().orElseThrow()));
      }
      return format(figures, perRound * rounds, rounds, syn.length);
    }
  }

  /**
   * The director in RX-hash mode against the keyed director and the floor, on the kernel's real
   * receive path, since BPF_PROG_TEST_RUN refuses device-bound programs: each program attached to
   * lab0 of a lab of its own (a veth, native XDP), the same frames sent out of lab1 through the
   * bed's stand-in NIC (which gives each its Toeplitz hash, as a NIC's RSS does), each run timed by
   * the kernel's run-time statistics. Rounds interleave the three; every frame must have taken the
   * measured path.
   */
  static String onTheWire(int rounds, int framesPerRound) throws Exception {
    List<byte[]> frames = new ArrayList<>();
    for (int i = 0; i < 64; i++) {
      frames.add(frame(tcp(CLIENT, 40000 + i, Packets.TCP_ACK)));
    }
    int repeats = Math.max(1, framesPerRound / frames.size());
    long perRound = (long) repeats * frames.size();
    try (PacketLab floorLab = wireLab("wire-floor");
        PacketLab keyedLab = wireLab("wire-keyed");
        PacketLab rxLab = wireLab("wire-rx");
        BpfObject floor = BpfObject.load("/bpf/floor.o", LoadOptions.DEFAULT);
        XdpAttachment floorAttached =
            XdpAttachment.attach(
                floor.program("veer_floor"), floorLab.handle(), PacketLab.IFNAME, XdpMode.NATIVE);
        DirectorDataplane keyed =
            DirectorDataplane.attach(
                keyedLab.handle(),
                PacketLab.IFNAME,
                XdpMode.NATIVE,
                DirectorConfig.of(KEY, DIRECTOR, PacketLab.SELF6),
                16);
        DirectorDataplane rx =
            DirectorDataplane.attachPinned(
                rxLab.handle(),
                PacketLab.IFNAME,
                XdpMode.NATIVE,
                DirectorConfig.of(KEY, DIRECTOR, PacketLab.SELF6),
                16,
                rxLab.namespace().pinDirectory(),
                DataplaneObject.DIRECTOR_RX_HASH);
        BpfSystem.RunTimeStatistics stats = BpfSystem.runTimeStatistics()) {
      for (DirectorDataplane d : List.of(keyed, rx)) {
        d.apply(
            ServiceKey.tcp(VIP, 80),
            ServiceOptions.DEFAULT,
            Tables.allActive(PacketLab.PEERS4, 16, 2));
      }
      rx.program().setToeplitzKey(RssNic.KEY);
      List<String> names =
          List.of(
              "floor: swap MACs, XDP_TX",
              "director, mid-flow ACK, keyed hash (SipHash-1-3)",
              "director, mid-flow ACK, the NIC's RX hash");
      List<PacketLab> labs = List.of(floorLab, keyedLab, rxLab);
      List<BpfProgram> programs =
          List.of(floor.program("veer_floor"), keyed.program().program(), rx.program().program());
      List<LongSupplier> paths =
          List.of(
              () -> -1,
              () -> keyed.program().verdicts().get(DirectorVerdict.DIR_ENCAP_GUE),
              () -> rx.program().rxHashSources().get(RxHashSource.RXH_NIC));
      double[][] means = new double[3][rounds];
      for (int round = 0; round < rounds; round++) {
        for (int p = 0; p < 3; p++) {
          long pathBefore = paths.get(p).getAsLong();
          BpfProgram.RunStats before = programs.get(p).runStats();
          FrameSender.send(labs.get(p).handle(), "lab1", frames, repeats);
          BpfProgram.RunStats after = programs.get(p).runStats();
          long runs = after.runs() - before.runs();
          long taken = paths.get(p).getAsLong() - pathBefore;
          // The interface's own traffic (neighbour discovery, ...) runs the program too: a few.
          if (runs < perRound
              || runs > perRound + perRound / 100
              || (pathBefore >= 0 && taken != perRound)) {
            throw new IllegalStateException(
                names.get(p)
                    + ": "
                    + runs
                    + " runs and "
                    + taken
                    + " on the measured path for "
                    + perRound
                    + " frames sent");
          }
          means[p][round] = after.meanNanosSince(before);
        }
      }
      StringBuilder sb = new StringBuilder();
      sb.append(
          String.format(
              Locale.ROOT,
              "On the wire (veth, native XDP, the kernel's run-time statistics): %,d frames per"
                  + " program in %d interleaved rounds; 64-byte IPv4 TCP frames%n%n",
              perRound * rounds,
              rounds));
      sb.append("| case | ns/packet | x floor | per-round x floor (min-max) | x keyed |\n");
      sb.append("|---|---|---|---|---|\n");
      double floorMean = Arrays.stream(means[0]).average().orElseThrow();
      double keyedMean = Arrays.stream(means[1]).average().orElseThrow();
      for (int p = 0; p < 3; p++) {
        double mean = Arrays.stream(means[p]).average().orElseThrow();
        double[] ratios = new double[rounds];
        for (int r = 0; r < rounds; r++) {
          ratios[r] = means[p][r] / means[0][r];
        }
        sb.append(
            String.format(
                Locale.ROOT,
                "| %s | %.1f | %.2f | %s | %s |%n",
                names.get(p),
                mean,
                mean / floorMean,
                p == 0
                    ? "-"
                    : String.format(
                        Locale.ROOT,
                        "%.2f-%.2f",
                        Arrays.stream(ratios).min().orElseThrow(),
                        Arrays.stream(ratios).max().orElseThrow()),
                p == 0 ? "-" : String.format(Locale.ROOT, "%.2f", mean / keyedMean)));
      }
      return sb.toString();
    }
  }

  /** A lab whose lab1 sends as a NIC that hashes for RSS would deliver. */
  private static PacketLab wireLab(String role) {
    PacketLab lab = PacketLab.create(role);
    try {
      RssNic.hashOnEgress(lab.namespace(), "lab1");
      return lab;
    } catch (RuntimeException e) {
      lab.close();
      throw e;
    }
  }

  /** Mean kernel duration per call over {@code calls} single-packet runs. */
  private static double measure(PacketLab lab, Case k, long calls) {
    TestRunRequest request = lab.request(k.frame());
    long total = 0;
    for (long i = 0; i < calls; i++) {
      TestRunResult r = k.program().testRun(request);
      if (r.retval() != k.expectedRetval()) {
        throw new IllegalStateException(
            k.name() + ": expected XDP action " + k.expectedRetval() + ", got " + r.retval());
      }
      total += r.durationNs();
    }
    return (double) total / calls;
  }

  private static String format(List<Figure> figures, long calls, int rounds, int frameLength) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "Veer data-plane benchmark: BPF_PROG_TEST_RUN, 1 packet per call, %,d calls per case in %d interleaved"
                + " rounds; %d-byte IPv4 TCP frames%n%n",
            calls,
            rounds,
            frameLength));
    sb.append("| case | ns/packet | x floor | per-round x floor (min-max) | target | met |\n");
    sb.append("|---|---|---|---|---|---|\n");
    for (Figure f : figures) {
      boolean isFloor = f == figures.get(0);
      boolean hasTarget = !isFloor && !Double.isNaN(f.c().target());
      sb.append(
          String.format(
              Locale.ROOT,
              "| %s | %.1f | %.2f | %s | %s | %s |%n",
              f.c().name(),
              f.meanNs(),
              f.ratio(),
              isFloor ? "-" : String.format(Locale.ROOT, "%.2f-%.2f", f.roundMin(), f.roundMax()),
              hasTarget ? String.format(Locale.ROOT, "<= %.1f", f.c().target()) : "-",
              hasTarget ? f.ratio() <= f.c().target() ? "yes" : "NO" : "-"));
    }
    return sb.toString();
  }

  /**
   * A proxy program serving the VIP's port 80, with its flow table for the lab's namespace: served
   * before any connection is made, since the table keeps only connections to served endpoints.
   */
  private static ProxyDataplane servingProxy(Path cgroup, PacketLab lab) {
    ProxyDataplane proxy =
        ProxyDataplane.detached(
            VeerAbi.GUE_PORT_DEFAULT,
            List.of(ME),
            Optional.of(new ProxyDataplane.FlowTracking(cgroup, lab.handle())));
    try {
      proxy.setServed(java.util.Set.of(ServiceKey.tcp(VIP, 80)));
      return proxy;
    } catch (RuntimeException e) {
      proxy.close();
      throw e;
    }
  }

  /**
   * Serves the VIP's port 80 on a co-located host before connecting {@code client} to it (the flow
   * table keeps only connections to what is served), and returns the accepted end.
   */
  private static SocketChannel acceptServed(
      ProxyDataplane proxy, SocketChannel client, ServerSocketChannel listener) throws IOException {
    proxy.setServed(java.util.Set.of(ServiceKey.tcp(VIP, 80)));
    return accept(client, listener);
  }

  /** A client port (from 40100) whose row's hops satisfy {@code wanted}. */
  private static int clientPort(
      FlowHash hash, HopTable table, java.util.function.Predicate<List<InetAddress>> wanted) {
    for (int port = 40100; port < 60000; port++) {
      int row =
          FlowHash.row(
              hash.hash(CLIENT, port, ServiceOptions.HashFields.SOURCE_IP_AND_PORT),
              table.rowBits());
      if (wanted.test(table.hops(row))) {
        return port;
      }
    }
    throw new IllegalStateException("no client port gives such a row");
  }

  /** Connects {@code client} to the VIP and returns the accepted end. */
  private static SocketChannel accept(SocketChannel client, ServerSocketChannel listener)
      throws IOException {
    client.connect(new InetSocketAddress(VIP, 80));
    return listener.accept();
  }

  private static int localPort(SocketChannel client) throws IOException {
    return ((InetSocketAddress) client.getLocalAddress()).getPort();
  }

  private static byte[] tcp(InetAddress src, int srcPort, int flags) {
    return Packets.ipv4(
        Ipv4Header.of((Inet4Address) src, VIP, Packets.PROTO_TCP),
        Packets.tcp(
            src, VIP, srcPort, 80, flags, 1, flags == Packets.TCP_SYN ? 0 : 1, new byte[0]));
  }

  /**
   * The frame exactly as long as its IP packet, as a host's own stack sends it before the NIC pads
   * it.
   */
  private static byte[] unpaddedFrame(byte[] ip) {
    return Packets.ethernet(PacketLab.LAB_MAC, PacketLab.CLIENT_MAC, Packets.ETHERTYPE_IPV4, ip);
  }

  private static byte[] frame(byte[] ip) {
    // Padded to the 64-byte frame of the published figures: 10 bytes past the IP packet, which the
    // director cuts off (bpf_xdp_adjust_tail) before it encapsulates.
    return Arrays.copyOf(
        Packets.ethernet(PacketLab.LAB_MAC, PacketLab.CLIENT_MAC, Packets.ETHERTYPE_IPV4, ip), 64);
  }

  /** A director's output for a client packet: one further hop in the list. */
  private static byte[] gue(byte[] inner) {
    byte[] g = Packets.gue(Packets.PROTO_IPIP, 0, List.of(PacketLab.PEERS4.get(0)), inner);
    byte[] ip =
        Packets.ipv4(
            Ipv4Header.of(DIRECTOR, ME, Packets.PROTO_UDP),
            Packets.udp(DIRECTOR, ME, 0xc001, VeerAbi.GUE_PORT_DEFAULT, g, false));
    return Packets.ethernet(PacketLab.LAB_MAC, PacketLab.CLIENT_MAC, Packets.ETHERTYPE_IPV4, ip);
  }

  private DataplaneBenchmark() {}
}
