package dev.veer.transport;

import static com.google.common.base.Preconditions.checkArgument;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.Status;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executor;

/** A client's token, sent as {@code authorization: Bearer <token>} on every call. */
public final class BearerToken extends CallCredentials {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  static final String PREFIX = "Bearer ";

  private final String token;

  public BearerToken(String token) {
    checkArgument(
        !token.isBlank() && token.chars().allMatch(c -> c > 32 && c < 127),
        "a token is printable ASCII without spaces");
    this.token = token;
  }

  /** Reads a token from a file (its first line, trimmed). */
  public static BearerToken fromFile(Path file) {
    try {
      return new BearerToken(Files.readAllLines(file, StandardCharsets.US_ASCII).get(0).trim());
    } catch (IOException | IndexOutOfBoundsException e) {
      throw new IllegalArgumentException(
          "cannot read a token from " + file + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
    if (info.getSecurityLevel() != io.grpc.SecurityLevel.PRIVACY_AND_INTEGRITY
        && !isLoopback(info.getAuthority())) {
      applier.fail(
          Status.UNAUTHENTICATED.withDescription(
              "refusing to send a token over a plaintext channel to "
                  + info.getAuthority()
                  + ": use TLS"));
      return;
    }
    Metadata headers = new Metadata();
    headers.put(AUTHORIZATION, PREFIX + token);
    applier.apply(headers);
  }

  private static boolean isLoopback(String authority) {
    return authority.startsWith("127.")
        || authority.startsWith("localhost:")
        || authority.startsWith("[::1]");
  }
}
