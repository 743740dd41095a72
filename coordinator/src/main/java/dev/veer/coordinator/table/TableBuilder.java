package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;
import static java.util.Objects.requireNonNull;

import com.google.common.collect.ImmutableList;
import com.google.common.net.InetAddresses;
import com.google.common.primitives.Ints;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Builds {@link RendezvousTable}s by GLB's rendezvous hashing, keeping the primaries of earlier
 * generations in the rows so that several backends may change at once.
 *
 * <p><b>Ranking.</b> In every row each backend gets a score from {@link RowHasher}, whatever its
 * state, so a backend keeps the rows it ranks high in across state changes.
 *
 * <p><b>A generation's hops.</b> A row's candidates in a backend list are its first {@code k =
 * min(hopCount, backends)} backends by rank, stably ordered by placement: eligible ({@link
 * Backend#isEligible() healthy} and active or filling), then draining, then inactive or unhealthy.
 * If no candidate is eligible but some backend is, the best ranked eligible backend goes first and
 * the last candidate is dropped. The first of these hops is the list's primary for the row. With
 * every backend active these are GLB's primary and secondary (for two hops).
 *
 * <p><b>Retention.</b> Given previous generations (each a full backend list, newest first), a row
 * lists the current primary; then, newest first, the primary each previous generation had for the
 * row if that backend is still in the current list; then the current list's other hops, without
 * repeats, up to {@code max(k, needed)} hops but never more than {@link TableSpec#MAX_HOPS}, newer
 * generations winning when retention needs more. Every flow a retained generation placed thus stays
 * reachable by second chance forwarding, however many backends changed between generations.
 *
 * <p><b>Determinism.</b> The table is a function of the spec, the current list (whose order gives
 * the backend indices) and the generations' contents (their order of backends is irrelevant): every
 * replica builds the same cells from the same inputs, whatever it built before.
 *
 * <p><b>Cost.</b> A builder keeps, per row, the top {@value RankCache#DEPTH} of the ranking over
 * the addresses of all generations. A build whose addresses are those of the previous build (any
 * change of states, health, hop count or retained generations) hashes nothing, except rows whose
 * kept prefix does not reach far enough (say, all of its backends inactive), which are ranked in
 * full. A few added addresses cost one score per row each; removed ones cost nothing. Otherwise, or
 * with another seed or row count, every row is ranked afresh. Rows are built in parallel chunks on
 * the common fork-join pool.
 *
 * <p>Not thread-safe in the sense of concurrent builds sharing the cache: {@link #build} is
 * synchronized.
 */
public final class TableBuilder {
  private static final Logger log = LoggerFactory.getLogger(TableBuilder.class);

  /** Most previous generations a build takes (retention never needs more than 3 distinct). */
  public static final int MAX_PREVIOUS_GENERATIONS = 8;

  /** Rows per parallel work item. */
  private static final int CHUNK_ROWS = 1 << 10;

  /** The ranking kept from the last build, or null. */
  private RankCache cache;

  /** The primaries of the last build's generations, where assigned or recorded. */
  private Map<AssignmentKey, Primaries> assignments = Map.of();

  public TableBuilder() {}

  /**
   * Builds the table for {@code spec} over {@code current}, keeping the primaries of {@code
   * previousGenerations} (newest first) where they are still in {@code current}. A backend's index
   * in {@code current} is its id in the table. An empty current list gives a table whose rows have
   * no hops.
   *
   * @throws IllegalArgumentException if a list mixes IPv4 and IPv6 or names an address twice, if
   *     the generations are not all of one family, if there are more than {@link
   *     RendezvousTable#MAX_BACKENDS} distinct addresses or more than {@link
   *     #MAX_PREVIOUS_GENERATIONS} previous generations
   */
  public RendezvousTable build(
      TableSpec spec, List<Backend> current, List<? extends List<Backend>> previousGenerations) {
    return build(spec, current, TableHistory.ofGenerations(previousGenerations));
  }

  /**
   * Builds the table for {@code spec} over {@code current}, keeping as later hops, in each row, the
   * backends {@code history} says may still own flows there: the primaries of previous generations
   * not yet replaced by evidence, newest first, then the backends whose evidence names the row, by
   * address. Backends no longer in {@code current} are not kept. A row holds at most {@link
   * TableSpec#MAX_HOPS}; rows that cannot keep every such backend are counted in {@link
   * RendezvousTable#rowsOutOfHops()}.
   *
   * @throws IllegalArgumentException as {@link #build(TableSpec, List, List)}, or if evidence names
   *     a row beyond the table
   */
  public synchronized RendezvousTable build(
      TableSpec spec, List<Backend> current, TableHistory history) {
    requireNonNull(spec, "spec");
    ImmutableList<Backend> now = ImmutableList.copyOf(current);
    List<TableHistory.PriorGeneration> previousGenerations = history.generations();
    checkArgument(
        previousGenerations.size() <= MAX_PREVIOUS_GENERATIONS,
        "at most %s previous generations, got %s",
        MAX_PREVIOUS_GENERATIONS,
        previousGenerations.size());
    List<ImmutableList<Backend>> generations = new ArrayList<>();
    generations.add(now);
    validate(now, "");
    for (int g = 0; g < previousGenerations.size(); g++) {
      ImmutableList<Backend> previous = previousGenerations.get(g).backends();
      validate(previous, "previous generation #" + (g + 1) + ": ");
      generations.add(previous);
    }
    checkOneFamily(generations);
    history
        .evidence()
        .forEach(
            (address, rows) ->
                checkArgument(
                    rows.last() < spec.rowCount(),
                    "evidence for %s names row %s, beyond the table's %s rows",
                    InetAddresses.toAddrString(address),
                    rows.last(),
                    spec.rowCount()));

    int rows = spec.rowCount();
    char[] cells = new char[rows * RendezvousTable.ROW_CELLS];
    if (now.isEmpty()) {
      return new RendezvousTable(spec, now, 0, cells, 0);
    }
    long start = System.nanoTime();
    Universe universe = Universe.of(generations);
    checkArgument(
        universe.size() <= RendezvousTable.MAX_BACKENDS,
        "the generations name %s distinct addresses, more than %s",
        universe.size(),
        RendezvousTable.MAX_BACKENDS);
    Generation[] placed = new Generation[generations.size()];
    placed[0] = Generation.of(now, Set.of(), universe, spec.hopCount());
    for (int g = 1; g < placed.length; g++) {
      placed[g] =
          Generation.of(
              generations.get(g),
              previousGenerations.get(g - 1).confirmed(),
              universe,
              spec.hopCount());
    }
    TableSpec.Balance[] balances = new TableSpec.Balance[placed.length];
    balances[0] = spec.balance();
    for (int g = 1; g < placed.length; g++) {
      balances[g] = previousGenerations.get(g - 1).balance().orElse(spec.balance());
    }
    Map<AssignmentKey, Primaries> primaries = assign(spec, universe, placed, balances);
    int[] currentIndex = new int[universe.size()];
    Arrays.fill(currentIndex, -1);
    for (int i = 0; i < now.size(); i++) {
      currentIndex[universe.indexOf(now.get(i).addressBytes())] = i;
    }

    // Invalid until this build completes: a failed build leaves no half-updated cache behind.
    RankCache ranks = cache;
    cache = null;
    RowPass.Mode mode;
    int[] remap = null;
    int[] added = null;
    int keptSize = 0;
    if (ranks == null || !ranks.matches(spec) || ranks.universe.ipv6 != universe.ipv6) {
      mode = RowPass.Mode.FULL;
    } else if (ranks.universe.sameAddresses(universe)) {
      mode = RowPass.Mode.DERIVE;
    } else {
      List<Integer> newcomers = new ArrayList<>();
      remap = ranks.universe.mapTo(universe, newcomers);
      added = Ints.toArray(newcomers);
      keptSize = universe.size() - added.length;
      int removed = ranks.universe.size() - keptSize;
      // Each added address costs a score per row; many removals leave short prefixes behind.
      boolean cheap = added.length * 4 <= universe.size() && removed * 2 <= ranks.universe.size();
      mode = cheap ? RowPass.Mode.UPDATE : RowPass.Mode.FULL;
    }
    if (mode == RowPass.Mode.FULL) {
      ranks = new RankCache(spec, universe);
    } else {
      ranks.universe = universe;
    }

    RowPass pass =
        new RowPass(
            mode,
            RowHasher.of(spec),
            ranks,
            placed,
            currentIndex,
            Owners.of(history.evidence(), universe, currentIndex, rows),
            cells,
            remap,
            added,
            keptSize);
    RowPass.Counts counts;
    if (rows >= 2 * CHUNK_ROWS && Runtime.getRuntime().availableProcessors() > 1) {
      counts =
          IntStream.range(0, rows / CHUNK_ROWS)
              .parallel()
              .mapToObj(c -> pass.fill(c * CHUNK_ROWS, (c + 1) * CHUNK_ROWS))
              .reduce(RowPass.Counts.ZERO, RowPass.Counts::plus);
    } else {
      counts = pass.fill(0, rows);
    }
    cache = ranks;
    assignments = primaries;
    int reranked = counts.reranked();

    RendezvousTable table =
        new RendezvousTable(
            spec, now, Math.min(spec.hopCount(), now.size()), cells, counts.outOfHops());
    if (log.isDebugEnabled()) {
      log.debug(
          "built {} over {} addresses in {} generations in {} ms ({}, {} rows ranked in full)",
          table,
          universe.size(),
          generations.size(),
          (System.nanoTime() - start) / 1_000_000.0,
          mode,
          mode == RowPass.Mode.FULL ? rows : reranked);
    }
    return table;
  }

  /**
   * Gives generations their primaries where they need no walk of the rows: bounded balance (an
   * assignment, computed here or reused), and weighted rendezvous, reused from the last build, or
   * derived from the primaries of a list that had more backends or heavier weights (a drain, a
   * removal, a lighter weight: only the rows whose primary went are {@link Generation#UNKNOWN}), or
   * else all unknown; the row pass fills the unknown rows. Returns the primaries to keep for the
   * next build, complete once the pass is.
   */
  private Map<AssignmentKey, Primaries> assign(
      TableSpec spec, Universe universe, Generation[] placed, TableSpec.Balance[] balances) {
    Map<AssignmentKey, Primaries> next = new HashMap<>();
    RowHasher hasher = null;
    for (int g = 0; g < placed.length; g++) {
      Generation generation = placed[g];
      boolean bounded = balances[g] == TableSpec.Balance.BOUNDED;
      if (!generation.anyEligible || (!bounded && !generation.weighted)) {
        continue;
      }
      int[] eligible = generation.eligible();
      byte[][] addresses = new byte[eligible.length][];
      int[] weights = new int[eligible.length];
      for (int i = 0; i < eligible.length; i++) {
        addresses[i] = universe.address(eligible[i]);
        weights[i] = generation.weights[eligible[i]];
      }
      AssignmentKey key = AssignmentKey.of(spec, balances[g], addresses, weights);
      Primaries known = next.containsKey(key) ? next.get(key) : assignments.get(key);
      generation.assignedUniverse = eligible;
      if (known != null) {
        generation.assigned = known.rows();
        // Shared with another generation of this build, whose unknown rows are being filled.
        generation.holes = !bounded && next.containsKey(key);
      } else if (bounded) {
        if (hasher == null) {
          hasher = RowHasher.of(spec);
        }
        generation.assigned =
            BoundedAssignment.assign(
                hasher, spec.rowBits(), addresses, weights, TableSpec.BOUNDED_SLACK);
      } else {
        generation.assigned = derived(spec, addresses, weights);
        generation.holes = true;
      }
      next.put(key, new Primaries(addresses, weights, generation.assigned));
    }
    return next;
  }

  /**
   * Weighted rendezvous primaries for {@code addresses} with {@code weights}, from those of the
   * last build's list that had every one of them at no lower weight: a row keeps its primary unless
   * that backend is gone or lighter now (removing or lightening a backend that is not a row's best
   * cannot change the best). Rows left {@link Generation#UNKNOWN}; all of them if no such list was
   * built.
   */
  private char[] derived(TableSpec spec, byte[][] addresses, int[] weights) {
    char[] rows = new char[spec.rowCount()];
    for (var entry : assignments.entrySet()) {
      Primaries parent = entry.getValue();
      if (!entry.getKey().sameTable(spec, TableSpec.Balance.RENDEZVOUS)
          || parent.addresses().length < addresses.length) {
        continue;
      }
      // Parent position to position here, or UNKNOWN where its rows must be found again.
      char[] map = new char[parent.addresses().length];
      int i = 0;
      boolean usable = true;
      for (int p = 0; p < map.length && usable; p++) {
        int order =
            i == addresses.length
                ? -1
                : Universe.ORDER.compare(parent.addresses()[p], addresses[i]);
        if (order < 0) {
          map[p] = Generation.UNKNOWN; // gone
        } else if (order > 0) {
          usable = false; // a backend the parent did not have may win rows
        } else if (weights[i] > parent.weights()[p]) {
          usable = false; // heavier now: it may win rows it did not
        } else {
          // Lighter now: the rows it was best in are found again (it may lose them).
          map[p] = weights[i] == parent.weights()[p] ? (char) i : Generation.UNKNOWN;
          i++;
        }
      }
      if (!usable || i != addresses.length) {
        continue;
      }
      for (int row = 0; row < rows.length; row++) {
        rows[row] = map[parent.rows()[row]];
      }
      return rows;
    }
    Arrays.fill(rows, Generation.UNKNOWN);
    return rows;
  }

  /** A generation's eligible backends (by address), their weights, and its primaries. */
  private record Primaries(byte[][] addresses, int[] weights, char[] rows) {}

  /** What the primaries of a generation are a function of. */
  private record AssignmentKey(ByteBuffer content) {
    /**
     * Whether these primaries are of a table with {@code spec}'s seed and rows, and {@code
     * balance}.
     */
    boolean sameTable(TableSpec spec, TableSpec.Balance balance) {
      ByteBuffer prefix =
          ByteBuffer.allocate(TableSpec.SEED_BYTES + 5)
              .put(spec.seed())
              .putInt(spec.rowBits())
              .put((byte) balance.ordinal())
              .flip();
      return content.remaining() >= prefix.remaining()
          && content.slice(0, prefix.remaining()).equals(prefix);
    }

    static AssignmentKey of(
        TableSpec spec, TableSpec.Balance balance, byte[][] addresses, int[] weights) {
      int bytes = TableSpec.SEED_BYTES + 5;
      for (byte[] a : addresses) {
        bytes += a.length + 4;
      }
      ByteBuffer out =
          ByteBuffer.allocate(bytes)
              .put(spec.seed())
              .putInt(spec.rowBits())
              .put((byte) balance.ordinal());
      for (int i = 0; i < addresses.length; i++) {
        out.put(addresses[i]).putInt(weights[i]);
      }
      return new AssignmentKey(out.flip());
    }
  }

  /** The ranking kept from the last build, or null; for tests. */
  synchronized RankCache rankCache() {
    return cache;
  }

  private static void validate(List<Backend> backends, String context) {
    checkArgument(
        backends.size() <= RendezvousTable.MAX_BACKENDS,
        "%sa table can name at most %s backends, got %s",
        context,
        RendezvousTable.MAX_BACKENDS,
        backends.size());
    Map<ByteBuffer, Integer> seen = new HashMap<>();
    Backend first = null;
    for (int i = 0; i < backends.size(); i++) {
      Backend b = backends.get(i);
      if (first == null) {
        first = b;
      } else if (b.isIpv6() != first.isIpv6()) {
        throw new IllegalArgumentException(
            context
                + "all backends of one table must be the same address family (all IPv4 or all"
                + " IPv6), but backend #0 is "
                + family(first)
                + " ("
                + InetAddresses.toAddrString(first.address())
                + ") and backend #"
                + i
                + " is "
                + family(b)
                + " ("
                + InetAddresses.toAddrString(b.address())
                + "); build one table per family");
      }
      Integer earlier = seen.putIfAbsent(ByteBuffer.wrap(b.addressBytes()), i);
      if (earlier != null) {
        throw new IllegalArgumentException(
            context
                + "duplicate backend address "
                + InetAddresses.toAddrString(b.address())
                + " (backends #"
                + earlier
                + " and #"
                + i
                + "); list each backend once, with a single state");
      }
    }
  }

  private static void checkOneFamily(List<ImmutableList<Backend>> generations) {
    Backend reference = null;
    String referenceName = null;
    for (int g = 0; g < generations.size(); g++) {
      if (generations.get(g).isEmpty()) {
        continue;
      }
      Backend b = generations.get(g).get(0);
      String name = g == 0 ? "the current generation" : "previous generation #" + g;
      if (reference == null) {
        reference = b;
        referenceName = name;
      } else if (b.isIpv6() != reference.isIpv6()) {
        throw new IllegalArgumentException(
            "all generations must be the same address family, but "
                + referenceName
                + " is "
                + family(reference)
                + " and "
                + name
                + " is "
                + family(b));
      }
    }
  }

  private static String family(Backend b) {
    return b.isIpv6() ? "IPv6" : "IPv4";
  }
}
