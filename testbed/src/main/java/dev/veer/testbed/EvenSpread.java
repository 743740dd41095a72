package dev.veer.testbed;

import static com.google.common.base.Preconditions.checkArgument;

/**
 * How far from an even share a fair spread of connections over servers strays by chance. With each
 * of n connections landing on one of k servers independently with probability 1/k (a keyed hash of
 * random source ports), a server's count is binomial: mean n/k, standard deviation sqrt(n (1/k) (1
 * - 1/k)). A check that allows z standard deviations each way fails a fair spread with probability
 * at most 2k * P(Z > z) (a union bound over the servers and both tails).
 */
public final class EvenSpread {
  private EvenSpread() {}

  /**
   * The largest distance from n/k a server's count may have so that a fair spread fails the check
   * (on any of the k servers) with probability at most {@code falseFailureRate}.
   */
  public static double tolerance(int n, int k, double falseFailureRate) {
    checkArgument(n > 0 && k > 1, "n > 0 connections over k > 1 servers");
    checkArgument(falseFailureRate > 0 && falseFailureRate < 1, "a rate in (0, 1)");
    double p = 1.0 / k;
    return normalQuantileUpper(falseFailureRate / (2.0 * k)) * Math.sqrt(n * p * (1 - p));
  }

  /** z such that P(Z > z) = tail for a standard normal Z, by bisection on the upper tail. */
  static double normalQuantileUpper(double tail) {
    double lo = 0;
    double hi = 40;
    for (int i = 0; i < 200; i++) {
      double mid = (lo + hi) / 2;
      if (upperTail(mid) > tail) {
        lo = mid;
      } else {
        hi = mid;
      }
    }
    return (lo + hi) / 2;
  }

  /** P(Z > z) = erfc(z / sqrt 2) / 2. */
  static double upperTail(double z) {
    return erfc(z / Math.sqrt(2)) / 2;
  }

  /** The complementary error function, by a Chebyshev fit with fractional error below 1.2e-7. */
  static double erfc(double x) {
    double z = Math.abs(x);
    double t = 1 / (1 + 0.5 * z);
    double r =
        t
            * Math.exp(
                -z * z
                    - 1.26551223
                    + t
                        * (1.00002368
                            + t
                                * (0.37409196
                                    + t
                                        * (0.09678418
                                            + t
                                                * (-0.18628806
                                                    + t
                                                        * (0.27886807
                                                            + t
                                                                * (-1.13520398
                                                                    + t
                                                                        * (1.48851587
                                                                            + t
                                                                                * (-0.82215223
                                                                                    + t
                                                                                        * 0.17087277)))))))));
    return x >= 0 ? r : 2 - r;
  }
}
