package dev.veer.coordinator.retention;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.table.Backend;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.proto.admin.v1.BackendImpact;
import dev.veer.proto.admin.v1.ChangeImpact;
import java.util.BitSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Flows whose owner a table does not list in their row, judged from the proxies' reports: those a
 * change would strand (rows that lose an owner that still has flows there), and those a table
 * strands now (rows out of hops, or a forced change).
 *
 * @param rows distinct rows with at least one such flow
 * @param flows such flows
 * @param byBackend per backend address: {rows, flows}, for those with any
 */
public record Strandings(int rows, long flows, ImmutableMap<ByteString, long[]> byBackend) {
  public static final Strandings NONE = new Strandings(0, 0, ImmutableMap.of());

  /**
   * The flows that are reachable in {@code before} (their owner is in their row) and not in {@code
   * after}. Either table may be null: a service that does not exist yet, or no longer.
   */
  public static Strandings lost(
      RendezvousTable before, RendezvousTable after, Map<ByteString, FlowReport> reports) {
    return count(before, false, after, reports);
  }

  /** The flows {@code table} does not reach: their owner is not in their row. */
  public static Strandings unreachable(RendezvousTable table, Map<ByteString, FlowReport> reports) {
    return count(null, true, table, reports);
  }

  private static Strandings count(
      RendezvousTable before,
      boolean reachableBefore,
      RendezvousTable after,
      Map<ByteString, FlowReport> reports) {
    BitSet rows = new BitSet();
    long flows = 0;
    Map<ByteString, long[]> byBackend = new LinkedHashMap<>();
    for (Map.Entry<ByteString, FlowReport> e : reports.entrySet()) {
      int inBefore = indexOf(before, e.getKey());
      int inAfter = indexOf(after, e.getKey());
      if (inBefore < 0 && !reachableBefore) {
        continue;
      }
      FlowReport report = e.getValue();
      long[] mine = new long[2];
      for (int i = 0; i < report.rows().length; i++) {
        int row = report.rows()[i];
        if ((reachableBefore || lists(before, row, inBefore)) && !lists(after, row, inAfter)) {
          rows.set(row);
          mine[0]++;
          mine[1] += report.flows()[i];
        }
      }
      if (mine[0] > 0) {
        byBackend.put(e.getKey(), mine);
        flows += mine[1];
      }
    }
    return flows == 0
        ? NONE
        : new Strandings(rows.cardinality(), flows, ImmutableMap.copyOf(byBackend));
  }

  /** What a change does, for the admin API. */
  public ChangeImpact impact(boolean dryRun, List<String> unreported) {
    ChangeImpact.Builder out =
        ChangeImpact.newBuilder()
            .setDryRun(dryRun)
            .setRowsStranded(rows)
            .setFlowsStranded(flows)
            .addAllUnreported(unreported);
    byBackend.forEach(
        (address, counts) ->
            out.addBackends(
                BackendImpact.newBuilder()
                    .setAddress(dev.veer.coordinator.admin.Addresses.literal(address))
                    .setRows((int) counts[0])
                    .setFlows(counts[1])));
    return out.build();
  }

  private static int indexOf(RendezvousTable table, ByteString address) {
    if (table == null) {
      return -1;
    }
    ImmutableList<Backend> backends = table.backends();
    for (int i = 0; i < backends.size(); i++) {
      if (ByteString.copyFrom(backends.get(i).addressBytes()).equals(address)) {
        return i;
      }
    }
    return -1;
  }

  private static boolean lists(RendezvousTable table, int row, int index) {
    if (index < 0 || row >= table.rowCount()) {
      return false;
    }
    for (int i = 0, n = table.rowLength(row); i < n; i++) {
      if (table.hop(row, i) == index) {
        return true;
      }
    }
    return false;
  }
}
