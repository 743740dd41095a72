package dev.veer.bpf;

/**
 * A failed libbpf, BPF syscall or libc call: which {@linkplain #operation() operation}, with which
 * {@linkplain #errno() errno}, and optional {@linkplain #detail() detail} such as the verifier log.
 * The message reads {@code "<operation> failed: <strerror> (errno N)"}, followed by the detail on
 * the next lines.
 */
public class BpfException extends RuntimeException {
  public static final int EPERM = 1;
  public static final int ENOENT = 2;
  public static final int E2BIG = 7;
  public static final int EBADF = 9;

  /** Also what the verifier answers when it rejects a program. */
  public static final int EACCES = 13;

  public static final int EBUSY = 16;
  public static final int EEXIST = 17;
  public static final int ENODEV = 19;
  public static final int EINVAL = 22;
  public static final int ENOSPC = 28;

  /** Kernel-internal "not supported", leaked by some BPF commands; libc has no text for it. */
  public static final int ENOTSUPP = 524;

  /** libbpf's own error codes (LIBBPF_ERRNO__*) start here. */
  private static final int LIBBPF_ERRNO_START = 4000;

  private static final int LIBBPF_ERRNO_END = 4100;

  private final String operation;
  private final int errno;
  private final String detail;

  public BpfException(String operation, int errno) {
    this(operation, errno, "", null);
  }

  public BpfException(String operation, int errno, String detail) {
    this(operation, errno, detail, null);
  }

  public BpfException(String operation, int errno, String detail, Throwable cause) {
    super(message(operation, errno, detail), cause);
    this.operation = operation;
    this.errno = errno;
    this.detail = detail == null ? "" : detail;
  }

  /** What failed, e.g. {@code bpf_object__load(director.o)}. */
  public String operation() {
    return operation;
  }

  /** The positive errno (or libbpf error code) the operation failed with. */
  public int errno() {
    return errno;
  }

  /** Extra context such as libbpf's log or the verifier log; empty if none. */
  public String detail() {
    return detail;
  }

  /** The system's text for an errno, covering libbpf's private codes too. */
  public static String errorText(int errno) {
    if (errno == ENOTSUPP) {
      return "Operation not supported (ENOTSUPP)";
    }
    if (errno >= LIBBPF_ERRNO_START && errno < LIBBPF_ERRNO_END) {
      return Libbpf.strerror(errno);
    }
    return Libc.strerror(errno);
  }

  private static String privilegeProblem() {
    try {
      return BpfSystem.missingPrivileges();
    } catch (RuntimeException e) {
      return "";
    }
  }

  private static String message(String operation, int errno, String detail) {
    String head = operation + " failed: " + errorText(errno) + " (errno " + errno + ")";
    if (errno == EPERM) {
      // The usual reason; say so rather than leave "Operation not permitted" to guess at.
      String missing = privilegeProblem();
      head = missing.isEmpty() ? head : head + ": " + missing;
    }
    return detail == null || detail.isBlank() ? head : head + "\n" + detail.strip();
  }
}
