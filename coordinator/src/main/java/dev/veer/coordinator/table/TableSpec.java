package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;
import static java.util.Objects.requireNonNull;

import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.RowBits;
import java.util.Arrays;

/**
 * The shape of a forwarding table: its 16-byte seed (the SipHash key of the rendezvous ranking),
 * its size ({@code 2^rowBits} rows), the number of hops per row and how rows are balanced.
 *
 * <p>Immutable. Limits are the data plane's ABI ({@code veer_abi.h}: {@code MIN_ROW_BITS}, {@code
 * MAX_ROW_BITS}, {@code DEFAULT_ROW_BITS}, {@code MAX_HOPS}).
 */
public final class TableSpec {
  /** Length of the table seed in bytes (a SipHash-2-4 key). */
  public static final int SEED_BYTES = 16;

  public static final int MIN_ROW_BITS = VeerAbi.MIN_ROW_BITS;
  public static final int MAX_ROW_BITS = VeerAbi.MAX_ROW_BITS;

  /** GLB's table size, 65,536 rows. */
  public static final int DEFAULT_ROW_BITS = VeerAbi.DEFAULT_ROW_BITS;

  public static final int MIN_HOPS = 1;
  public static final int MAX_HOPS = VeerAbi.MAX_HOPS;

  /** GLB's primary + secondary. */
  public static final int DEFAULT_HOPS = 2;

  /** How a row's primary is chosen among the eligible backends. */
  public enum Balance {
    /**
     * Each row's primary is its best ranked eligible backend: GLB's table when the weights are
     * equal, weighted rendezvous hashing when not. A change moves the fewest rows possible; the
     * busiest backend's share grows with the pool (about 1.2x the mean at 256 backends over 2^16
     * rows).
     */
    RENDEZVOUS,
    /**
     * Every eligible backend is primary of at most {@link #BOUNDED_SLACK} more than its weighted
     * share of rows; a change moves a few more rows than the minimum.
     */
    BOUNDED
  }

  /** The slack of {@link Balance#BOUNDED}: a backend's primary rows stay within 1.05x its share. */
  public static final double BOUNDED_SLACK = 0.05;

  private final byte[] seed;
  private final int rowBits;
  private final int hopCount;
  private final Balance balance;

  private TableSpec(byte[] seed, int rowBits, int hopCount, Balance balance) {
    requireNonNull(seed, "seed");
    checkArgument(
        seed.length == SEED_BYTES,
        "table seed must be exactly %s bytes (a 128-bit SipHash key), got %s bytes",
        SEED_BYTES,
        seed.length);
    RowBits.check(rowBits);
    checkArgument(
        hopCount >= MIN_HOPS && hopCount <= MAX_HOPS,
        "hopCount must be in [%s, %s] (hops per row, primary first), got %s",
        MIN_HOPS,
        MAX_HOPS,
        hopCount);
    this.seed = seed.clone();
    this.rowBits = rowBits;
    this.hopCount = hopCount;
    this.balance = requireNonNull(balance, "balance");
  }

  /** A spec with the given seed and the defaults: 2^16 rows, 2 hops per row, rendezvous. */
  public static TableSpec of(byte[] seed) {
    return new TableSpec(seed, DEFAULT_ROW_BITS, DEFAULT_HOPS, Balance.RENDEZVOUS);
  }

  /**
   * A rendezvous spec.
   *
   * @throws IllegalArgumentException if a value is out of range (see the constants)
   */
  public static TableSpec of(byte[] seed, int rowBits, int hopCount) {
    return new TableSpec(seed, rowBits, hopCount, Balance.RENDEZVOUS);
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A fresh copy of the 16-byte seed. */
  public byte[] seed() {
    return seed.clone();
  }

  public int rowBits() {
    return rowBits;
  }

  public int rowCount() {
    return 1 << rowBits;
  }

  /**
   * Requested hops per row. A table over fewer backends has fewer hops per row, see {@link
   * RendezvousTable#hopCount()}.
   */
  public int hopCount() {
    return hopCount;
  }

  public Balance balance() {
    return balance;
  }

  /** A builder preset with this spec's values. */
  public Builder toBuilder() {
    return new Builder().seed(seed).rowBits(rowBits).hopCount(hopCount).balance(balance);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TableSpec t
        && rowBits == t.rowBits
        && hopCount == t.hopCount
        && balance == t.balance
        && Arrays.equals(seed, t.seed);
  }

  @Override
  public int hashCode() {
    return ((Arrays.hashCode(seed) * 31 + rowBits) * 31 + hopCount) * 31 + balance.hashCode();
  }

  /** Shows the shape; the seed is left out (it decides which client lands where). */
  @Override
  public String toString() {
    return "TableSpec{rows=2^"
        + rowBits
        + ", hops="
        + hopCount
        + ", "
        + balance.name().toLowerCase()
        + "}";
  }

  /** Builder; the seed is required, the rest default to 2^16 rows, 2 hops and rendezvous. */
  public static final class Builder {
    private byte[] seed;
    private int rowBits = DEFAULT_ROW_BITS;
    private int hopCount = DEFAULT_HOPS;
    private Balance balance = Balance.RENDEZVOUS;

    private Builder() {}

    /** The 16-byte table seed; copied. */
    public Builder seed(byte[] seed) {
      this.seed = requireNonNull(seed, "seed").clone();
      return this;
    }

    public Builder rowBits(int rowBits) {
      this.rowBits = rowBits;
      return this;
    }

    public Builder hopCount(int hopCount) {
      this.hopCount = hopCount;
      return this;
    }

    public Builder balance(Balance balance) {
      this.balance = requireNonNull(balance, "balance");
      return this;
    }

    /**
     * @throws IllegalArgumentException if a value is out of range or the seed is missing
     */
    public TableSpec build() {
      checkArgument(seed != null, "table seed not set: call seed(byte[16]) before build()");
      return new TableSpec(seed, rowBits, hopCount, balance);
    }
  }
}
