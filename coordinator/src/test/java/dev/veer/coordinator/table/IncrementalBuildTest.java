package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A long-lived builder, whose cached ranking is patched between builds, builds the same tables as a
 * fresh one. The scenarios are chosen to stress the cache: many unavailable backends, so that rows
 * are derived from deep in the cached prefixes or past them; streams of additions and removals that
 * shorten, refill and reorder the prefixes; lists shorter than a prefix.
 *
 * <p>The seed is printed; {@code -Dveer.table.seed=N} replays it.
 */
class IncrementalBuildTest {
  private static final long SEED = Long.getLong("veer.table.seed", System.nanoTime());

  @BeforeAll
  static void printSeed() {
    System.out.println("IncrementalBuildTest seed: " + SEED + " (-Dveer.table.seed=" + SEED + ")");
  }

  static IntStream trials() {
    return IntStream.range(0, 16);
  }

  @ParameterizedTest(name = "trial {0}")
  @MethodSource("trials")
  void churnOfAddressesMatchesFreshBuilds(int trial) {
    Random random = new Random(SEED * 17 + trial);
    List<Backend> pool =
        trial % 2 == 0 ? TestBackends.ipv4(random, 400) : TestBackends.ipv6(random, 400);
    TableSpec spec = TableSpec.of(TestBackends.seed(random), 8, 1 + random.nextInt(4));
    // small lists have complete prefixes; without history, removals leave the universe at once
    int size = 2 + random.nextInt(trial % 4 == 0 ? 10 : 40);
    int maxPrevious =
        trial % 4 == 1 ? 0 : 1 + random.nextInt(TableBuilder.MAX_PREVIOUS_GENERATIONS);
    int eligibleInTen = 1 + random.nextInt(9);
    List<Backend> current = new ArrayList<>();
    int next = 0;
    while (current.size() < size) {
      current.add(withRandomState(random, pool.get(next++), eligibleInTen));
    }
    TableBuilder builder = new TableBuilder();
    LinkedList<List<Backend>> previous = new LinkedList<>();
    for (int step = 0; step < 80; step++) {
      List<Backend> changed = new ArrayList<>(current);
      int removals = random.nextInt(2 + changed.size() / 3);
      for (int i = 0; i < removals && changed.size() > 1; i++) {
        changed.remove(random.nextInt(changed.size()));
      }
      int additions = random.nextInt(2 + changed.size() / 4);
      for (int i = 0; i < additions && next < pool.size(); i++) {
        changed.add(
            random.nextInt(changed.size() + 1),
            withRandomState(random, pool.get(next++), eligibleInTen));
      }
      if (random.nextInt(4) == 0) {
        int i = random.nextInt(changed.size());
        changed.set(i, withRandomState(random, changed.get(i), eligibleInTen));
      }
      previous.addFirst(current);
      while (previous.size() > maxPrevious) {
        previous.removeLast();
      }
      current = changed;

      String at = "seed " + SEED + ", trial " + trial + ", step " + step;
      RendezvousTable incremental = builder.build(spec, current, previous);
      RendezvousTable fresh = new TableBuilder().build(spec, current, previous);
      assertThat(incremental.encoded()).as(at).isEqualTo(fresh.encoded());
      assertCacheHoldsRankingPrefixes(spec, builder.rankCache(), at);
    }
  }

  /**
   * Looks inside: every cached row is a true prefix of the row's ranking, and no address outside it
   * ranks below its horizon. An error there may not show in the tables for many builds.
   */
  private static void assertCacheHoldsRankingPrefixes(TableSpec spec, RankCache cache, String at) {
    RowHasher hasher = RowHasher.of(spec);
    Universe universe = cache.universe;
    int n = universe.size();
    for (int row = 0; row < spec.rowCount(); row++) {
      long rowSeed = hasher.rowSeed(row);
      long[] keys = new long[n];
      Integer[] ranking = new Integer[n];
      for (int u = 0; u < n; u++) {
        keys[u] = RowHasher.rankKey(hasher.score(rowSeed, universe.address(u)));
        ranking[u] = u;
      }
      // unsigned keys, ties by universe index (which is address order)
      Arrays.sort(
          ranking,
          (x, y) -> {
            int c = Long.compareUnsigned(keys[x], keys[y]);
            return c != 0 ? c : Integer.compare(x, y);
          });
      int len = cache.length[row];
      assertThat(len).as("%s, row %s", at, row).isBetween(0, Math.min(n, RankCache.DEPTH));
      for (int i = 0; i < len; i++) {
        assertThat((int) cache.prefix[row * RankCache.DEPTH + i])
            .as("%s, row %s, rank %s", at, row, i)
            .isEqualTo(ranking[i]);
      }
      long horizon = cache.horizon[row] ^ Long.MIN_VALUE;
      for (int i = len; i < n; i++) {
        assertThat(Long.compareUnsigned(keys[ranking[i]], horizon))
            .as("%s, row %s: rank %s against the horizon", at, row, i)
            .isNotNegative();
      }
    }
  }

  /** A random state and health; eligible (healthy active or filling) {@code eligibleInTen}/10. */
  private static Backend withRandomState(Random random, Backend b, int eligibleInTen) {
    if (random.nextInt(10) < eligibleInTen) {
      return b.withHealthy(true)
          .withState(random.nextBoolean() ? BackendState.ACTIVE : BackendState.FILLING);
    }
    return switch (random.nextInt(4)) {
      case 0 -> b.withState(BackendState.DRAINING).withHealthy(true);
      case 1 -> b.withState(BackendState.ACTIVE).withHealthy(false);
      case 2 -> b.withState(BackendState.DRAINING).withHealthy(false);
      default -> b.withState(BackendState.INACTIVE).withHealthy(random.nextBoolean());
    };
  }

  @Test
  void changesOfSpecAndHopCountAreNotConfused() {
    Random random = new Random(SEED);
    List<Backend> backends = TestBackends.ipv4(random, 50);
    TableSpec a = TableSpec.of(TestBackends.seed(random), 10, 2);
    TableSpec b = TableSpec.of(TestBackends.seed(random), 10, 2);
    TableSpec c = a.toBuilder().rowBits(9).build();
    TableSpec d = a.toBuilder().hopCount(4).build();
    TableBuilder builder = new TableBuilder();
    for (TableSpec spec : List.of(a, b, a, c, d, a, d)) {
      assertThat(builder.build(spec, backends, List.of()).encoded())
          .as("%s", spec)
          .isEqualTo(new TableBuilder().build(spec, backends, List.of()).encoded());
    }
    List<Backend> v6 = TestBackends.ipv6(random, 50);
    assertThat(builder.build(a, v6, List.of()).encoded())
        .isEqualTo(new TableBuilder().build(a, v6, List.of()).encoded());
  }

  @Test
  void rowsThatLoseTheirWholePrefixAreRankedAgain() {
    Random random = new Random(SEED + 2);
    List<Backend> pool = TestBackends.ipv4(random, 31);
    // one hop: a wrongly patched prefix would be taken at its word, not re-ranked
    TableSpec spec = TableSpec.of(TestBackends.seed(random), 14, 1);
    TableBuilder builder = new TableBuilder();
    builder.build(spec, pool.subList(0, 30), List.of());
    // half of them go (the most a patch of the cache takes) while one comes
    List<Backend> removed = pool.subList(0, 15);
    List<Backend> after = new ArrayList<>(pool.subList(15, 31));
    RankCache before = builder.rankCache();
    int emptied = 0;
    for (int row = 0; row < spec.rowCount(); row++) {
      boolean all = true;
      for (int i = 0; i < before.length[row]; i++) {
        byte[] address = before.universe.address(before.prefix[row * RankCache.DEPTH + i]);
        all &= removed.stream().anyMatch(b -> Arrays.equals(b.addressBytes(), address));
      }
      emptied += all ? 1 : 0;
    }
    assertThat(emptied).as("rows whose whole prefix goes").isPositive();

    RendezvousTable table = builder.build(spec, after, List.of());
    assertThat(table.encoded())
        .isEqualTo(new TableBuilder().build(spec, after, List.of()).encoded());
    assertCacheHoldsRankingPrefixes(spec, builder.rankCache(), "seed " + SEED);
  }

  @Test
  void replacingAlmostEverythingFallsBackToAFullBuild() {
    Random random = new Random(SEED + 1);
    List<Backend> pool = TestBackends.ipv4(random, 100);
    TableSpec spec = TableSpec.of(TestBackends.seed(random), 10, 3);
    TableBuilder builder = new TableBuilder();
    builder.build(spec, pool.subList(0, 40), List.of());
    List<Backend> replaced = pool.subList(38, 100);
    assertThat(builder.build(spec, replaced, List.of()).encoded())
        .isEqualTo(new TableBuilder().build(spec, replaced, List.of()).encoded());
  }
}
