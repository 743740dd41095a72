package dev.veer.coordinator.retention;

import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import java.util.Optional;

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
   * The report in {@code status}, for tables of 2^{@code rowBits} rows; empty if it is for another
   * table size (the cluster's row count just changed) or cannot be read.
   */
  public static Optional<FlowReport> decode(AgentServiceStatus status, int rowBits) {
    if (status.getRows().getGapsCount() > 0 && status.getRows().getRowBits() != rowBits) {
      return Optional.empty();
    }
    try {
      return Optional.of(
          new FlowReport(
              FlowRowsCodec.rows(status.getRows()),
              FlowRowsCodec.flows(status.getRows()),
              status.getDataPlaneVersion()));
    } catch (IllegalArgumentException e) {
      return Optional
          .empty(); // the agent's session refuses such reports; an older entry may hold one
    }
  }
}
