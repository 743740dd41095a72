package dev.veer.testbed.bench;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.coordinator.Coordinator;
import dev.veer.coordinator.cluster.EmbeddedZooKeeper;
import dev.veer.director.DirectorDaemon;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.testbed.cluster.CoordinatorProcess;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.data.Stat;

/**
 * A cluster grown through the admin API to thousands of services of 10 backends each, with 8
 * directors on the Sync stream, measured at each size: admin calls, one backend's change reaching
 * every director, a director's resync from nothing, the coordinator's heap, the director's BPF
 * memory, bytes per change to ZooKeeper and to a director, and ZooKeeper's writes at rest. The
 * coordinator runs in a JVM of its own (its heap is measured with jcmd) on a ZooKeeper embedded
 * here; one director is a real daemon whose program is loaded and whose maps take every table (not
 * attached, as in the control-plane benchmark); the other seven are {@link WireDirector}s, which
 * stop short of the kernel. Backends and VIPs are IPv6 documentation addresses (2001:db8::/32); no
 * packet is sent.
 */
public final class ScaleBenchmark {
  private static final String ROOT = Coordinator.DEFAULT_ROOT;
  private static final Duration CONVERGE = Duration.ofMinutes(10);

  private ScaleBenchmark() {}

  public static void main(String[] args) throws Exception {
    List<Integer> sizes = List.of(10, 1_000, 10_000);
    int backends = 10;
    int directors = 8;
    int changes = 100;
    Path out = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--sizes" ->
            sizes = java.util.Arrays.stream(args[++i].split(",")).map(Integer::parseInt).toList();
        case "--backends" -> backends = Integer.parseInt(args[++i]);
        case "--directors" -> directors = Integer.parseInt(args[++i]);
        case "--changes" -> changes = Integer.parseInt(args[++i]);
        case "--out" -> out = Path.of(args[++i]);
        default -> {
          System.err.println(
              "usage: ./veer bench scale [--sizes 10,1000,10000] [--backends 10] [--directors 8]"
                  + " [--changes 100] [--out FILE]");
          System.exit(2);
        }
      }
    }
    BpfSystem.requireUsable();
    String report = new ScaleBenchmark().run(sizes, backends, directors, changes);
    System.out.print(report);
    if (out != null) {
      Files.writeString(out, report);
    }
    System.exit(0);
  }

  /** What was measured at one size. */
  record Row(
      int services,
      double growSeconds,
      double[] call,
      double[] converge,
      double resyncSeconds,
      long resyncBytes,
      long heapBytes,
      long rssBytes,
      long memlockBytes,
      long zkBytesPerChange,
      long directorBytesPerChange,
      double zkWritesPerSecondAtRest) {}

  static InetAddress vip(int service) {
    return address(0xffff, service);
  }

  static InetAddress backend(int service, int b) {
    return address(service >>> 16, ((service & 0xffff) << 8) | b);
  }

  /** 2001:db8:HIGH::LOW as an address. */
  private static InetAddress address(int high, int low) {
    byte[] bytes = new byte[16];
    bytes[0] = 0x20;
    bytes[1] = 0x01;
    bytes[2] = 0x0d;
    bytes[3] = (byte) 0xb8;
    bytes[4] = (byte) (high >>> 8);
    bytes[5] = (byte) high;
    bytes[12] = (byte) (low >>> 24);
    bytes[13] = (byte) (low >>> 16);
    bytes[14] = (byte) (low >>> 8);
    bytes[15] = (byte) low;
    try {
      return InetAddress.getByAddress(bytes);
    } catch (IOException e) {
      throw new IllegalArgumentException(e);
    }
  }

  String run(List<Integer> sizes, int backendCount, int directorCount, int changes)
      throws Exception {
    Path dir = Files.createTempDirectory("veer-bench-scale");
    List<Row> rows = new ArrayList<>();
    String realResync = "";
    List<WireDirector> wires = new ArrayList<>();
    DirectorDaemon real = null;
    try (EmbeddedZooKeeper zookeeper =
            EmbeddedZooKeeper.start(dir.resolve("zk"), new InetSocketAddress("127.0.0.1", 0));
        CuratorFramework zk =
            CuratorFrameworkFactory.newClient(zookeeper.connectString(), new RetryOneTime(100));
        CoordinatorProcess coordinator =
            CoordinatorProcess.start("scale", zookeeper.connectString(), dir)) {
      zk.start();
      zk.blockUntilConnected();
      ManagedChannel channel = Transport.channel(coordinator.target(), Optional.empty());
      try {
        var admin = AdminServiceGrpc.newBlockingStub(channel);
        awaitReady(admin);
        ConcurrentSkipListMap<Long, Long> realAcks = new ConcurrentSkipListMap<>();
        real = startReal(coordinator.target(), realAcks);
        for (int d = 1; d < directorCount; d++) {
          wires.add(new WireDirector("wire-" + d, coordinator.target(), VeerAbi.DEFAULT_ROW_BITS));
        }
        Random random = new Random(7);
        int services = 0;
        for (int size : sizes) {
          long growStart = System.nanoTime();
          for (; services < size; services++) {
            admin.createService(create(services, backendCount));
          }
          double growSeconds = (System.nanoTime() - growStart) / 1e9;
          long version = admin.getStatus(GetStatusRequest.getDefaultInstance()).getVersion();
          converge(version, real, realAcks, wires);

          // A director from nothing: every table streamed to it in parts.
          long resyncStart = System.nanoTime();
          long resyncBytes;
          try (WireDirector fresh =
              new WireDirector("fresh", coordinator.target(), VeerAbi.DEFAULT_ROW_BITS)) {
            fresh.awaitAck(version, CONVERGE);
            resyncBytes = fresh.bytesReceived();
          }
          double resyncSeconds = (System.nanoTime() - resyncStart) / 1e9;

          double[] call = new double[changes];
          double[] converge = new double[changes];
          long zkBytes = 0;
          long directorBytes = 0;
          for (int i = -10; i < changes; i++) {
            int s = random.nextInt(services);
            int b = random.nextInt(backendCount);
            for (BackendState state : List.of(BackendState.DRAINING, BackendState.ACTIVE)) {
              long called = System.nanoTime();
              Service changed =
                  admin.setBackendState(
                      SetBackendStateRequest.newBuilder()
                          .setService(name(s))
                          .setAddress(backend(s, b).getHostAddress())
                          .setState(state)
                          .build());
              long returned = System.nanoTime();
              long last = converge(changed.getVersion(), real, realAcks, wires);
              if (i >= 0 && state == BackendState.DRAINING) {
                call[i] = (returned - called) / 1e6;
                converge[i] = (last - returned) / 1e6;
                zkBytes += zooKeeperBytes(zk, name(s), changed.getVersion());
                directorBytes += wires.getFirst().bytesOf(changed.getVersion());
              }
            }
          }
          double atRest = zooKeeperWritesPerSecond(zk, Duration.ofSeconds(10));
          long[] heap = heapAfterGc(coordinator.pid());
          rows.add(
              new Row(
                  services,
                  growSeconds,
                  call,
                  converge,
                  resyncSeconds,
                  resyncBytes,
                  heap[0],
                  heap[1],
                  real.dataplane().memlockBytes(),
                  zkBytes / changes,
                  directorBytes / changes,
                  atRest));
          System.err.printf(
              Locale.ROOT,
              "%,d services: grown in %.0f s, change p99 %.1f ms%n",
              services,
              growSeconds,
              percentile(converge, 99));
        }
        // The real director from nothing at the largest size: closed (maps released), started
        // again, and timed until it forwards with the current version.
        long version = admin.getStatus(GetStatusRequest.getDefaultInstance()).getVersion();
        real.close();
        real = null;
        ConcurrentSkipListMap<Long, Long> again = new ConcurrentSkipListMap<>();
        long start = System.nanoTime();
        real = startReal(coordinator.target(), again);
        if (!real.awaitVersion(version, CONVERGE)) {
          throw new IllegalStateException("the real director did not resync in " + CONVERGE);
        }
        realResync =
            String.format(
                Locale.ROOT,
                "A real director from nothing at %,d services (every table inflated, checked and"
                    + " written into its maps): %.1f s, BPF memory %,d MiB.%n",
                services,
                (System.nanoTime() - start) / 1e9,
                real.dataplane().memlockBytes() >> 20);
      } finally {
        Transport.close(channel);
      }
    } finally {
      wires.forEach(WireDirector::close);
      if (real != null) {
        real.close();
      }
      ControlPlaneBenchmark.deleteTree(dir);
    }
    return format(rows, backendCount, directorCount, changes) + "\n" + realResync;
  }

  private static DirectorDaemon startReal(String target, ConcurrentSkipListMap<Long, Long> acks)
      throws Exception {
    return DirectorDaemon.start(
        DirectorDaemon.Config.builder("real", List.of(target))
            .source6(Optional.of((Inet6Address) InetAddress.getByName("2001:db8:fffe::2")))
            .build(),
        version -> acks.putIfAbsent(version, System.nanoTime()));
  }

  private static void awaitReady(AdminServiceGrpc.AdminServiceBlockingStub admin)
      throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (true) {
      try {
        admin.getStatus(GetStatusRequest.getDefaultInstance());
        return;
      } catch (io.grpc.StatusRuntimeException e) {
        if (System.nanoTime() > deadline) {
          throw e;
        }
        Thread.sleep(100);
      }
    }
  }

  static String name(int service) {
    return "s" + service;
  }

  private static CreateServiceRequest create(int service, int backends) {
    CreateServiceRequest.Builder request =
        CreateServiceRequest.newBuilder()
            .setSpec(
                ServiceSpec.newBuilder()
                    .setName(name(service))
                    .setVip(vip(service).getHostAddress())
                    .setPort(80)
                    .setProtocol(Protocol.TCP));
    for (int b = 0; b < backends; b++) {
      request.addBackends(
          Backend.newBuilder()
              .setAddress(backend(service, b).getHostAddress())
              .setState(BackendState.ACTIVE));
    }
    return request.build();
  }

  /** Waits for every director to acknowledge {@code version}; when the last did. */
  private static long converge(
      long version,
      DirectorDaemon real,
      ConcurrentSkipListMap<Long, Long> realAcks,
      List<WireDirector> wires)
      throws InterruptedException {
    if (!real.awaitVersion(version, CONVERGE)) {
      throw new IllegalStateException("the real director did not apply version " + version);
    }
    long last = realAcks.ceilingEntry(version).getValue();
    for (WireDirector wire : wires) {
      last = Math.max(last, wire.awaitAck(version, CONVERGE));
    }
    return last;
  }

  /** The bytes one change wrote: the header, the service's node and the change record. */
  private static long zooKeeperBytes(CuratorFramework zk, String service, long version)
      throws Exception {
    long total = 0;
    for (String path :
        List.of(
            ROOT + "/cluster",
            ROOT + "/services/" + service,
            ROOT + "/changes/" + String.format("%020d", version))) {
      Stat stat = zk.checkExists().forPath(path);
      total += stat == null ? 0 : stat.getDataLength();
    }
    return total;
  }

  /** Transactions ZooKeeper committed in {@code period} with nothing changing, per second. */
  private static double zooKeeperWritesPerSecond(CuratorFramework zk, Duration period)
      throws Exception {
    String probe = "/bench-zxid";
    if (zk.checkExists().forPath(probe) == null) {
      zk.create().forPath(probe);
    }
    long before = zk.setData().forPath(probe, new byte[0]).getMzxid();
    Thread.sleep(period.toMillis());
    long after = zk.setData().forPath(probe, new byte[0]).getMzxid();
    return (after - before - 1) / (period.toMillis() / 1000.0);
  }

  /** The coordinator's heap in use after a full GC, and its resident set, in bytes. */
  private static long[] heapAfterGc(long pid) throws Exception {
    String jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd").toString();
    run(jcmd, Long.toString(pid), "GC.run");
    String info = run(jcmd, Long.toString(pid), "GC.heap_info");
    Matcher used = Pattern.compile("used (\\d+)K").matcher(info);
    long heap = used.find() ? Long.parseLong(used.group(1)) * 1024 : -1;
    long rss = -1;
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (line.startsWith("VmRSS:")) {
        rss = Long.parseLong(line.replaceAll("\\D+", "")) * 1024;
      }
    }
    return new long[] {heap, rss};
  }

  private static String run(String... command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", command) + " failed: " + output);
    }
    return output;
  }

  static double percentile(double[] values, double p) {
    return ControlPlaneBenchmark.percentile(values, p);
  }

  private static String format(List<Row> rows, int backends, int directors, int changes) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "Veer scale benchmark: services of %d backends (IPv6), 2^%d rows, %d directors (1 real,"
                + " %d wire), %d changes (one backend drained) per size; %d cores, JDK %s%n%n",
            backends,
            VeerAbi.DEFAULT_ROW_BITS,
            directors,
            directors - 1,
            changes,
            Runtime.getRuntime().availableProcessors(),
            Runtime.version()));
    double baseCall = percentile(rows.getFirst().call(), 99);
    sb.append(
        "| services | grown in | admin call p50 / p99 ms | p99 x at "
            + rows.getFirst().services()
            + " | change -> all directors acked p50 / p99 ms | resync from nothing (wire) |"
            + " coordinator heap after GC / RSS | director BPF memory (per service) |"
            + " ZooKeeper bytes per change | bytes to a director per change |"
            + " ZooKeeper writes/s at rest |\n");
    sb.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (Row r : rows) {
      sb.append(
          String.format(
              Locale.ROOT,
              "| %,d | %.0f s | %.1f / %.1f | %.2f | %.1f / %.1f | %.1f s, %,d MB |"
                  + " %,d / %,d MiB | %,d MiB (%,d KiB) | %,d | %,d | %.1f |%n",
              r.services(),
              r.growSeconds(),
              percentile(r.call(), 50),
              percentile(r.call(), 99),
              percentile(r.call(), 99) / baseCall,
              percentile(r.converge(), 50),
              percentile(r.converge(), 99),
              r.resyncSeconds(),
              r.resyncBytes() / 1_000_000,
              r.heapBytes() >> 20,
              r.rssBytes() >> 20,
              r.memlockBytes() >> 20,
              r.memlockBytes() / Math.max(1, r.services()) >> 10,
              r.zkBytesPerChange(),
              r.directorBytesPerChange(),
              r.zkWritesPerSecondAtRest()));
    }
    return sb.toString();
  }
}
