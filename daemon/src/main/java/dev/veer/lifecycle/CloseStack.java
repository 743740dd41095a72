package dev.veer.lifecycle;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Closes what a daemon opened, in reverse order, even when some of it fails to close: the first
 * failure is thrown with the others suppressed. For assembling components that each hold kernel
 * objects, threads, sockets or sessions.
 */
public final class CloseStack implements AutoCloseable {
  private final Deque<AutoCloseable> stack = new ArrayDeque<>();

  /** Registers {@code resource} to be closed before everything registered earlier. */
  public synchronized <T extends AutoCloseable> T push(T resource) {
    stack.push(resource);
    return resource;
  }

  @Override
  public synchronized void close() throws Exception {
    Exception first = null;
    while (!stack.isEmpty()) {
      try {
        stack.pop().close();
      } catch (Exception e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
