package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkState;
import static dev.veer.coordinator.table.Generation.ABSENT;
import static dev.veer.coordinator.table.Generation.DRAINING;
import static dev.veer.coordinator.table.Generation.ELIGIBLE;
import static dev.veer.coordinator.table.Generation.OUT;
import static dev.veer.coordinator.table.RankCache.DEPTH;

import java.util.Arrays;

/**
 * One build's work over the rows: bring each row's {@link RankCache} entry up to date, derive the
 * row's hops from it, and write them to the table's cells. Rows are independent, so disjoint ranges
 * may be filled from several threads, each with its own {@link #fill} call.
 *
 * <p>The hops of a row are a function of the row's full ranking over the universe and of the
 * generations only; the cache decides how much of the ranking has to be computed, never the result.
 */
final class RowPass {
  /** How a row's cache entry is brought up to date before its hops are derived. */
  enum Mode {
    /** Rank every row afresh. */
    FULL,
    /** The universe changed: map the cached prefixes to it, drop removed and merge added ones. */
    UPDATE,
    /** The universe is unchanged: the cached prefixes are current. */
    DERIVE
  }

  private final Mode mode;
  private final RowHasher hasher;
  private final Universe universe;
  private final RankCache cache;

  /** Newest first: the current generation, then the previous ones. */
  private final Generation[] generations;

  /** Universe index to index in the current backend list, -1 if not in it. */
  private final int[] currentIndex;

  /** Per row, the current backends whose flow evidence names it. */
  private final Owners owners;

  private final char[] cells;

  /** UPDATE: old universe index to new, -1 if removed. */
  private final int[] remap;

  /** UPDATE: new universe indices of added addresses, ascending. */
  private final int[] added;

  /** UPDATE: addresses of the old universe that remain. */
  private final int keptSize;

  /**
   * Generations that need every row's ranking, as a bit mask (bit g for generation g): every one
   * that has backends but a previous one whose primaries are assigned (bounded balance, or weighted
   * rendezvous known from an earlier build; rows still unknown there are added per row).
   */
  private final int ranked;

  /** Generations whose assigned primaries have rows still to find, as a bit mask. */
  private final int withHoles;

  RowPass(
      Mode mode,
      RowHasher hasher,
      RankCache cache,
      Generation[] generations,
      int[] currentIndex,
      Owners owners,
      char[] cells,
      int[] remap,
      int[] added,
      int keptSize) {
    this.mode = mode;
    this.hasher = hasher;
    this.universe = cache.universe;
    this.cache = cache;
    this.generations = generations;
    this.currentIndex = currentIndex;
    this.owners = owners;
    this.cells = cells;
    this.remap = remap;
    this.added = added;
    this.keptSize = keptSize;
    int mask = 0;
    int holes = 0;
    for (int g = 0; g < generations.length; g++) {
      if (generations[g].size > 0 && (g == 0 || generations[g].assigned == null)) {
        mask |= 1 << g;
      }
      if (generations[g].holes) {
        holes |= 1 << g;
      }
    }
    this.ranked = mask;
    this.withHoles = holes;
  }

  /** What a fill found: rows ranked in full, and rows that could not keep every owner. */
  record Counts(int reranked, int outOfHops) {
    static final Counts ZERO = new Counts(0, 0);

    Counts plus(Counts other) {
      return new Counts(reranked + other.reranked, outOfHops + other.outOfHops);
    }
  }

  /** Fills rows {@code [from, to)}. */
  Counts fill(int from, int to) {
    Worker w = new Worker();
    for (int row = from; row < to; row++) {
      switch (mode) {
        case FULL -> {
          w.scoreAll(row);
          w.keepPrefix(row);
        }
        case UPDATE -> w.update(row);
        case DERIVE -> {}
      }
      w.derive(row);
    }
    return new Counts(w.reranked, w.outOfHops);
  }

  /** Whether (key a, universe index ia) ranks before (key b, universe index ib). */
  private static boolean before(long a, int ia, long b, int ib) {
    return a < b || (a == b && ia < ib);
  }

  /** Scratch space of one thread. */
  private final class Worker {
    /** SipHash state after the current row's seed. */
    private final long[] rowState = new long[4];

    private int absorbedRow = -1;

    /**
     * Rank keys by universe index of {@link #scoredRow}, made signed-comparable (lower first).
     * Allocated when first needed: a derive-only pass rarely needs it.
     */
    private long[] keys;

    private int scoredRow = -1;
    private int[] heap;
    private final long[] prefixKeys = new long[DEPTH];

    // What the derivation has learnt of the row so far, by generation.
    private final int[] seen = new int[generations.length];
    private final int[] first = new int[generations.length];
    private final int[] firstEligible = new int[generations.length];
    private final int[] firstDrainingCandidate = new int[generations.length];

    /** Weighted rendezvous: the best eligible backend so far and its weighted score. */
    private final int[] bestWeighted = new int[generations.length];

    private final double[] bestWeightedScore = new double[generations.length];

    /** The row being derived. */
    private int row;

    /** {@code -ln(1 - x)} of the backend being accepted, computed once for all generations. */
    private double acceptedLog;

    private int acceptedLogOf = -1;

    /** The current generation's candidates: its first k backends by rank. */
    private final int[] candidates = new int[TableSpec.MAX_HOPS];

    /** Generations still short of what the row needs from them. */
    private int pending;

    private final int[] base = new int[TableSpec.MAX_HOPS];
    private final int[] hops = new int[TableSpec.MAX_HOPS];

    int reranked;
    int outOfHops;

    private void absorb(int row) {
      if (absorbedRow != row) {
        hasher.absorbRowSeed(hasher.rowSeed(row), rowState);
        absorbedRow = row;
      }
    }

    private long score(int u) {
      long[] s = rowState;
      long h =
          universe.ipv6
              ? RowHasher.scoreV6(s[0], s[1], s[2], s[3], universe.word0[u], universe.word1[u])
              : RowHasher.finalBlock(s[0], s[1], s[2], s[3], universe.word0[u]);
      return RowHasher.rankKey(h) ^ Long.MIN_VALUE;
    }

    /** keys[u] = the rank key of every universe address in {@code row}: the hot loop. */
    void scoreAll(int row) {
      int n = universe.size();
      if (keys == null) {
        keys = new long[n];
      }
      absorb(row);
      long v0 = rowState[0];
      long v1 = rowState[1];
      long v2 = rowState[2];
      long v3 = rowState[3];
      long[] w0 = universe.word0;
      if (universe.ipv6) {
        long[] w1 = universe.word1;
        for (int u = 0; u < n; u++) {
          keys[u] =
              Long.reverseBytes(RowHasher.scoreV6(v0, v1, v2, v3, w0[u], w1[u])) ^ Long.MIN_VALUE;
        }
      } else {
        for (int u = 0; u < n; u++) {
          keys[u] = Long.reverseBytes(RowHasher.finalBlock(v0, v1, v2, v3, w0[u])) ^ Long.MIN_VALUE;
        }
      }
      scoredRow = row;
    }

    /** Stores the top {@link RankCache#DEPTH} of the scored row in the cache. */
    void keepPrefix(int row) {
      int n = universe.size();
      int d = Math.min(DEPTH, n);
      int at = row * DEPTH;
      char[] prefix = cache.prefix;
      long[] top = prefixKeys;
      int filled = 0;
      for (int u = 0; u < n; u++) {
        long key = keys[u];
        int pos;
        if (filled < d) {
          pos = filled++;
        } else if (key < top[d - 1]) {
          pos = d - 1;
        } else {
          continue; // an equal key from a higher index ranks after
        }
        while (pos > 0 && key < top[pos - 1]) {
          top[pos] = top[pos - 1];
          prefix[at + pos] = prefix[at + pos - 1];
          pos--;
        }
        top[pos] = key;
        prefix[at + pos] = (char) u;
      }
      cache.length[row] = (byte) d;
      cache.horizon[row] = top[d - 1];
    }

    /**
     * Brings the row's prefix from the old universe to the new one: removed addresses leave it (it
     * stays a prefix, and the horizon stays valid), added ones enter it where they rank before the
     * horizon or the prefix is the whole ranking.
     */
    void update(int row) {
      char[] prefix = cache.prefix;
      int at = row * DEPTH;
      int len = cache.length[row];
      int kept = 0;
      for (int i = 0; i < len; i++) {
        int u = remap[prefix[at + i]];
        if (u >= 0) {
          prefix[at + kept++] = (char) u;
        }
      }
      len = kept;
      boolean keysKnown = false;
      int size = keptSize;
      for (int j = 0; j < added.length; j++, size++) {
        int y = added[j];
        absorb(row);
        long key = score(y);
        boolean complete = len == size;
        if (!complete && key >= cache.horizon[row]) {
          continue; // unranked addresses may come before it (an equal key too: ties go by address)
        }
        if (!keysKnown) {
          for (int i = 0; i < len; i++) {
            prefixKeys[i] = score(prefix[at + i]);
          }
          keysKnown = true;
        }
        int pos = len;
        while (pos > 0 && before(key, y, prefixKeys[pos - 1], prefix[at + pos - 1])) {
          pos--;
        }
        if (pos == DEPTH) {
          cache.horizon[row] = key; // behind a full, complete prefix: the only address left out
          continue;
        }
        if (len == DEPTH) {
          cache.horizon[row] = prefixKeys[DEPTH - 1]; // the last drops out
        }
        len = Math.min(len + 1, DEPTH);
        for (int i = len - 1; i > pos; i--) {
          prefix[at + i] = prefix[at + i - 1];
          prefixKeys[i] = prefixKeys[i - 1];
        }
        prefix[at + pos] = (char) y;
        prefixKeys[pos] = key;
      }
      cache.length[row] = (byte) len;
    }

    /** Derives the row's hops, from the cached prefix if it tells them, and writes them. */
    void derive(int row) {
      this.row = row;
      acceptedLogOf = -1;
      reset();
      int at = row * DEPTH;
      int len = cache.length[row];
      boolean known = false;
      for (int i = 0; i < len && !known; i++) {
        known = accept(cache.prefix[at + i]);
      }
      if (!known) {
        if (scoredRow != row) {
          scoreAll(row);
          keepPrefix(row);
        }
        reranked++;
        reset();
        walkFullRanking();
      }
      record(row);
      write(row);
    }

    /** Fills the row's primary where a generation's assigned primaries had it unknown. */
    private void record(int row) {
      for (int mask = withHoles; mask != 0; mask &= mask - 1) {
        int g = Integer.numberOfTrailingZeros(mask);
        Generation gen = generations[g];
        if (gen.assigned[row] == Generation.UNKNOWN) {
          gen.assigned[row] = (char) Arrays.binarySearch(gen.assignedUniverse, primary(g));
        }
      }
    }

    /** Whether {@code gen}'s primary of the row being derived is known without a walk. */
    private boolean assignedHere(Generation gen) {
      return gen.assigned != null && gen.assigned[row] != Generation.UNKNOWN;
    }

    private void reset() {
      pending = ranked;
      for (int mask = withHoles; mask != 0; mask &= mask - 1) {
        int g = Integer.numberOfTrailingZeros(mask);
        if (generations[g].assigned[row] == Generation.UNKNOWN) {
          pending |= 1 << g;
        }
      }
      for (int g = 0; g < generations.length; g++) {
        seen[g] = 0;
        first[g] = -1;
        firstEligible[g] = -1;
        firstDrainingCandidate[g] = -1;
        bestWeighted[g] = -1;
      }
    }

    /** The rank key of {@code u} in the row being derived. */
    private long rankKey(int u) {
      if (scoredRow == row) {
        return keys[u];
      }
      absorb(row);
      return score(u);
    }

    /**
     * {@code -ln(1 - x)} of {@code u} in this row, where {@code x} in [0, 1) is its rank key's
     * position among all keys; divided by a weight, the weighted rendezvous score, lower first. For
     * equal weights its order is the rank order.
     */
    private double logScore(int u) {
      if (acceptedLogOf != u) {
        double x = ((rankKey(u) ^ Long.MIN_VALUE) >>> 11) * 0x1.0p-53;
        acceptedLog = -StrictMath.log1p(-x);
        acceptedLogOf = u;
      }
      return acceptedLog;
    }

    /**
     * Takes the next backend of the row's ranking; returns whether every generation now has what
     * the row needs from it: its primary, and for the current generation its first k backends.
     */
    private boolean accept(int u) {
      int mask = pending;
      while (mask != 0) {
        int g = Integer.numberOfTrailingZeros(mask);
        mask &= mask - 1;
        Generation gen = generations[g];
        byte code = gen.codes[u];
        if (code == ABSENT) {
          continue;
        }
        int rank = seen[g]++;
        if (rank == 0) {
          first[g] = u;
        }
        if (g == 0 && rank < gen.k) {
          candidates[rank] = u;
        }
        if (code == ELIGIBLE) {
          if (firstEligible[g] < 0) {
            firstEligible[g] = u;
          }
        } else if (code == DRAINING && rank < gen.k && firstDrainingCandidate[g] < 0) {
          firstDrainingCandidate[g] = u;
        }
        boolean primaryKnown;
        if (assignedHere(gen)) {
          primaryKnown = true;
        } else if (gen.weighted) {
          primaryKnown = weighWith(g, gen, u, code);
        } else {
          primaryKnown = firstEligible[g] >= 0;
        }
        boolean done =
            gen.anyEligible ? primaryKnown && (g != 0 || rank + 1 >= gen.k) : rank + 1 >= gen.k;
        if (done) {
          pending &= ~(1 << g);
        }
      }
      return pending == 0;
    }

    /**
     * Weighted rendezvous: takes {@code u} (the next by rank) into generation {@code g}'s best, and
     * returns whether no backend ranked after it can beat that best any more: their scores are no
     * lower than {@code u}'s, and the heaviest weight cannot bring them below.
     */
    private boolean weighWith(int g, Generation gen, int u, byte code) {
      double log = logScore(u);
      if (code == ELIGIBLE) {
        double score = log / gen.weights[u];
        if (bestWeighted[g] < 0 || score < bestWeightedScore[g]) {
          bestWeighted[g] = u;
          bestWeightedScore[g] = score;
        }
      }
      return bestWeighted[g] >= 0 && log / gen.maxEligibleWeight >= bestWeightedScore[g];
    }

    /** Feeds the scored row's whole ranking, in order, until the derivation has what it needs. */
    private void walkFullRanking() {
      int n = universe.size();
      if (heap == null) {
        heap = new int[n];
      }
      for (int i = 0; i < n; i++) {
        heap[i] = i;
      }
      for (int i = n / 2 - 1; i >= 0; i--) {
        siftDown(i, n);
      }
      int size = n;
      boolean known = false;
      while (!known && size > 0) {
        int u = heap[0];
        heap[0] = heap[--size];
        siftDown(0, size);
        known = accept(u);
      }
      // The whole ranking seen: a weighted best is final however far it was from the threshold.
      for (int mask = pending; mask != 0; mask &= mask - 1) {
        int g = Integer.numberOfTrailingZeros(mask);
        if (bestWeighted[g] >= 0 && (g != 0 || seen[g] >= generations[g].k)) {
          pending &= ~(1 << g);
        }
      }
      checkState(pending == 0, "ranking exhausted before every generation was placed");
    }

    private void siftDown(int i, int size) {
      int u = heap[i];
      while (true) {
        int child = 2 * i + 1;
        if (child >= size) {
          break;
        }
        int c = heap[child];
        if (child + 1 < size && before(keys[heap[child + 1]], heap[child + 1], keys[c], c)) {
          c = heap[++child];
        }
        if (!before(keys[c], c, keys[u], u)) {
          break;
        }
        heap[i] = c;
        i = child;
      }
      heap[i] = u;
    }

    /** The primary generation {@code g} had in this row (the generation has backends). */
    private int primary(int g) {
      Generation gen = generations[g];
      if (gen.anyEligible) {
        if (assignedHere(gen)) {
          return gen.assignedUniverse[gen.assigned[row]];
        }
        return gen.weighted ? bestWeighted[g] : firstEligible[g];
      }
      return firstDrainingCandidate[g] >= 0 ? firstDrainingCandidate[g] : first[g];
    }

    /**
     * Writes the row: the current generation's primary; then the backends that may own flows in the
     * row and are still in the current list, while there is room: each previous generation's
     * primary not yet replaced by evidence, newest first, then those whose evidence names the row,
     * by address; then the current generation's other candidates, up to the larger of k and what
     * retention needs. A row that has no room for every owner is counted.
     */
    private void write(int row) {
      Generation current = generations[0];
      int k = current.k;
      int n = arrangeCandidates(current, k);
      hops[0] = base[0];
      int len = 1;
      boolean full = false;
      for (int g = 1; g < generations.length; g++) {
        Generation gen = generations[g];
        if (gen.size == 0) {
          continue;
        }
        int p = primary(g);
        if (current.codes[p] != ABSENT && !gen.confirmed[p] && !contains(hops, len, p)) {
          if (len < TableSpec.MAX_HOPS) {
            hops[len++] = p;
          } else {
            full = true;
          }
        }
      }
      for (int i = 0, owned = owners.count(row); i < owned; i++) {
        int u = owners.get(row, i);
        if (!contains(hops, len, u)) {
          if (len < TableSpec.MAX_HOPS) {
            hops[len++] = u;
          } else {
            full = true;
          }
        }
      }
      if (full) {
        outOfHops++;
      }
      int rowLength = Math.max(k, len);
      for (int i = 1; i < n && len < rowLength; i++) {
        if (!contains(hops, len, base[i])) {
          hops[len++] = base[i];
        }
      }
      int at = row * TableSpec.MAX_HOPS;
      for (int i = 0; i < len; i++) {
        cells[at + i] = (char) (currentIndex[hops[i]] + 1);
      }
    }

    /**
     * base[0..k) = the current generation's hops by the state rules: its primary if some backend is
     * eligible, then its first k backends by rank but that one, stably ordered by placement code,
     * up to k in all. With equal weights and rendezvous balance the primary is the first eligible
     * by rank: the first k by rank ordered by placement, or, if none of them is eligible, the best
     * ranked eligible one followed by all of them but the last.
     */
    private int arrangeCandidates(Generation current, int k) {
      int n = 0;
      int primary = current.anyEligible ? primary(0) : -1;
      if (primary >= 0) {
        base[n++] = primary;
      }
      for (byte code = ELIGIBLE; code <= OUT; code++) {
        for (int i = 0; i < k && n < k; i++) {
          if (current.codes[candidates[i]] == code && candidates[i] != primary) {
            base[n++] = candidates[i];
          }
        }
      }
      return n;
    }
  }

  private static boolean contains(int[] values, int length, int value) {
    for (int i = 0; i < length; i++) {
      if (values[i] == value) {
        return true;
      }
    }
    return false;
  }
}
