package dev.veer.coordinator.retention;

import com.google.protobuf.ByteString;
import dev.veer.coordinator.table.RendezvousTable;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.FlowEvidence;
import dev.veer.proto.state.v1.Generation;
import dev.veer.proto.state.v1.ServiceState;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The rule that keeps a previous owner in a row for exactly as long as it holds flows there, as a
 * function from a service's stored state and its proxies' reports to its next stored state:
 *
 * <ul>
 *   <li>a backend's <b>evidence</b> becomes the rows of its latest report in which it is not the
 *       primary (there the table lists it anyway); backends that left the service lose theirs;
 *   <li>a report made from a data-plane version at least the one that superseded a generation
 *       <b>confirms</b> its backend in that generation: the evidence now speaks for it, and the
 *       generation's guess (flows in every row it was primary of) no longer does;
 *   <li>a generation in which every backend still in the service is confirmed is <b>dropped</b>.
 * </ul>
 *
 * Only the leader applies it; the result goes to ZooKeeper, so every coordinator builds the same
 * tables from it.
 */
public final class Evidence {
  private Evidence() {}

  /**
   * The service with its evidence and generations brought up to date by {@code reports} (by backend
   * address), or the same instance if nothing changed. {@code table} is the service's current table
   * (only its primaries are read, and those do not depend on the history). A change sets the table
   * version to {@code nextVersion}.
   */
  public static ServiceState update(
      ServiceState service,
      RendezvousTable table,
      Map<ByteString, FlowReport> reports,
      long nextVersion) {
    List<FlowEvidence> evidence = evidence(service, table, reports);
    List<Generation> generations = generations(service, reports);
    if (evidence.equals(service.getEvidenceList())
        && generations.equals(service.getGenerationsList())) {
      return service;
    }
    return service.toBuilder()
        .clearEvidence()
        .addAllEvidence(evidence)
        .clearGenerations()
        .addAllGenerations(generations)
        .setTableVersion(nextVersion)
        .build();
  }

  private static List<FlowEvidence> evidence(
      ServiceState service, RendezvousTable table, Map<ByteString, FlowReport> reports) {
    List<FlowEvidence> out = new ArrayList<>();
    Set<ByteString> present = new HashSet<>();
    for (int b = 0; b < service.getBackendsCount(); b++) {
      ByteString address = service.getBackends(b).getAddress();
      present.add(address);
      FlowReport report = reports.get(address);
      if (report == null) {
        continue;
      }
      int[] kept = new int[report.rows().length];
      int n = 0;
      for (int row : report.rows()) {
        if (table.rowLength(row) == 0 || table.primary(row) != b) {
          kept[n++] = row;
        }
      }
      if (n > 0) {
        out.add(
            FlowEvidence.newBuilder()
                .setAddress(address)
                .setRows(
                    FlowRowsCodec.encode(table.rowBits(), java.util.Arrays.copyOf(kept, n), null))
                .build());
      }
    }
    // Backends without a report keep what they had, while they are in the service.
    Set<ByteString> reported = new HashSet<>();
    out.forEach(e -> reported.add(e.getAddress()));
    for (FlowEvidence e : service.getEvidenceList()) {
      if (present.contains(e.getAddress())
          && !reports.containsKey(e.getAddress())
          && e.getRows().getRowBits() == table.rowBits()) {
        out.add(e);
      }
    }
    out.sort(
        Comparator.comparing(
            FlowEvidence::getAddress, ByteString.unsignedLexicographicalComparator()));
    return out;
  }

  private static List<Generation> generations(
      ServiceState service, Map<ByteString, FlowReport> reports) {
    Set<ByteString> present = new HashSet<>();
    service.getBackendsList().forEach(b -> present.add(b.getAddress()));
    List<Generation> out = new ArrayList<>();
    for (Generation g : service.getGenerationsList()) {
      long version = supersededVersion(service, g);
      Set<ByteString> confirmed = new LinkedHashSet<>(g.getConfirmedList());
      boolean open = false;
      for (BackendRecord b : g.getBackendsList()) {
        if (!present.contains(b.getAddress())) {
          continue;
        }
        FlowReport report = reports.get(b.getAddress());
        if (report != null && report.dataPlaneVersion() >= version) {
          confirmed.add(b.getAddress());
        }
        open |= !confirmed.contains(b.getAddress());
      }
      if (open) {
        out.add(
            confirmed.size() == g.getConfirmedCount()
                ? g
                : g.toBuilder().clearConfirmed().addAllConfirmed(confirmed).build());
      }
    }
    return out;
  }

  /**
   * The state version that superseded {@code g}; for generations stored before versions were, the
   * service's table version, which is at least that.
   */
  static long supersededVersion(ServiceState service, Generation g) {
    return g.getSupersededVersion() != 0 ? g.getSupersededVersion() : service.getTableVersion();
  }
}
