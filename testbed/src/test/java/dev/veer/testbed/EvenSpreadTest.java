package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

class EvenSpreadTest {
  @Test
  void quantilesMatchTheNormalTable() {
    // Published standard normal quantiles.
    assertThat(EvenSpread.normalQuantileUpper(0.025)).isCloseTo(1.95996, within(1e-4));
    assertThat(EvenSpread.normalQuantileUpper(0.001)).isCloseTo(3.09023, within(1e-4));
    assertThat(EvenSpread.normalQuantileUpper(1e-6)).isCloseTo(4.75342, within(1e-3));
  }

  @Test
  void toleranceForAThousandConnectionsOverThreeProxies() {
    // sd = sqrt(1000 * 1/3 * 2/3) = 14.91; z for 1e-6 / 6 per tail = 5.105.
    assertThat(EvenSpread.tolerance(1000, 3, 1e-6)).isCloseTo(76.1, within(0.5));
  }

  @Test
  void fairSpreadsFailAboutAsOftenAsTheBoundAllowsAtALooseRate() {
    // At a 5 % allowance, simulated fair spreads must fail no more often than that.
    Random random = new Random(42);
    double tolerance = EvenSpread.tolerance(1000, 3, 0.05);
    int failures = 0;
    int runs = 4000;
    for (int run = 0; run < runs; run++) {
      int[] counts = new int[3];
      for (int i = 0; i < 1000; i++) {
        counts[random.nextInt(3)]++;
      }
      for (int c : counts) {
        if (Math.abs(c - 1000 / 3.0) > tolerance) {
          failures++;
          break;
        }
      }
    }
    assertThat(failures / (double) runs).isLessThan(0.05).isGreaterThan(0.005);
  }
}
