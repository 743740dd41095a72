package dev.veer.bpf;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A file descriptor this process owns. {@link #close()} closes it exactly once, so a second close
 * cannot close a number the kernel has since handed to someone else; after it, {@link #intValue()}
 * fails instead of returning that number.
 *
 * <p>Closing does not wait for threads still using the number: whoever owns the Fd closes it only
 * when nothing else uses it.
 */
final class Fd implements AutoCloseable {
  private final int value;
  private final String origin;
  private final AtomicBoolean closed = new AtomicBoolean();

  /**
   * @param value an open file descriptor, which this Fd now owns
   * @param origin the call that returned it, for messages, e.g. {@code open(/run/netns/a)}
   */
  Fd(int value, String origin) {
    if (value < 0) {
      throw new IllegalArgumentException("not a file descriptor: " + value + " from " + origin);
    }
    this.value = value;
    this.origin = origin;
  }

  /** The descriptor's number; fails once closed. */
  int intValue() {
    if (closed.get()) {
      throw new IllegalStateException("fd " + value + " from " + origin + " is closed");
    }
    return value;
  }

  boolean isClosed() {
    return closed.get();
  }

  /** Closes the descriptor; does nothing if it is already closed. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      Libc.close(value);
    }
  }

  @Override
  public String toString() {
    return "Fd[" + value + " from " + origin + (closed.get() ? ", closed" : "") + "]";
  }
}
