package dev.veer.testbed;

import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.coordinator.table.Backend;
import dev.veer.coordinator.table.BackendState;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.coordinator.table.RendezvousTableBuilder;
import dev.veer.coordinator.table.TableSpec;
import java.net.InetAddress;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Builds data-plane tables with the coordinator's rendezvous builder. Until the coordinator pushes
 * tables itself, the test bed and demo build them here.
 */
public final class Tables {
  /** One seed for every table the bed builds, as one coordinator would use. */
  private static final byte[] SEED =
      "veer-testbed-sd!".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  private Tables() {}

  /** A table over these backends in these states (insertion order is irrelevant to the result). */
  public static HopTable build(Map<? extends InetAddress, BackendState> backends) {
    return build(backends, TableSpec.DEFAULT_ROW_BITS, TableSpec.DEFAULT_HOPS);
  }

  public static HopTable build(
      Map<? extends InetAddress, BackendState> backends, int rowBits, int hopCount) {
    List<Backend> list =
        backends.entrySet().stream().map(e -> new Backend(e.getKey(), e.getValue())).toList();
    return toHopTable(RendezvousTableBuilder.build(TableSpec.of(SEED, rowBits, hopCount), list));
  }

  /** A table with every backend active. */
  public static HopTable allActive(
      List<? extends InetAddress> backends, int rowBits, int hopCount) {
    Map<InetAddress, BackendState> states = new java.util.LinkedHashMap<>();
    backends.forEach(b -> states.put(b, BackendState.ACTIVE));
    return build(states, rowBits, hopCount);
  }

  public static HopTable toHopTable(RendezvousTable table) {
    int[] hops = new int[table.rowCount() * VeerAbi.MAX_HOPS];
    Arrays.fill(hops, -1);
    for (int row = 0; row < table.rowCount(); row++) {
      int[] rowHops = table.hops(row);
      System.arraycopy(rowHops, 0, hops, row * VeerAbi.MAX_HOPS, rowHops.length);
    }
    return HopTable.of(
        table.rowBits(), table.backends().stream().map(Backend::address).toList(), hops);
  }
}
