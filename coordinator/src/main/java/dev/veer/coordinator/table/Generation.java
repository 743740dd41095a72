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

  /** Weight by universe index (0 where absent). */
  final int[] weights;

  /**
   * Whether the eligible backends' weights differ: a rendezvous primary is then the best by
   * weighted score, not the first eligible by rank.
   */
  final boolean weighted;

  /** The largest weight of an eligible backend (0 if none). */
  final int maxEligibleWeight;

  /** In {@link #assigned}: a row whose weighted rendezvous primary the row pass finds and fills. */
  static final char UNKNOWN = Character.MAX_VALUE;

  /**
   * Per row, the primary's index in {@link #assignedUniverse}: bounded balance, and weighted
   * rendezvous (where {@link #holes}, rows still {@link #UNKNOWN} are found by walking them, and
   * filled); null for equal-weight rendezvous, or with nothing eligible.
   */
  char[] assigned;

  /** Whether {@link #assigned} may hold {@link #UNKNOWN} rows (it is filled as rows are built). */
  boolean holes;

  /**
   * Universe index by position in the list of eligible backends (by address) that {@link #assigned}
   * indexes.
   */
  int[] assignedUniverse;

  /**
   * By universe index: whether the backend's flow evidence from after this generation replaced it
   * (its primaries here are no longer assumed to hold flows).
   */
  final boolean[] confirmed;

  private Generation(byte[] codes, int size, int k, int[] weights, boolean[] confirmed) {
    this.codes = codes;
    this.size = size;
    this.k = k;
    this.weights = weights;
    this.confirmed = confirmed;
    int min = Integer.MAX_VALUE;
    int max = 0;
    for (int u = 0; u < codes.length; u++) {
      if (codes[u] == ELIGIBLE) {
        min = Math.min(min, weights[u]);
        max = Math.max(max, weights[u]);
      }
    }
    this.anyEligible = max > 0;
    this.weighted = max > min && max > 0;
    this.maxEligibleWeight = max;
  }

  /** Universe indices of the eligible backends, ascending (that is, by address). */
  int[] eligible() {
    int count = 0;
    for (byte code : codes) {
      count += code == ELIGIBLE ? 1 : 0;
    }
    int[] out = new int[count];
    for (int u = 0, i = 0; u < codes.length; u++) {
      if (codes[u] == ELIGIBLE) {
        out[i++] = u;
      }
    }
    return out;
  }

  static Generation of(
      List<Backend> backends, Set<InetAddress> confirmed, Universe universe, int hopCount) {
    byte[] codes = new byte[universe.size()];
    boolean[] replaced = new boolean[universe.size()];
    int[] weights = new int[universe.size()];
    for (Backend b : backends) {
      int u = universe.indexOf(b.addressBytes());
      // ABSENT is 0, so tier t (0 eligible, 1 draining, 2 out) is code t + 1
      codes[u] = (byte) (b.tier() + 1);
      weights[u] = b.weight();
      replaced[u] = confirmed.contains(b.address());
    }
    return new Generation(
        codes, backends.size(), Math.min(hopCount, backends.size()), weights, replaced);
  }
}
