package dev.veer.director.dataplane;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.function.LongSupplier;

/**
 * Hands out indices in [first, limit): never-used ones first, then released ones, oldest first and
 * only after a quarantine. A packet still walking a just-replaced table on another CPU (or
 * refreshing a backend's next-hop cache) must not meet its index already pointing somewhere else; a
 * BPF program runs for microseconds, the quarantine lasts a second.
 */
final class IndexAllocator {
  static final Duration QUARANTINE = Duration.ofSeconds(1);

  private record Released(int index, long atNanos) {}

  private final int limit;
  private final String what;
  private final LongSupplier nanoClock;
  private final Deque<Released> released = new ArrayDeque<>();
  private int nextFresh;

  IndexAllocator(int first, int limit, String what) {
    this(first, limit, what, System::nanoTime);
  }

  IndexAllocator(int first, int limit, String what, LongSupplier nanoClock) {
    this.nextFresh = first;
    this.limit = limit;
    this.what = what;
    this.nanoClock = nanoClock;
  }

  /**
   * Takes over indices an earlier process left in use (read back from pinned maps): the fresh range
   * continues after the highest, and the gaps below it are free at once. Only before the first
   * {@link #allocate()}.
   */
  void reserve(java.util.Set<Integer> inUse) {
    int first = nextFresh;
    int highest = inUse.stream().mapToInt(Integer::intValue).max().orElse(first - 1);
    long longAgo = nanoClock.getAsLong() - QUARANTINE.toNanos();
    for (int i = first; i < highest; i++) {
      if (!inUse.contains(i)) {
        released.addLast(new Released(i, longAgo));
      }
    }
    nextFresh = Math.max(first, highest + 1);
  }

  int allocate() {
    if (nextFresh < limit) {
      return nextFresh++;
    }
    Released oldest = released.peekFirst();
    if (oldest == null) {
      throw new IllegalStateException("all " + limit + " " + what + " are in use");
    }
    if (nanoClock.getAsLong() - oldest.atNanos() < QUARANTINE.toNanos()) {
      throw new IllegalStateException(
          "all "
              + limit
              + " "
              + what
              + " are in use or were released less than "
              + QUARANTINE.toMillis()
              + " ms ago; retry shortly");
    }
    return released.pollFirst().index();
  }

  void release(int index) {
    released.addLast(new Released(index, nanoClock.getAsLong()));
  }

  /**
   * Takes back an index whose allocation was undone before the data plane could reach it: no packet
   * can have seen it, so it is free again at once, first in line.
   */
  void giveBack(int index) {
    released.addFirst(new Released(index, nanoClock.getAsLong() - QUARANTINE.toNanos()));
  }
}
