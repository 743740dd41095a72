package dev.veer.proto;

import dev.veer.proto.types.v1.FlowRows;

/** Reads and writes {@link FlowRows}: ascending rows as gaps, with optional counts. */
public final class FlowRowsCodec {
  /** Most rows a table has (2^20, the largest row count a cluster may use). */
  public static final int MAX_ROW_BITS = 20;

  private FlowRowsCodec() {}

  /**
   * {@code rows} (ascending, distinct) of a table of 2^{@code rowBits} rows, with {@code flows} per
   * row or, when null, without counts.
   */
  public static FlowRows encode(int rowBits, int[] rows, int[] flows) {
    if (flows != null && flows.length != rows.length) {
      throw new IllegalArgumentException(
          "a count per row: " + rows.length + " rows, " + flows.length + " counts");
    }
    FlowRows.Builder out = FlowRows.newBuilder().setRowBits(rowBits);
    int previous = 0;
    for (int i = 0; i < rows.length; i++) {
      if (rows[i] < previous || (i > 0 && rows[i] == previous) || rows[i] >= 1 << rowBits) {
        throw new IllegalArgumentException(
            "rows must ascend within 0.." + ((1 << rowBits) - 1) + ": " + rows[i]);
      }
      out.addGaps(rows[i] - previous);
      previous = rows[i];
      if (flows != null) {
        out.addFlows(flows[i]);
      }
    }
    return out.build();
  }

  /**
   * The rows of {@code message}, ascending.
   *
   * @throws IllegalArgumentException if they do not ascend, leave the table, or the counts do not
   *     match them: a report the coordinator must refuse
   */
  public static int[] rows(FlowRows message) {
    int bits = message.getRowBits();
    if (message.getGapsCount() > 0 && (bits < 1 || bits > MAX_ROW_BITS)) {
      throw new IllegalArgumentException("row_bits must be 1.." + MAX_ROW_BITS + ", got " + bits);
    }
    if (message.getFlowsCount() != 0 && message.getFlowsCount() != message.getGapsCount()) {
      throw new IllegalArgumentException(
          message.getGapsCount() + " rows but " + message.getFlowsCount() + " flow counts");
    }
    int[] rows = new int[message.getGapsCount()];
    long row = 0;
    for (int i = 0; i < rows.length; i++) {
      long gap = Integer.toUnsignedLong(message.getGaps(i));
      if (i > 0 && gap == 0) {
        throw new IllegalArgumentException("row " + row + " listed twice");
      }
      row += gap;
      if (row >= 1L << bits) {
        throw new IllegalArgumentException(
            "row " + row + " is beyond a table of 2^" + bits + " rows");
      }
      rows[i] = (int) row;
    }
    return rows;
  }

  /** The flows per row of {@code message}, in the order of {@link #rows}; 1 each without counts. */
  public static int[] flows(FlowRows message) {
    int[] flows = new int[message.getGapsCount()];
    for (int i = 0; i < flows.length; i++) {
      flows[i] = message.getFlowsCount() == 0 ? 1 : message.getFlows(i);
    }
    return flows;
  }
}
