package dev.veer.coordinator.sync;

import com.google.common.collect.ImmutableMap;
import com.google.protobuf.ByteString;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.table.Backend;
import dev.veer.coordinator.table.BackendState;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.coordinator.table.RowSet;
import dev.veer.coordinator.table.TableBuilder;
import dev.veer.coordinator.table.TableHistory;
import dev.veer.coordinator.table.TableSpec;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.director.v1.ServiceTable;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.FlowEvidence;
import dev.veer.proto.state.v1.Generation;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.Health;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns the desired state into forwarding tables, once per change: a service's table is rebuilt
 * only when the service changed or the row count did, and then incrementally where the builder can.
 * The result is a function of the state alone (backends, states, health and the retained
 * generations are all in ZooKeeper), so every coordinator compiles the same tables.
 */
public final class TableCompiler {
  private static final Logger log = LoggerFactory.getLogger(TableCompiler.class);

  /** Hop slots per row on the wire and in the data plane. */
  public static final int ROW_HOPS = RendezvousTable.ROW_CELLS;

  /** How many services keep a builder for previews (dry runs, a change's impact). */
  private static final int PREVIEW_BUILDERS = 8;

  private final Map<String, Compiled> cache = new HashMap<>();

  /** Per service: a builder whose rankings make the next build of that service incremental. */
  private final Map<String, TableBuilder> builders = new HashMap<>();

  /**
   * Builders for tables of changes not yet made, of the services changed last: each holds a ranking
   * cache (1.5 MiB at 2^16 rows), so only a few are kept.
   */
  private final Map<String, TableBuilder> previewBuilders =
      new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, TableBuilder> eldest) {
          return size() > PREVIEW_BUILDERS;
        }
      };

  /** A service's table at one version, and its wire form without the service's key fields. */
  public record Compiled(
      ServiceState service, int rowBits, RendezvousTable table, ServiceTable wire) {
    /** The same table without its rows, for a director that holds it already. */
    public ServiceTable reference() {
      return wire.toBuilder().clearBackends().clearRows().setHasTable(false).build();
    }
  }

  /** Every service of {@code state}, compiled; forgets services that are gone. */
  public synchronized ImmutableMap<String, Compiled> compile(ClusterState state) {
    int rowBits = state.getSettings().getRowBits();
    ImmutableMap.Builder<String, Compiled> out = ImmutableMap.builder();
    Map<String, Compiled> next = new HashMap<>();
    for (ServiceState service : state.getServicesList()) {
      Compiled previous = cache.get(service.getName());
      Compiled compiled =
          previous != null && previous.rowBits() == rowBits && previous.service().equals(service)
              ? previous
              : compile(
                  builders.computeIfAbsent(service.getName(), n -> new TableBuilder()),
                  service,
                  rowBits);
      next.put(service.getName(), compiled);
      out.put(service.getName(), compiled);
    }
    cache.clear();
    cache.putAll(next);
    builders.keySet().retainAll(next.keySet());
    previewBuilders.keySet().retainAll(next.keySet());
    return out.build();
  }

  private static Compiled compile(TableBuilder builder, ServiceState service, int rowBits) {
    long start = System.nanoTime();
    RendezvousTable table = build(builder, service, rowBits);
    ServiceTable.Builder wire =
        ServiceTable.newBuilder()
            .setName(service.getName())
            .setVip(service.getVip())
            .setPort(service.getPort())
            .setProtocol(service.getProtocol())
            .setHashFields(service.getHashFields())
            .setEncapsulation(service.getEncapsulation())
            .setTableVersion(service.getTableVersion())
            .setHasTable(true)
            .setMinHealthy(Math.max(1, service.getMinHealthy()))
            .setHealthyBackends(
                (int) table.backends().stream().filter(Backend::isEligible).count());
    for (Backend b : table.backends()) {
      wire.addBackends(ByteString.copyFrom(b.addressBytes()));
    }
    char[] cells = table.encoded();
    int rowHops = rowHops(cells);
    wire.setRows(encodeRows(cells, rowHops)).setRowHops(rowHops);
    log.debug(
        "service {}: table version {} ({} rows, {} backends) compiled in {} ms",
        service.getName(),
        service.getTableVersion(),
        table.rowCount(),
        table.backends().size(),
        (System.nanoTime() - start) / 1_000_000);
    return new Compiled(service, rowBits, table, wire.build());
  }

  /**
   * The table {@code service} would have, for a change not yet made (a dry run, or the check that a
   * change strands no flow). Uses builders of its own, so the compiled tables' stay warm.
   */
  public synchronized RendezvousTable preview(ServiceState service, int rowBits) {
    return build(
        previewBuilders.computeIfAbsent(service.getName(), n -> new TableBuilder()),
        service,
        rowBits);
  }

  /**
   * The service's table: its backends now, keeping the owners its history names: primaries of
   * retained generations not yet confirmed by their proxies' reports, and flow evidence.
   */
  public static RendezvousTable build(TableBuilder builder, ServiceState service, int rowBits) {
    TableSpec spec =
        TableSpec.of(service.getTableSeed().toByteArray(), rowBits, service.getHopCount());
    return builder.build(spec, backends(service.getBackendsList()), history(service));
  }

  /** What the service's stored state keeps of its past, for the builder. */
  static TableHistory history(ServiceState service) {
    if (service.getGenerationsCount() == 0 && service.getEvidenceCount() == 0) {
      return TableHistory.none();
    }
    TableHistory.Builder out = TableHistory.builder();
    for (Generation g : service.getGenerationsList()) {
      Set<InetAddress> confirmed = new HashSet<>();
      g.getConfirmedList().forEach(a -> confirmed.add(Addresses.fromBytes(a)));
      out.addGeneration(backends(g.getBackendsList()), confirmed);
    }
    for (FlowEvidence e : service.getEvidenceList()) {
      out.evidence(
          Addresses.fromBytes(e.getAddress()), RowSet.ofSorted(FlowRowsCodec.rows(e.getRows())));
    }
    return out.build();
  }

  static List<Backend> backends(List<BackendRecord> records) {
    return records.stream()
        .map(
            r ->
                new Backend(
                    Addresses.fromBytes(r.getAddress()),
                    state(r),
                    r.getHealth() != Health.UNHEALTHY))
        .toList();
  }

  private static BackendState state(BackendRecord r) {
    return switch (r.getState()) {
      case ACTIVE -> BackendState.ACTIVE;
      case FILLING -> BackendState.FILLING;
      case DRAINING -> BackendState.DRAINING;
      default -> BackendState.INACTIVE;
    };
  }

  /** Rows of {@link #ROW_HOPS} little-endian u16 hops: backend index + 1, 0 for none. */
  /**
   * The most hops any row holds (at least 1): rows go on the wire with that many cells each, so a
   * table of 2 hops costs 4 bytes a row, not {@code 2 * MAX_HOPS}.
   */
  static int rowHops(char[] cells) {
    int most = 1;
    for (int row = 0; row < cells.length; row += VeerAbi.MAX_HOPS) {
      for (int hop = VeerAbi.MAX_HOPS - 1; hop >= most; hop--) {
        if (cells[row + hop] != 0) {
          most = hop + 1;
          break;
        }
      }
    }
    return most;
  }

  /** The rows of {@code cells} ({@code MAX_HOPS} a row) with {@code rowHops} cells a row. */
  static ByteString encodeRows(char[] cells, int rowHops) {
    ByteBuffer rows =
        ByteBuffer.allocate(cells.length / VeerAbi.MAX_HOPS * rowHops * 2)
            .order(ByteOrder.LITTLE_ENDIAN);
    for (int row = 0; row < cells.length; row += VeerAbi.MAX_HOPS) {
      for (int hop = 0; hop < rowHops; hop++) {
        rows.putChar(cells[row + hop]);
      }
    }
    return ByteString.copyFrom(rows.array());
  }

  /**
   * {@code table} as a director that reads only rows of {@code MAX_HOPS} cells (its Hello does not
   * say compact_rows) needs it.
   */
  static ServiceTable withFullRows(ServiceTable table) {
    int rowHops = table.getRowHops() == 0 ? VeerAbi.MAX_HOPS : table.getRowHops();
    if (!table.getHasTable() || rowHops == VeerAbi.MAX_HOPS) {
      return table;
    }
    char[] cells =
        HopTable.fullRows(
            table.getRows().asReadOnlyByteBuffer(), table.getRows().size() / 2 / rowHops, rowHops);
    return table.toBuilder()
        .setRows(encodeRows(cells, VeerAbi.MAX_HOPS))
        .setRowHops(VeerAbi.MAX_HOPS)
        .build();
  }
}
