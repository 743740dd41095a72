package dev.veer.testbed;

import java.time.Duration;
import java.util.function.BooleanSupplier;

/** Waiting for a condition rather than for a time: the test bed's one polling loop. */
public final class Await {
  private static final Duration POLL = Duration.ofMillis(50);

  private Await() {}

  /**
   * Returns once {@code condition} holds; fails saying what it waited for after {@code timeout}.
   */
  public static void until(String what, BooleanSupplier condition, Duration timeout)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() - deadline > 0) {
        throw new IllegalStateException(
            "timed out after " + timeout.toMillis() + " ms waiting for " + what);
      }
      Thread.sleep(POLL);
    }
  }
}
