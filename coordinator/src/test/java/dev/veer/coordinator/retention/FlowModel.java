package dev.veer.coordinator.retention;

import static com.google.common.base.Preconditions.checkState;

import com.google.common.collect.ImmutableMap;
import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.admin.Services;
import dev.veer.coordinator.sync.TableCompiler;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.coordinator.table.TableBuilder;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.state.v1.ClusterSettings;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Protocol;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.UnaryOperator;

/**
 * One service's life as the coordinators, directors and proxies live it, with the real state
 * transitions ({@link Services}, {@link Evidence}) and the real builder, and a ground truth of
 * which backend holds how many flows in which row:
 *
 * <ul>
 *   <li>a change writes a new state; the directors forward with the previous table until they
 *       acknowledge ({@link #ack});
 *   <li>new flows go to the primary of the table the directors forward with; flows end at random;
 *   <li>proxies report their flows ({@link #report}) with the data-plane version they had seen; the
 *       leader applies the reports.
 * </ul>
 *
 * After every transition it counts the flows the new table strands: flows whose owner was in their
 * row in the table before and is not in the table after.
 */
final class FlowModel {
  static final String SERVICE = "web";

  final int rowBits;
  final Random random;
  private final TableBuilder builder = new TableBuilder();
  private ClusterState state;
  private RendezvousTable table;
  private RendezvousTable forwarding;
  private long dataPlaneVersion;
  private long now = 1_000_000;

  /** Ground truth: flows per row by backend address. */
  private final Map<ByteString, int[]> flows =
      new TreeMap<>(ByteString.unsignedLexicographicalComparator());

  /** Long-lived flows per row by backend address (a part of {@link #flows} that never ends). */
  private final Map<ByteString, int[]> lasting =
      new TreeMap<>(ByteString.unsignedLexicographicalComparator());

  /** When set, generations are trimmed to this many after each change and no report is applied. */
  private final int legacyGenerations;

  long stranded;
  long strandedByForce;
  long transitions;
  long maxRowsOutOfHops;

  FlowModel(int rowBits, long seed, int legacyGenerations) {
    this.rowBits = rowBits;
    this.random = new Random(seed);
    this.legacyGenerations = legacyGenerations;
    byte[] tableSeed = new byte[16];
    random.nextBytes(tableSeed);
    ClusterState empty =
        ClusterState.newBuilder()
            .setVersion(1)
            .setSettings(ClusterSettings.newBuilder().setRowBits(rowBits).setSettleSeconds(600))
            .build();
    state =
        bump(
            Services.create(
                empty,
                ServiceSpec.newBuilder()
                    .setName(SERVICE)
                    .setVip("203.0.113.10")
                    .setPort(80)
                    .setProtocol(Protocol.TCP)
                    .build(),
                tableSeed));
    table = build();
    forwarding = table;
    dataPlaneVersion = state.getVersion();
  }

  ServiceState service() {
    return Services.require(state, SERVICE);
  }

  RendezvousTable table() {
    return table;
  }

  /** An operator's or the leader's change; returns the flows it stranded. */
  long change(UnaryOperator<ClusterState> op, boolean forced) {
    now += 1000;
    ClusterState next = bump(op.apply(state));
    if (legacyGenerations > 0) {
      ServiceState s = Services.require(next, SERVICE);
      if (s.getGenerationsCount() > legacyGenerations) {
        next =
            next.toBuilder()
                .clearServices()
                .addServices(
                    s.toBuilder()
                        .clearGenerations()
                        .addAllGenerations(s.getGenerationsList().subList(0, legacyGenerations)))
                .build();
      }
    }
    return transition(next, forced);
  }

  long addBackend(String address, BackendState initial) {
    return change(s -> Services.addBackend(s, SERVICE, address, initial, now), false);
  }

  long setState(String address, BackendState state) {
    return change(s -> Services.setBackendState(s, SERVICE, address, state, 0, now), false);
  }

  long remove(String address, boolean force) {
    return change(s -> Services.removeBackend(s, SERVICE, address, true, 0, now), force);
  }

  /** The directors forward with the newest table from now on. */
  void ack() {
    forwarding = table;
    dataPlaneVersion = state.getVersion();
  }

  /** {@code n} new flows at random rows, each to the primary the directors forward it to. */
  void connect(int n, boolean longLived) {
    for (int i = 0; i < n; i++) {
      int row = random.nextInt(1 << rowBits);
      if (forwarding.rowLength(row) == 0) {
        continue;
      }
      ByteString owner = address(forwarding, forwarding.primary(row));
      if (!inService(owner)) {
        continue; // a stale director sends to a backend that left: the connection never opens
      }
      flows.computeIfAbsent(owner, a -> new int[1 << rowBits])[row]++;
      if (longLived) {
        lasting.computeIfAbsent(owner, a -> new int[1 << rowBits])[row]++;
      }
    }
  }

  /** Each short-lived flow ends with probability {@code p}. */
  void end(double p) {
    flows.forEach(
        (owner, rows) -> {
          int[] keep = lasting.get(owner);
          for (int r = 0; r < rows.length; r++) {
            int shortLived = rows[r] - (keep == null ? 0 : keep[r]);
            for (int i = 0; i < shortLived; i++) {
              if (random.nextDouble() < p) {
                rows[r]--;
              }
            }
          }
        });
  }

  /** Every flow of backends that leave the service ends with them (their host is gone). */
  private void forgetRemoved() {
    flows.keySet().removeIf(a -> !inService(a));
    lasting.keySet().removeIf(a -> !inService(a));
  }

  private List<ByteString> flowOwners() {
    return List.copyOf(flows.keySet());
  }

  /** The reports the proxies of {@code backends} would make now. */
  ImmutableMap<ByteString, FlowReport> reports(List<ByteString> backends) {
    Map<ByteString, FlowReport> out = new HashMap<>();
    for (ByteString b : backends) {
      int[] counts = flows.getOrDefault(b, new int[1 << rowBits]);
      List<Integer> rows = new ArrayList<>();
      List<Integer> n = new ArrayList<>();
      for (int r = 0; r < counts.length; r++) {
        if (counts[r] > 0) {
          rows.add(r);
          n.add(counts[r]);
        }
      }
      out.put(
          b,
          new FlowReport(
              rows.stream().mapToInt(Integer::intValue).toArray(),
              n.stream().mapToInt(Integer::intValue).toArray(),
              dataPlaneVersion));
    }
    return ImmutableMap.copyOf(out);
  }

  /** Every backend's proxy reports and the leader applies what they say. */
  long reportAll() {
    return report(backends());
  }

  long report(List<ByteString> reporting) {
    if (legacyGenerations > 0) {
      return 0;
    }
    ServiceState before = service();
    ServiceState after = Evidence.update(before, table, reports(reporting), state.getVersion() + 1);
    if (after == before) {
      return 0;
    }
    now += 10;
    return transition(bump(state.toBuilder().clearServices().addServices(after).build()), false);
  }

  List<ByteString> backends() {
    return service().getBackendsList().stream().map(b -> b.getAddress()).toList();
  }

  long flowsOf(String address) {
    int[] rows = flows.get(Addresses.bytes(InetAddresses.forString(address)));
    long sum = 0;
    for (int i = 0; rows != null && i < rows.length; i++) {
      sum += rows[i];
    }
    return sum;
  }

  long now() {
    return now;
  }

  private long transition(ClusterState next, boolean forced) {
    RendezvousTable before = table;
    state = next;
    table = build();
    transitions++;
    maxRowsOutOfHops = Math.max(maxRowsOutOfHops, table.rowsOutOfHops());
    long lost = 0;
    for (Map.Entry<ByteString, int[]> e : flows.entrySet()) {
      int[] rows = e.getValue();
      int was = indexOf(before, e.getKey());
      int is = indexOf(table, e.getKey());
      for (int r = 0; r < rows.length; r++) {
        if (rows[r] > 0 && lists(before, r, was) && !lists(table, r, is)) {
          lost += rows[r];
        }
      }
    }
    Strandings counted = Strandings.lost(before, table, reports(flowOwners()));
    checkState(
        counted.flows() == lost,
        "the stranded flows counted from the reports (%s) differ from the true ones (%s)",
        counted.flows(),
        lost);
    forgetRemoved();
    if (forced) {
      strandedByForce += lost;
    } else {
      stranded += lost;
    }
    return lost;
  }

  /** Flows whose owner the current table does not list in their row. */
  long unreachable() {
    long out = 0;
    for (Map.Entry<ByteString, int[]> e : flows.entrySet()) {
      int[] rows = e.getValue();
      int is = indexOf(table, e.getKey());
      for (int r = 0; r < rows.length; r++) {
        if (rows[r] > 0 && !lists(table, r, is)) {
          out += rows[r];
        }
      }
    }
    return out;
  }

  private RendezvousTable build() {
    RendezvousTable built =
        TableCompiler.build(builder, service(), state.getSettings().getRowBits());
    return built;
  }

  /** A fresh builder's table for the current state: must equal the incremental one. */
  RendezvousTable freshTable() {
    return TableCompiler.build(new TableBuilder(), service(), rowBits);
  }

  private boolean inService(ByteString address) {
    return service().getBackendsList().stream().anyMatch(b -> b.getAddress().equals(address));
  }

  private static boolean lists(RendezvousTable t, int row, int index) {
    for (int i = 0, n = t.rowLength(row); i < n && index >= 0; i++) {
      if (t.hop(row, i) == index) {
        return true;
      }
    }
    return false;
  }

  private static int indexOf(RendezvousTable t, ByteString address) {
    for (int i = 0; i < t.backends().size(); i++) {
      if (address(t, i).equals(address)) {
        return i;
      }
    }
    return -1;
  }

  private static ByteString address(RendezvousTable t, int index) {
    return ByteString.copyFrom(t.backend(index).addressBytes());
  }

  private static ClusterState bump(ClusterState s) {
    checkState(s.getVersion() > 0);
    return s.toBuilder().setVersion(s.getVersion() + 1).build();
  }
}
