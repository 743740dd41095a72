package dev.veer.testbed.bench;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.coordinator.Coordinator;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.director.DirectorDaemon;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.ConcurrentSkipListMap;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;

/**
 * How fast an admin change reaches the directors: a coordinator on an embedded ZooKeeper, N
 * director daemons following it over gRPC on loopback (real director programs whose maps take every
 * table; not attached to an interface), and a service of 256 backends whose backends are drained
 * and made active again one at a time (a rolling drain). For each change, the time from the admin
 * call returning to the last director acknowledging that version. The baseline, measured in the
 * same run, is a bare ZooKeeper write (setData round trip), the least any ZooKeeper-backed change
 * costs.
 */
public final class ControlPlaneBenchmark {
  private ControlPlaneBenchmark() {}

  public static void main(String[] args) throws Exception {
    int changes = 200;
    int directors = 8;
    int backends = 256;
    Path out = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--changes" -> changes = Integer.parseInt(args[++i]);
        case "--directors" -> directors = Integer.parseInt(args[++i]);
        case "--backends" -> backends = Integer.parseInt(args[++i]);
        case "--out" -> out = Path.of(args[++i]);
        default -> {
          System.err.println(
              "usage: ./veer bench control-plane [--changes N] [--directors D] [--backends B]"
                  + " [--out FILE]");
          System.exit(2);
        }
      }
    }
    BpfSystem.requireUsable();
    String report = run(changes, directors, backends);
    System.out.print(report);
    if (out != null) {
      Files.writeString(out, report);
    }
    System.exit(0);
  }

  /** Backend addresses from the documentation ranges: 198.51.100.1-254, then 203.0.113.1-. */
  static String backend(int i) {
    return i < 254 ? "198.51.100." + (i + 1) : "203.0.113." + (i - 253);
  }

  static String run(int changes, int directorCount, int backendCount) throws Exception {
    Path dir = Files.createTempDirectory("veer-bench-cp");
    List<DirectorDaemon> directors = new ArrayList<>();
    List<ConcurrentSkipListMap<Long, Long>> appliedAt = new ArrayList<>();
    try (Coordinator coordinator = Coordinator.start(Coordinator.Config.local("bench", dir))) {
      String target = "127.0.0.1:" + coordinator.port();
      ManagedChannel channel = Transport.channel(target, Optional.empty());
      try {
        var admin = AdminServiceGrpc.newBlockingStub(channel);
        admin.createService(
            CreateServiceRequest.newBuilder()
                .setSpec(
                    ServiceSpec.newBuilder()
                        .setName("bench")
                        .setVip("203.0.113.10")
                        .setPort(80)
                        .setProtocol(Protocol.TCP))
                .build());
        for (int b = 0; b < backendCount; b++) {
          admin.addBackend(
              AddBackendRequest.newBuilder()
                  .setService("bench")
                  .setAddress(backend(b))
                  .setState(BackendState.ACTIVE)
                  .build());
        }
        for (int d = 0; d < directorCount; d++) {
          ConcurrentSkipListMap<Long, Long> times = new ConcurrentSkipListMap<>();
          appliedAt.add(times);
          directors.add(
              DirectorDaemon.start(
                  DirectorDaemon.Config.builder("bench-d" + d, List.of(target))
                      .source4(
                          Optional.of(
                              (Inet4Address) InetAddress.getByName("192.0.2." + (2 + 4 * d))))
                      .build(),
                  version -> times.putIfAbsent(version, System.nanoTime())));
        }
        long start = coordinator.store().current().getVersion();
        for (DirectorDaemon d : directors) {
          if (!d.awaitVersion(start, Duration.ofSeconds(60))) {
            throw new IllegalStateException(
                "directors did not take the initial tables within 60 s");
          }
        }

        int warmup = Math.min(20, changes);
        double[] convergence = new double[changes];
        double[] callMillis = new double[changes];
        for (int i = -warmup; i < changes; i++) {
          // A rolling drain: each backend drained, then active again, one at a time.
          int b = Math.floorMod(Math.floorDiv(i, 2), backendCount);
          BackendState state =
              Math.floorMod(i, 2) == 0 ? BackendState.DRAINING : BackendState.ACTIVE;
          long called = System.nanoTime();
          Service s =
              admin.setBackendState(
                  SetBackendStateRequest.newBuilder()
                      .setService("bench")
                      .setAddress(backend(b))
                      .setState(state)
                      .build());
          long returned = System.nanoTime();
          long last = returned;
          for (int d = 0; d < directorCount; d++) {
            if (!directors.get(d).awaitVersion(s.getVersion(), Duration.ofSeconds(30))) {
              throw new IllegalStateException(
                  "director " + d + " did not apply version " + s.getVersion());
            }
            last = Math.max(last, appliedAt.get(d).ceilingEntry(s.getVersion()).getValue());
          }
          if (i >= 0) {
            convergence[i] = (last - returned) / 1e6;
            callMillis[i] = (returned - called) / 1e6;
          }
        }
        double[] zkWrite = zooKeeperWrites(coordinator.embeddedZooKeeper().orElseThrow(), changes);
        var compiled = new TableCompiler().compile(coordinator.store().current()).get("bench");
        int full = compiled.wire().getSerializedSize();
        int reference = compiled.reference().getSerializedSize();
        return format(
            changes,
            directorCount,
            backendCount,
            convergence,
            callMillis,
            zkWrite,
            full,
            reference,
            TableCompiler.forDirector(compiled.wire(), compiled.rowBits(), false, true)
                .getSerializedSize());
      } finally {
        Transport.close(channel);
      }
    } finally {
      for (DirectorDaemon d : directors) {
        d.close();
      }
      deleteTree(dir);
    }
  }

  private static double[] zooKeeperWrites(String connect, int count) throws Exception {
    try (CuratorFramework zk = CuratorFrameworkFactory.newClient(connect, new RetryOneTime(100))) {
      zk.start();
      zk.blockUntilConnected();
      zk.create().forPath("/bench-baseline", new byte[8]);
      double[] out = new double[count];
      for (int i = -20; i < count; i++) {
        long t = System.nanoTime();
        zk.setData().forPath("/bench-baseline", new byte[8]);
        if (i >= 0) {
          out[i] = (System.nanoTime() - t) / 1e6;
        }
      }
      return out;
    }
  }

  static double percentile(double[] values, double p) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int index = (int) Math.ceil(p / 100 * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
  }

  private static String format(
      int changes,
      int directors,
      int backends,
      double[] convergence,
      double[] call,
      double[] zk,
      int full,
      int reference,
      int unpacked) {
    double zk50 = percentile(zk, 50);
    StringBuilder sb = new StringBuilder();
    sb.append(
        String.format(
            Locale.ROOT,
            "Veer control-plane benchmark: %d changes (one backend's state each) to a"
                + " service of %d backends, 2^%d rows, %d directors on loopback; %d cores, JDK %s%n%n",
            changes,
            backends,
            VeerAbi.DEFAULT_ROW_BITS,
            directors,
            Runtime.getRuntime().availableProcessors(),
            Runtime.version()));
    sb.append(
        "| measure | p50 ms | p99 ms | max ms | p50 x ZooKeeper write | p99 x ZooKeeper write |\n");
    sb.append("|---|---|---|---|---|---|\n");
    row(sb, "baseline: ZooKeeper setData round trip", zk, zk50);
    row(sb, "admin call (validate, compare-and-set write)", call, zk50);
    row(
        sb,
        "admin call returned -> all " + directors + " directors acknowledged",
        convergence,
        zk50);
    sb.append(
        String.format(
            Locale.ROOT,
            "%nTarget: p99 <= 50 ms from the call returning to all directors"
                + " acknowledging: %s (p99 %.1f ms).%n",
            percentile(convergence, 99) <= 50 ? "met" : "NOT met",
            percentile(convergence, 99)));
    sb.append(
        String.format(
            Locale.ROOT,
            "%nBytes per table update (one service, %d backends): full table %,d"
                + " bytes as sent (hops the rows hold, cells of the width the backends need,"
                + " deflated; %,d as u16 cells not deflated, as older directors get it); an"
                + " unchanged service: nothing (a reference of %,d bytes in a whole version).%n",
            backends,
            full,
            unpacked,
            reference));
    return sb.toString();
  }

  private static void row(StringBuilder sb, String name, double[] values, double zk50) {
    sb.append(
        String.format(
            Locale.ROOT,
            "| %s | %.2f | %.2f | %.2f | %.1f | %.1f |%n",
            name,
            percentile(values, 50),
            percentile(values, 99),
            percentile(values, 100),
            percentile(values, 50) / zk50,
            percentile(values, 99) / zk50));
  }

  static void deleteTree(Path dir) throws IOException {
    try (var paths = Files.walk(dir)) {
      paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
}
