package dev.veer.coordinator.table;

import java.util.Arrays;

/**
 * The top of every row's ranking over a {@link Universe}, kept between builds so that a change of
 * states needs no hashing and a change of addresses hashes only what it must.
 *
 * <p>Row {@code r}'s entry is a prefix of its full ranking: {@code length[r]} universe indices at
 * {@code prefix[r * DEPTH ...]}, best first, and a horizon, a rank key (signed-comparable, see
 * {@link RowPass}) that no address outside the prefix ranks below. The prefix is the whole ranking
 * when {@code length[r] == universe.size()}. Removing an address shortens the prefixes that held it
 * (they stay prefixes, the horizons stay valid); an added address enters the prefixes of the rows
 * where it scores below the horizon. Rows whose prefix no longer tells their hops are ranked in
 * full again when they are built.
 *
 * <p>Mutable, confined to its {@link TableBuilder}; a build writes disjoint rows from several
 * threads.
 */
final class RankCache {
  /** Ranked entries kept per row. */
  static final int DEPTH = 8;

  private final byte[] seed;
  final int rowBits;
  Universe universe;
  final char[] prefix;
  final byte[] length;
  final long[] horizon;

  RankCache(TableSpec spec, Universe universe) {
    this.seed = spec.seed();
    this.rowBits = spec.rowBits();
    this.universe = universe;
    int rows = spec.rowCount();
    this.prefix = new char[rows * DEPTH];
    this.length = new byte[rows];
    this.horizon = new long[rows];
  }

  /** Whether this cache ranks rows as {@code spec} does (the hop count does not matter). */
  boolean matches(TableSpec spec) {
    return rowBits == spec.rowBits() && Arrays.equals(seed, spec.seed());
  }
}
