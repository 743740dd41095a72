package dev.veer.coordinator.sync;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.primitives.ImmutableIntArray;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.admin.Services;
import dev.veer.coordinator.table.Backend;
import dev.veer.coordinator.table.BackendState;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.coordinator.table.RowSet;
import dev.veer.coordinator.table.TableBuilder;
import dev.veer.coordinator.table.TableHistory;
import dev.veer.coordinator.table.TableSpec;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.TableRowsCodec;
import dev.veer.proto.director.v1.ServiceTable;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.FlowEvidence;
import dev.veer.proto.state.v1.Generation;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.Balance;
import dev.veer.proto.types.v1.Health;
import java.net.InetAddress;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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

  private final Map<String, Compiled> cache = new HashMap<>();

  /**
   * How many services keep a builder between builds. A builder's ranking cache (1.5 MiB at 2^16
   * rows) makes the next build of its service incremental; kept for every service it would make
   * memory grow with services times rows, so only the services changed last keep one, and a build
   * of another service starts from scratch (about 10 ms for 10 backends at 2^16 rows).
   */
  private static final int KEPT_BUILDERS = 32;

  private final Map<String, TableBuilder> builders = lru(KEPT_BUILDERS);

  private static Map<String, TableBuilder> lru(int size) {
    return new java.util.LinkedHashMap<>(16, 0.75f, true) {
      @Override
      protected boolean removeEldestEntry(Map.Entry<String, TableBuilder> eldest) {
        return size() > size;
      }
    };
  }

  /**
   * A service's table at one version, kept as it goes on the wire to current directors: rows of the
   * hops they hold, one byte a cell up to 255 backends, deflated (about 50 KB for 10 backends at
   * 2^16 rows, against 512 KiB as the data plane holds it). The table itself is decoded from it
   * when a caller needs its rows.
   */
  public record Compiled(
      ServiceState service,
      int rowBits,
      ImmutableList<Backend> backends,
      ImmutableIntArray primaryRows,
      int rowsOutOfHops,
      ServiceTable wire) {
    /** The same table without its rows, for a director that holds it already. */
    public ServiceTable reference() {
      return wire.toBuilder()
          .clearBackends()
          .clearRows()
          .clearRowHops()
          .clearCellBytes()
          .clearDeflated()
          .setHasTable(false)
          .build();
    }

    /**
     * The same table for {@code other}, a service state with the same table inputs (a twin of its
     * table group, or this service after a change that moves no row): its rows and backends are
     * this one's, shared, not built again.
     */
    Compiled withService(ServiceState other) {
      return new Compiled(
          other,
          rowBits,
          backends,
          primaryRows,
          rowsOutOfHops,
          header(other)
              .setHasTable(wire.getHasTable())
              .setHealthyBackends(wire.getHealthyBackends())
              .addAllBackends(wire.getBackendsList())
              .setRows(wire.getRows())
              .setRowHops(wire.getRowHops())
              .setCellBytes(wire.getCellBytes())
              .setDeflated(wire.getDeflated())
              .build());
    }

    /** The table, decoded from its wire form (a few milliseconds at 2^16 rows). */
    public RendezvousTable table() {
      return RendezvousTable.restore(
          spec(service, rowBits),
          backends,
          TableRowsCodec.cells(wire, rowBits, ROW_HOPS),
          rowsOutOfHops);
    }
  }

  /**
   * What decides a table: its seed, hops, backends (address, state, eligible) and history. A health
   * report that changes no backend's eligibility, or a change of min_healthy, leaves them as they
   * were; services of one table group with the same inputs have the same table.
   */
  private record Inputs(
      ByteString seed,
      int hopCount,
      TableSpec.Balance balance,
      List<Backend> backends,
      TableHistory history) {
    static Inputs of(ServiceState s) {
      return new Inputs(
          s.getTableSeed(),
          s.getHopCount(),
          tableBalance(s.getBalance()),
          TableCompiler.backends(s.getBackendsList()),
          TableCompiler.history(s));
    }
  }

  /** Every service of {@code state}, compiled; forgets services that are gone. */
  public synchronized ImmutableMap<String, Compiled> compile(ClusterState state) {
    int rowBits = state.getSettings().getRowBits();
    ImmutableMap.Builder<String, Compiled> out = ImmutableMap.builder();
    Map<String, Compiled> next = new HashMap<>();
    // Tables of table groups by their inputs: a service whose twin has one takes it.
    Map<Inputs, Compiled> grouped = new HashMap<>();
    for (ServiceState service : state.getServicesList()) {
      Compiled previous = cache.get(service.getName());
      Inputs inputs = service.getTableGroup().isEmpty() ? null : Inputs.of(service);
      Compiled twin = inputs == null ? null : grouped.get(inputs);
      Compiled compiled;
      boolean sameRows = previous != null && previous.rowBits() == rowBits;
      if (sameRows && previous.service().equals(service)) {
        compiled = previous;
      } else if (sameRows && Inputs.of(previous.service()).equals(Inputs.of(service))) {
        compiled = previous.withService(service);
      } else if (twin != null) {
        compiled = twin.withService(service);
      } else {
        compiled =
            compile(
                builders.computeIfAbsent(service.getName(), n -> new TableBuilder()),
                service,
                rowBits);
      }
      if (inputs != null) {
        grouped.putIfAbsent(inputs, compiled);
      }
      next.put(service.getName(), compiled);
      out.put(service.getName(), compiled);
    }
    cache.clear();
    cache.putAll(next);
    builders.keySet().retainAll(next.keySet());
    return out.build();
  }

  private static Compiled compile(TableBuilder builder, ServiceState service, int rowBits) {
    long start = System.nanoTime();
    RendezvousTable table = build(builder, service, rowBits);
    ServiceTable.Builder wire =
        header(service)
            .setHasTable(true)
            .setHealthyBackends(
                (int) table.backends().stream().filter(Backend::isEligible).count());
    for (Backend b : table.backends()) {
      wire.addBackends(ByteString.copyFrom(b.addressBytes()));
    }
    char[] cells = table.encoded();
    int rowHops = TableRowsCodec.rowHops(cells, ROW_HOPS);
    int cellBytes = TableRowsCodec.cellBytes(table.backends().size());
    wire.setRows(TableRowsCodec.deflate(TableRowsCodec.pack(cells, ROW_HOPS, rowHops, cellBytes)))
        .setRowHops(rowHops)
        .setCellBytes(cellBytes)
        .setDeflated(true);
    log.debug(
        "service {}: table version {} ({} rows, {} backends) compiled in {} ms",
        service.getName(),
        service.getTableVersion(),
        table.rowCount(),
        table.backends().size(),
        (System.nanoTime() - start) / 1_000_000);
    return new Compiled(
        service,
        rowBits,
        table.backends(),
        table.primaryRows(),
        table.rowsOutOfHops(),
        wire.build());
  }

  /** What a service's table says about the service itself, besides its rows and backends. */
  private static ServiceTable.Builder header(ServiceState service) {
    return ServiceTable.newBuilder()
        .setName(service.getName())
        .setVip(service.getVip())
        .setPort(service.getPort())
        .setProtocol(service.getProtocol())
        .setHashFields(service.getHashFields())
        .setEncapsulation(service.getEncapsulation())
        .setTableVersion(service.getTableVersion())
        .setMinHealthy(Math.max(1, service.getMinHealthy()));
  }

  /**
   * The table {@code service} would have, for a change not yet made (a dry run, or the check that a
   * change strands no flow). Built with the service's own builder: the write that usually follows
   * then finds its ranking cache warm with exactly these inputs, so the change's table is built in
   * full once, not twice; a dry run leaves the cache a change away from the real state, which the
   * next build handles incrementally.
   */
  public synchronized RendezvousTable preview(ServiceState service, int rowBits) {
    return build(
        builders.computeIfAbsent(service.getName(), n -> new TableBuilder()), service, rowBits);
  }

  /**
   * The service's table: its backends now, keeping the owners its history names: primaries of
   * retained generations not yet confirmed by their proxies' reports, and flow evidence.
   */
  public static RendezvousTable build(TableBuilder builder, ServiceState service, int rowBits) {
    return builder.build(
        spec(service, rowBits), backends(service.getBackendsList()), history(service));
  }

  private static TableSpec spec(ServiceState service, int rowBits) {
    return TableSpec.builder()
        .seed(service.getTableSeed().toByteArray())
        .rowBits(rowBits)
        .hopCount(service.getHopCount())
        .balance(tableBalance(service.getBalance()))
        .build();
  }

  private static TableSpec.Balance tableBalance(Balance stored) {
    return Services.balance(stored) == Balance.BOUNDED
        ? TableSpec.Balance.BOUNDED
        : TableSpec.Balance.RENDEZVOUS;
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
      out.addGeneration(
          backends(g.getBackendsList()), confirmed, Optional.of(tableBalance(g.getBalance())));
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
                    r.getHealth() != Health.UNHEALTHY,
                    Services.effectiveWeight(r)))
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

  /**
   * {@code table} (as compiled: packed and deflated) in the form a director reads: as it is for one
   * whose Hello says packed_rows; else u16 cells, not deflated, with as many hops a row as the
   * fullest row holds for one that says compact_rows, or four.
   */
  public static ServiceTable forDirector(
      ServiceTable table, int rowBits, boolean packed, boolean compact) {
    if (!table.getHasTable() || packed) {
      return table;
    }
    char[] cells = TableRowsCodec.cells(table, rowBits, ROW_HOPS);
    int rowHops = compact ? TableRowsCodec.rowHops(cells, ROW_HOPS) : ROW_HOPS;
    return table.toBuilder()
        .setRows(ByteString.copyFrom(TableRowsCodec.pack(cells, ROW_HOPS, rowHops, 2)))
        .setRowHops(rowHops)
        .clearCellBytes()
        .clearDeflated()
        .build();
  }
}
