package dev.veer.coordinator.retention;

import com.google.common.collect.ImmutableMap;
import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ServiceState;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What one backend's proxy last reported about one service: the table rows its live flows hash to,
 * how many flows each, and the data-plane version it had seen before reading them.
 *
 * @param rows ascending
 * @param flows per row, in the order of {@code rows}
 */
public record FlowReport(int[] rows, int[] flows, long dataPlaneVersion) {
  public long totalFlows() {
    long sum = 0;
    for (int f : flows) {
      sum += f;
    }
    return sum;
  }

  /**
   * The latest report of each backend of {@code service} whose proxy reports on it, for tables of
   * 2^{@code rowBits} rows, by backend address. Reports for another table size (the cluster's row
   * count just changed) or that cannot be read are left out: those backends count as unreported.
   */
  public static ImmutableMap<ByteString, FlowReport> of(
      List<AgentStatus> agents, ServiceState service, int rowBits) {
    Map<ByteString, FlowReport> out = new HashMap<>();
    for (AgentStatus agent : agents) {
      AgentServiceStatus status =
          agent.getServicesList().stream()
              .filter(s -> s.getService().equals(service.getName()) && s.hasRows())
              .findFirst()
              .orElse(null);
      if (status == null
          || (status.getRows().getGapsCount() > 0 && status.getRows().getRowBits() != rowBits)) {
        continue;
      }
      FlowReport report;
      try {
        report =
            new FlowReport(
                FlowRowsCodec.rows(status.getRows()),
                FlowRowsCodec.flows(status.getRows()),
                status.getDataPlaneVersion());
      } catch (IllegalArgumentException e) {
        continue; // the agent's session refuses such reports; an older registry entry may hold one
      }
      for (String literal : agent.getAddressesList()) {
        ByteString address = Addresses.bytes(InetAddresses.forString(literal));
        for (BackendRecord backend : service.getBackendsList()) {
          if (backend.getAddress().equals(address)) {
            out.put(address, report);
          }
        }
      }
    }
    return ImmutableMap.copyOf(out);
  }
}
