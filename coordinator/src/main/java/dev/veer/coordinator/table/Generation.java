package dev.veer.coordinator.table;

import java.util.List;

/**
 * One generation's backends as the row derivation sees them: a placement code per {@link Universe}
 * index.
 */
final class Generation {
  static final byte ABSENT = 0;

  /** Healthy and active or filling: may be primary. */
  static final byte ELIGIBLE = 1;

  static final byte DRAINING = 2;

  /** Inactive or unhealthy. */
  static final byte OUT = 3;

  /** Placement code by universe index. */
  final byte[] codes;

  final int size;

  /** Candidates per row: the spec's hop count clamped to the size. */
  final int k;

  final boolean anyEligible;

  private Generation(byte[] codes, int size, int k, boolean anyEligible) {
    this.codes = codes;
    this.size = size;
    this.k = k;
    this.anyEligible = anyEligible;
  }

  static Generation of(List<Backend> backends, Universe universe, int hopCount) {
    byte[] codes = new byte[universe.size()];
    boolean anyEligible = false;
    for (Backend b : backends) {
      // ABSENT is 0, so tier t (0 eligible, 1 draining, 2 out) is code t + 1
      codes[universe.indexOf(b.addressBytes())] = (byte) (b.tier() + 1);
      anyEligible |= b.isEligible();
    }
    return new Generation(codes, backends.size(), Math.min(hopCount, backends.size()), anyEligible);
  }
}
