package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import dev.veer.bpf.abi.VeerAbi;
import java.net.InetAddress;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;

/**
 * A forwarding table as the data plane needs it: {@code 2^rowBits} rows, each
 * a list of up to {@link VeerAbi#MAX_HOPS} hops (primary first) given as
 * indices into {@link #backends()}, all of one address family.
 */
public final class HopTable {
  private final int rowBits;
  private final ImmutableList<InetAddress> backends;
  private final int[] hops; // rows * MAX_HOPS, -1 after the last hop of a row

  private HopTable(int rowBits, ImmutableList<InetAddress> backends, int[] hops) {
    this.rowBits = rowBits;
    this.backends = backends;
    this.hops = hops;
  }

  /**
   * @param hops for each row, {@link VeerAbi#MAX_HOPS} entries: backend indices, then -1s
   */
  public static HopTable of(int rowBits, List<? extends InetAddress> backends, int[] hops) {
    checkArgument(rowBits >= VeerAbi.MIN_ROW_BITS && rowBits <= VeerAbi.MAX_ROW_BITS,
        "row bits must be %s..%s, got %s", VeerAbi.MIN_ROW_BITS, VeerAbi.MAX_ROW_BITS, rowBits);
    checkArgument(hops.length == (1 << rowBits) * VeerAbi.MAX_HOPS,
        "expected %s hop entries for %s rows, got %s", (1 << rowBits) * VeerAbi.MAX_HOPS, 1 << rowBits,
        hops.length);
    checkArgument(new HashSet<>(backends).size() == backends.size(), "backends must be distinct");
    checkArgument(backends.stream().map(IpFamily::of).distinct().count() <= 1,
        "all backends of a table must share one address family: %s", backends);
    for (int i = 0; i < hops.length; i++) {
      boolean first = i % VeerAbi.MAX_HOPS == 0;
      int hop = hops[i];
      checkArgument(hop >= -1 && hop < backends.size(), "row %s names backend %s of %s",
          i / VeerAbi.MAX_HOPS, hop, backends.size());
      checkArgument(first || hop == -1 || hops[i - 1] != -1, "row %s has a gap in its hop list",
          i / VeerAbi.MAX_HOPS);
    }
    return new HopTable(rowBits, ImmutableList.copyOf(backends), hops.clone());
  }

  /** The index (into {@link #backends()}) of hop {@code hop} of {@code row}, or -1 if the row has fewer. */
  public int hopIndex(int row, int hop) {
    return hops[row * VeerAbi.MAX_HOPS + hop];
  }

  public int rowBits() {
    return rowBits;
  }

  public int rowCount() {
    return 1 << rowBits;
  }

  public ImmutableList<InetAddress> backends() {
    return backends;
  }

  /** The hops of a row, primary first. */
  public ImmutableList<InetAddress> hops(int row) {
    ImmutableList.Builder<InetAddress> out = ImmutableList.builder();
    for (int i = 0; i < VeerAbi.MAX_HOPS; i++) {
      int hop = hops[row * VeerAbi.MAX_HOPS + i];
      if (hop < 0) {
        break;
      }
      out.add(backends.get(hop));
    }
    return out.build();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof HopTable t && t.rowBits == rowBits && t.backends.equals(backends)
        && Arrays.equals(t.hops, hops);
  }

  @Override
  public int hashCode() {
    return 31 * backends.hashCode() + Arrays.hashCode(hops);
  }
}
