package dev.veer.bpf;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An XDP attachment that is kept: every period it checks that its program is still the one on its
 * interface, and attaches it again when it is not (a NIC or driver reset, the link going down and
 * up on drivers that drop XDP then, another tool detaching it, the interface deleted and created
 * again under the same name). A program someone else attached is not replaced; that, and a missing
 * interface, are reported as the problem until they clear. Closing detaches the program.
 */
public final class KeptAttachment implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(KeptAttachment.class);

  private final BpfProgram program;
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-attachment").daemon(true).factory());
  private final AtomicLong reattachments = new AtomicLong();
  private volatile XdpAttachment current;
  private volatile String problem = "";

  private KeptAttachment(XdpAttachment initial, BpfProgram program) {
    this.current = initial;
    this.program = program;
  }

  /** Keeps {@code program}, attached as {@code initial}, checking every {@code period}. */
  public static KeptAttachment keep(XdpAttachment initial, BpfProgram program, Duration period) {
    KeptAttachment kept = new KeptAttachment(initial, program);
    kept.timer.scheduleWithFixedDelay(
        kept::check, period.toMillis(), period.toMillis(), TimeUnit.MILLISECONDS);
    return kept;
  }

  /** Checks now; returns whether the program is attached afterwards. */
  public synchronized boolean check() {
    try {
      XdpAttachment now = current.ensureAttached(program);
      if (now != current) {
        current = now;
        reattachments.incrementAndGet();
      }
      if (!problem.isEmpty()) {
        log.info("XDP program {} is attached to {} again", program.name(), current.ifname());
      }
      problem = "";
      return true;
    } catch (RuntimeException e) {
      String why = String.valueOf(e.getMessage());
      if (!why.equals(problem)) {
        log.error("XDP program {} is not attached: {}", program.name(), why);
      }
      problem = why;
      return false;
    }
  }

  /** Whether the program was attached at the last check. */
  public boolean attached() {
    return problem.isEmpty();
  }

  /** Why the program was not attached at the last check ("" when it was). */
  public String problem() {
    return problem;
  }

  /** How often the program had to be attached again. */
  public long reattachments() {
    return reattachments.get();
  }

  public XdpAttachment current() {
    return current;
  }

  /** Stops checking and leaves the program attached (a hand-over to the next daemon). */
  public void release() {
    timer.shutdownNow();
  }

  /** Stops checking and detaches the program. */
  @Override
  public void close() {
    timer.shutdownNow();
    synchronized (this) {
      current.close();
    }
  }
}
