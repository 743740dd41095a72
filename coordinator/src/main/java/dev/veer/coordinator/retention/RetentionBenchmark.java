package dev.veer.coordinator.retention;

import com.google.common.collect.ImmutableMap;
import com.google.protobuf.ByteString;
import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.coordinator.table.Backend;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.coordinator.table.TableBenchmark;
import dev.veer.coordinator.table.TableBuilder;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.FlowRows;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * What retention from live-flow evidence costs, as a markdown report: the agents' report (size, and
 * the time to map flows to rows), the leader's bookkeeping per report round, the evidence stored,
 * and table builds with evidence against the same builds without. Run with {@code ./veer bench
 * tables}.
 */
public final class RetentionBenchmark {
  private static final int ROW_BITS = 16;
  private static final int BACKENDS = 256;
  private static final int[] FLOWS = {1_000, 10_000, 100_000};

  private final Random random = new Random(20_261_206);

  public static void main(String[] args) throws Exception {
    new RetentionBenchmark().run();
  }

  private void run() throws Exception {
    System.out.printf(
        "%nRetention from live-flow evidence, 2^%d rows, %d backends (median ms)%n%n",
        ROW_BITS, BACKENDS);
    agentReports();
    leaderAndBuilds();
  }

  /** One proxy's report for one service: bytes on the wire and the time to compute it. */
  private void agentReports() throws UnknownHostException {
    byte[] key = new byte[16];
    random.nextBytes(key);
    FlowHash hash = new FlowHash(key);
    System.out.println(
        "| flows on one proxy | report bytes | bytes per flow | rows with flows | map flows to rows (ms) |");
    System.out.println("|---:|---:|---:|---:|---:|");
    for (int flows : FLOWS) {
      InetAddress[] clients = new InetAddress[flows];
      int[] ports = new int[flows];
      for (int i = 0; i < flows; i++) {
        byte[] a = new byte[4];
        random.nextBytes(a);
        clients[i] = InetAddress.getByAddress(a);
        ports[i] = 1024 + random.nextInt(60_000);
      }
      FlowRows[] out = new FlowRows[1];
      double ms =
          TableBenchmark.median(
              3,
              9,
              () -> {
                TreeMap<Integer, Integer> rows = new TreeMap<>();
                for (int i = 0; i < flows; i++) {
                  long h =
                      hash.hash(clients[i], ports[i], ServiceOptions.HashFields.SOURCE_IP_AND_PORT);
                  rows.merge(FlowHash.row(h, ROW_BITS), 1, Integer::sum);
                }
                out[0] =
                    FlowRowsCodec.encode(
                        ROW_BITS,
                        rows.keySet().stream().mapToInt(Integer::intValue).toArray(),
                        rows.values().stream().mapToInt(Integer::intValue).toArray());
                return out[0];
              });
      int bytes = out[0].getSerializedSize();
      System.out.printf(
          "| %,d | %,d | %.2f | %,d | %.2f |%n",
          flows, bytes, bytes / (double) flows, out[0].getGapsCount(), ms);
    }
  }

  /**
   * The leader applying one round of reports from every backend, the evidence it stores, and
   * rebuilding the table with it, when a change left a share of every backend's flows in rows it is
   * no longer primary of.
   */
  private void leaderAndBuilds() {
    List<Backend> backends = TableBenchmark.backends(BACKENDS);
    ServiceState.Builder service =
        ServiceState.newBuilder()
            .setName("bench")
            .setHopCount(2)
            .setTableVersion(1)
            .setTableSeed(ByteString.copyFrom(new byte[16]));
    for (Backend b : backends) {
      service.addBackends(
          BackendRecord.newBuilder()
              .setAddress(ByteString.copyFrom(b.addressBytes()))
              .setState(BackendState.ACTIVE));
    }
    ServiceState plain = service.build();
    RendezvousTable table = TableCompiler.build(new TableBuilder(), plain, ROW_BITS);
    System.out.printf(
        "%n| flows in all | outside their owner's primary rows | leader's round of %d reports (ms)"
            + " | evidence stored (bytes) | row index (bytes) | build with it (ms) | build without"
            + " (ms) | x without |%n",
        BACKENDS);
    System.out.println("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (int flows : FLOWS) {
      for (double moved : new double[] {0.01, 0.25}) {
        Map<ByteString, FlowReport> reports = reports(table, backends, flows, moved);
        ServiceState[] updated = new ServiceState[1];
        double leader =
            TableBenchmark.median(
                3, 9, () -> updated[0] = Evidence.update(plain, table, reports, 2));
        int entries =
            updated[0].getEvidenceList().stream().mapToInt(e -> e.getRows().getGapsCount()).sum();
        int stored =
            updated[0].getEvidenceList().stream().mapToInt(e -> e.getSerializedSize()).sum();
        TableBuilder warm = new TableBuilder();
        TableCompiler.build(warm, plain, ROW_BITS);
        double with =
            TableBenchmark.median(5, 15, () -> TableCompiler.build(warm, updated[0], ROW_BITS));
        double without =
            TableBenchmark.median(5, 15, () -> TableCompiler.build(warm, plain, ROW_BITS));
        System.out.printf(
            "| %,d | %.0f%% (%,d rows) | %.2f | %,d | %,d | %.2f | %.2f | %.2f |%n",
            flows,
            moved * 100,
            entries,
            leader,
            stored,
            4 * ((1 << ROW_BITS) + 1) + 4 * entries,
            with,
            without,
            with / without);
      }
    }
  }

  /**
   * Every backend's report: {@code flows} spread evenly over the backends, each in a row its
   * backend is primary of, except a share {@code moved} in random other rows (flows that outlived a
   * change).
   */
  private Map<ByteString, FlowReport> reports(
      RendezvousTable table, List<Backend> backends, int flows, double moved) {
    Map<Integer, TreeMap<Integer, Integer>> byBackend = new HashMap<>();
    int rows = table.rowCount();
    for (int f = 0; f < flows; f++) {
      int row = random.nextInt(rows);
      int owner = table.primary(row);
      if (random.nextDouble() < moved) {
        owner = random.nextInt(backends.size());
      }
      byBackend.computeIfAbsent(owner, o -> new TreeMap<>()).merge(row, 1, Integer::sum);
    }
    ImmutableMap.Builder<ByteString, FlowReport> out = ImmutableMap.builder();
    for (int b = 0; b < backends.size(); b++) {
      TreeMap<Integer, Integer> mine = byBackend.getOrDefault(b, new TreeMap<>());
      out.put(
          ByteString.copyFrom(backends.get(b).addressBytes()),
          new FlowReport(
              mine.keySet().stream().mapToInt(Integer::intValue).toArray(),
              mine.values().stream().mapToInt(Integer::intValue).toArray(),
              1));
    }
    return out.build();
  }
}
