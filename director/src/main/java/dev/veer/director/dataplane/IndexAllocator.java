package dev.veer.director.dataplane;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Hands out indices in [first, limit). Released indices are reused last, so a
 * packet still walking a just-replaced table on another CPU never sees its
 * index already pointing somewhere else.
 */
final class IndexAllocator {
  private final int limit;
  private final String what;
  private final Deque<Integer> released = new ArrayDeque<>();
  private int nextFresh;

  IndexAllocator(int first, int limit, String what) {
    this.nextFresh = first;
    this.limit = limit;
    this.what = what;
  }

  int allocate() {
    if (nextFresh < limit) {
      return nextFresh++;
    }
    Integer reused = released.pollFirst();
    if (reused == null) {
      throw new IllegalStateException("all " + limit + " " + what + " are in use");
    }
    return reused;
  }

  void release(int index) {
    released.addLast(index);
  }
}
