package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Prints build times at 2^16 rows (best of a few runs after a warm-up). Informative only: the real
 * benchmark is to come; the one assertion is a generous ceiling against pathological slowdowns.
 */
class BuildTimingTest {
  @Test
  void printBuildTimes() {
    Random random = new Random(99);
    TableSpec spec = TableSpec.of(TestBackends.seed(random));
    RendezvousTableBuilder.build(spec, TestBackends.ipv4(random, 64)); // warm-up
    for (int n : new int[] {16, 64, 256, 1024}) {
      for (boolean ipv6 : new boolean[] {false, true}) {
        List<Backend> backends = ipv6 ? TestBackends.ipv6(random, n) : TestBackends.ipv4(random, n);
        long best = Long.MAX_VALUE;
        for (int run = 0; run < (n >= 1024 ? 2 : 3); run++) {
          long start = System.nanoTime();
          RendezvousTableBuilder.build(spec, backends);
          best = Math.min(best, System.nanoTime() - start);
        }
        double millis = best / 1e6;
        System.out.printf(
            "timing: %4d %s backends, %d rows x %d hops: %.1f ms (%.1f ns per backend-row, %d"
                + " cores)%n",
            n,
            ipv6 ? "IPv6" : "IPv4",
            spec.rowCount(),
            spec.hopCount(),
            millis,
            best / ((double) n * spec.rowCount()),
            Runtime.getRuntime().availableProcessors());
        assertThat(millis).isLessThan(60_000);
      }
    }
  }
}
