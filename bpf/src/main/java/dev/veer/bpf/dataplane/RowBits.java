package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import dev.veer.bpf.abi.VeerAbi;

/**
 * The one check of a table's size, 2^rowBits rows, against the data plane's limits (veer_abi.h).
 */
public final class RowBits {
  private RowBits() {}

  /**
   * Returns {@code rowBits} if the data plane can hold a table of 2^rowBits rows, else fails saying
   * why.
   */
  public static int check(int rowBits) {
    checkArgument(
        rowBits >= VeerAbi.MIN_ROW_BITS && rowBits <= VeerAbi.MAX_ROW_BITS,
        "row bits must be %s..%s (a table of 2^%s to 2^%s rows), got %s",
        VeerAbi.MIN_ROW_BITS,
        VeerAbi.MAX_ROW_BITS,
        VeerAbi.MIN_ROW_BITS,
        VeerAbi.MAX_ROW_BITS,
        rowBits);
    return rowBits;
  }
}
