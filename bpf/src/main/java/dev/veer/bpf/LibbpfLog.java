package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * libbpf's print callback: routes libbpf output to SLF4J and, while an operation runs under {@link
 * #capturing}, also into that operation's {@link Capture} so a failure can carry the libbpf and
 * verifier log in its exception.
 */
final class LibbpfLog {
  private static final Logger LOG = LoggerFactory.getLogger("dev.veer.bpf.libbpf");

  private static final int LIBBPF_WARN = 0;
  private static final int LIBBPF_INFO = 1;

  /** Keep the end of long logs: the verifier states its reason last. */
  private static final int MAX_CAPTURE_CHARS = 256 * 1024;

  private static final int FIRST_BUFFER = 1024;

  /** The x86-64 SysV struct __va_list_tag: va_list is a one-element array of it. */
  private static final StructLayout X86_64_VA_LIST =
      MemoryLayout.structLayout(
          JAVA_INT.withName("gp_offset"),
          JAVA_INT.withName("fp_offset"),
          ADDRESS.withName("overflow_arg_area"),
          ADDRESS.withName("reg_save_area"));

  private static final boolean X86_64 =
      switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64" -> true;
        default -> false;
      };
  private static final int OTHER_ARCH_BUFFER = 64 * 1024;

  /** Per-operation capture, visible to the upcall because libbpf calls it on the same thread. */
  private static final ScopedValue<Capture> CAPTURE = ScopedValue.newInstance();

  private LibbpfLog() {}

  /** A stub for libbpf_set_print; the global arena keeps it alive as long as libbpf may call it. */
  @SuppressWarnings("restricted")
  static MemorySegment printCallback() {
    try {
      var target =
          MethodHandles.lookup()
              .findStatic(
                  LibbpfLog.class,
                  "print",
                  MethodType.methodType(
                      int.class, int.class, MemorySegment.class, MemorySegment.class));
      return Native.LINKER.upcallStub(
          target, FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS), Arena.global());
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Runs {@code body} with libbpf output captured. Warnings are held back while it runs: on failure
   * they travel in the exception (built by the body from the capture), on success they are logged.
   */
  static <T> T capturing(Function<Capture, T> body) {
    Capture capture = new Capture();
    T result = ScopedValue.where(CAPTURE, capture).call(() -> body.apply(capture));
    for (String warning : capture.warnings) {
      LOG.warn("{}", warning);
    }
    return result;
  }

  /** Called by libbpf. Must not throw: an exception escaping an upcall terminates the JVM. */
  @SuppressWarnings("unused")
  private static int print(int level, MemorySegment format, MemorySegment vaList) {
    try {
      Capture capture = CAPTURE.isBound() ? CAPTURE.get() : null;
      boolean captured = capture != null && level <= LIBBPF_INFO;
      boolean logged = level == LIBBPF_WARN ? LOG.isWarnEnabled() : LOG.isDebugEnabled();
      if (!captured && !logged) {
        return 0;
      }
      String text = format(format, vaList);
      String line = text.stripTrailing();
      if (captured) {
        capture.append(text);
        if (level == LIBBPF_WARN) {
          capture.warnings.add(line);
        }
        LOG.debug("{}", line);
      } else if (level == LIBBPF_WARN) {
        LOG.warn("{}", line);
      } else {
        LOG.debug("{}", line);
      }
    } catch (Throwable t) {
      try {
        LOG.error("failed to format libbpf output", t);
      } catch (Throwable ignored) {
        // Nothing left to do safely.
      }
    }
    return 0;
  }

  @SuppressWarnings("restricted")
  private static String format(MemorySegment format, MemorySegment vaList) {
    try (Arena arena = Arena.ofConfined()) {
      if (!X86_64) {
        // No portable va_copy: one generous buffer, long messages get truncated.
        MemorySegment buffer = arena.allocate(OTHER_ARCH_BUFFER);
        Libc.vsnprintf(buffer, OTHER_ARCH_BUFFER, format, vaList);
        return buffer.getString(0);
      }
      // vsnprintf consumes its va_list; on x86-64 a byte copy of it is what va_copy does,
      // so the first attempt uses a copy and a too-small buffer can be retried exactly.
      MemorySegment copy = arena.allocate(X86_64_VA_LIST);
      copy.copyFrom(vaList.reinterpret(X86_64_VA_LIST.byteSize()));
      MemorySegment buffer = arena.allocate(FIRST_BUFFER);
      int needed = Libc.vsnprintf(buffer, FIRST_BUFFER, format, copy);
      if (needed < 0) {
        return "";
      }
      if (needed >= FIRST_BUFFER) {
        buffer = arena.allocate(needed + 1L);
        Libc.vsnprintf(buffer, needed + 1L, format, vaList);
      }
      return buffer.getString(0);
    }
  }

  /** libbpf output (warnings and info) produced during one operation on one thread. */
  static final class Capture {
    private final StringBuilder text = new StringBuilder();
    private final List<String> warnings = new ArrayList<>();
    private int dropped;

    private void append(String message) {
      text.append(message);
      if (!message.endsWith("\n")) {
        text.append('\n');
      }
      int excess = text.length() - MAX_CAPTURE_CHARS;
      if (excess > 0) {
        text.delete(0, excess);
        dropped += excess;
      }
    }

    /** The captured log, possibly with its beginning cut off. */
    String text() {
      return dropped == 0
          ? text.toString()
          : "[... " + dropped + " chars of libbpf log omitted ...]\n" + text;
    }
  }
}
