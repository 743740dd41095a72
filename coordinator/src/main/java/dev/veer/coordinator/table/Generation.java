package dev.veer.coordinator.table;

import java.net.InetAddress;
import java.util.List;
import java.util.Set;

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

  /**
   * By universe index: whether the backend's flow evidence from after this generation replaced it
   * (its primaries here are no longer assumed to hold flows).
   */
  final boolean[] confirmed;

  private Generation(byte[] codes, int size, int k, boolean anyEligible, boolean[] confirmed) {
    this.codes = codes;
    this.size = size;
    this.k = k;
    this.anyEligible = anyEligible;
    this.confirmed = confirmed;
  }

  static Generation of(
      List<Backend> backends, Set<InetAddress> confirmed, Universe universe, int hopCount) {
    byte[] codes = new byte[universe.size()];
    boolean[] replaced = new boolean[universe.size()];
    boolean anyEligible = false;
    for (Backend b : backends) {
      int u = universe.indexOf(b.addressBytes());
      // ABSENT is 0, so tier t (0 eligible, 1 draining, 2 out) is code t + 1
      codes[u] = (byte) (b.tier() + 1);
      anyEligible |= b.isEligible();
      replaced[u] = confirmed.contains(b.address());
    }
    return new Generation(
        codes, backends.size(), Math.min(hopCount, backends.size()), anyEligible, replaced);
  }
}
