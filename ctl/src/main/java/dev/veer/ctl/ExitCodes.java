package dev.veer.ctl;

import io.grpc.Status;

/** The exit codes of {@code veer ctl}, one per kind of outcome a script may want to tell apart. */
public final class ExitCodes {
  public static final int OK = 0;

  /** Anything not listed below. */
  public static final int FAILED = 1;

  /** Wrong command line (picocli's own code for usage errors). */
  public static final int USAGE = 2;

  /** The service or backend named does not exist. */
  public static final int NOT_FOUND = 3;

  /** The request conflicts with the state: exists already, stale version, precondition. */
  public static final int CONFLICT = 4;

  /** The request itself is invalid (bad address, port, ...). */
  public static final int INVALID = 5;

  /** No coordinator answered. */
  public static final int UNAVAILABLE = 6;

  /** Not authenticated or not allowed. */
  public static final int DENIED = 7;

  private ExitCodes() {}

  public static int of(Status.Code code) {
    return switch (code) {
      case OK -> OK;
      case NOT_FOUND -> NOT_FOUND;
      case ALREADY_EXISTS, ABORTED, FAILED_PRECONDITION -> CONFLICT;
      case INVALID_ARGUMENT, OUT_OF_RANGE -> INVALID;
      case UNAVAILABLE, DEADLINE_EXCEEDED -> UNAVAILABLE;
      case UNAUTHENTICATED, PERMISSION_DENIED -> DENIED;
      default -> FAILED;
    };
  }
}
