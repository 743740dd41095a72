package dev.veer.transport;

import static com.google.common.base.Preconditions.checkArgument;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * PEM files for TLS on one side of a channel: this side's certificate chain and private key
 * (optional for a client that does not present one), and the CA certificates it trusts for the
 * other side (for a server: the client CAs; with them, clients must present a certificate).
 */
public record TlsFiles(
    Optional<Path> certificateChain, Optional<Path> privateKey, Optional<Path> trustedCas) {
  public TlsFiles {
    checkArgument(
        certificateChain.isPresent() == privateKey.isPresent(),
        "a TLS certificate needs its private key and the other way round");
    certificateChain.ifPresent(p -> requireReadable(p, "certificate"));
    privateKey.ifPresent(p -> requireReadable(p, "private key"));
    trustedCas.ifPresent(p -> requireReadable(p, "CA certificates"));
  }

  /** A server's files: its certificate and key, and optionally the CAs of clients it requires. */
  public static TlsFiles server(Path certificateChain, Path privateKey, Optional<Path> clientCas) {
    return new TlsFiles(Optional.of(certificateChain), Optional.of(privateKey), clientCas);
  }

  /**
   * A client's files: the CAs it trusts for servers, and optionally its own certificate and key.
   */
  public static TlsFiles client(
      Path serverCas, Optional<Path> certificateChain, Optional<Path> privateKey) {
    return new TlsFiles(certificateChain, privateKey, Optional.of(serverCas));
  }

  private static void requireReadable(Path path, String what) {
    checkArgument(
        Files.isReadable(path), "TLS %s file %s does not exist or cannot be read", what, path);
  }
}
