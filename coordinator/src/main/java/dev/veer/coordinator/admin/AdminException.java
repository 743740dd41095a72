package dev.veer.coordinator.admin;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * A refused admin request: the gRPC status it gets and a message that tells the caller what to
 * change. Thrown before anything is written, so a refused request changes nothing.
 */
public final class AdminException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final Status.Code code;

  public AdminException(Status.Code code, String message) {
    super(message);
    this.code = code;
  }

  public static AdminException invalid(String format, Object... args) {
    return new AdminException(Status.Code.INVALID_ARGUMENT, String.format(format, args));
  }

  public static AdminException notFound(String format, Object... args) {
    return new AdminException(Status.Code.NOT_FOUND, String.format(format, args));
  }

  public static AdminException precondition(String format, Object... args) {
    return new AdminException(Status.Code.FAILED_PRECONDITION, String.format(format, args));
  }

  public static AdminException exists(String format, Object... args) {
    return new AdminException(Status.Code.ALREADY_EXISTS, String.format(format, args));
  }

  public static AdminException stale(long expected, long actual) {
    return new AdminException(
        Status.Code.ABORTED,
        "the cluster state is at version "
            + actual
            + ", not the expected "
            + expected
            + ": read it again and retry");
  }

  public Status.Code code() {
    return code;
  }

  public StatusRuntimeException toStatus() {
    return Status.fromCode(code).withDescription(getMessage()).asRuntimeException();
  }
}
