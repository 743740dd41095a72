package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Primary rows per backend, at GLB's 2^16 rows.
 *
 * <p>Why the bounds are safe: with a good hash each row's primary is uniform over the {@code n}
 * backends, so one backend's primary count is Binomial(R, 1/n) with mean {@code μ = R/n}. Chernoff
 * gives P(X ≥ (1+δ)μ) ≤ exp(-μδ²/(2+δ)) and P(X ≤ (1-δ)μ) ≤ exp(-μδ²/2); over {@code n} backends
 * (union bound) we pick δ so that either tail has probability at most 1e-9 for any seed. So the
 * bound is tight where rows per backend are many (n=16: max/mean < 1.11) and loose where they are
 * few (n=1024, 64 rows each: max/mean < 2.17), as it must be. The test's seeds are fixed anyway, so
 * it cannot flake; the bound says the pass is no accident of the seed.
 */
class BalanceTest {
  private static final int ROW_BITS = 16;
  private static final double FAILURE_PROBABILITY = 1e-9;

  @ParameterizedTest(name = "{0} backends")
  @ValueSource(ints = {16, 32, 64, 128, 256, 512, 1024})
  void primaryRowsAreSpreadEvenly(int n) {
    Random random = new Random(n);
    List<Backend> backends = TestBackends.ipv4(random, n);
    TableSpec spec = TableSpec.of(TestBackends.seed(random), ROW_BITS, 2);

    long start = System.nanoTime();
    RendezvousTable table = RendezvousTableBuilder.build(spec, backends);
    double millis = (System.nanoTime() - start) / 1e6;

    int max =
        table.primaryRowCounts().values().stream().mapToInt(Integer::intValue).max().orElseThrow();
    int min =
        table.primaryRowCounts().values().stream().mapToInt(Integer::intValue).min().orElseThrow();
    double mean = (double) spec.rowCount() / n;
    double logTerm = Math.log(n / FAILURE_PROBABILITY);
    double upper = 1 + upperDelta(mean, logTerm);
    double lower = 1 - Math.sqrt(2 * logTerm / mean);
    System.out.printf(
        "balance: %4d backends, %5.0f rows each: max/mean %.3f (bound %.3f), min/mean %.3f (bound"
            + " %.3f), built in %.1f ms%n",
        n, mean, max / mean, upper, min / mean, lower, millis);

    assertThat(max / mean).isLessThan(upper);
    assertThat(min / mean).isGreaterThan(lower);
    assertThat(min).isPositive();
  }

  /**
   * The bound the issue sets for the largest table: at 2^20 rows over 1024 backends (1024 rows
   * each, so Chernoff's 1e-9 bound above is 1.21) the busiest backend has at most 15 % more primary
   * rows than the mean. About a billion scores; a few seconds on two cores.
   */
  @Test
  void largestTableOverAThousandBackendsIsWithinFifteenPercent() {
    Random random = new Random(1024);
    List<Backend> backends = TestBackends.ipv4(random, 1024);
    TableSpec spec = TableSpec.of(TestBackends.seed(random), TableSpec.MAX_ROW_BITS, 1);

    long start = System.nanoTime();
    RendezvousTable table = new TableBuilder().build(spec, backends, List.of());
    double millis = (System.nanoTime() - start) / 1e6;

    int max =
        table.primaryRowCounts().values().stream().mapToInt(Integer::intValue).max().orElseThrow();
    double mean = (double) spec.rowCount() / backends.size();
    System.out.printf(
        "balance: 1024 backends, 2^20 rows: max/mean %.3f (limit 1.15), built in %.0f ms%n",
        max / mean, millis);
    assertThat(max / mean).isLessThanOrEqualTo(1.15);
  }

  /**
   * Smallest δ with exp(-μδ²/(2+δ)) ≤ exp(-logTerm), i.e. the root of μδ² - logTerm·δ - 2·logTerm.
   */
  private static double upperDelta(double mean, double logTerm) {
    return (logTerm + Math.sqrt(logTerm * logTerm + 8 * mean * logTerm)) / (2 * mean);
  }
}
