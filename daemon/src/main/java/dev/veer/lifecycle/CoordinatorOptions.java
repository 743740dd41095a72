package dev.veer.lifecycle;

import com.google.common.base.Splitter;
import dev.veer.transport.BearerToken;
import dev.veer.transport.TlsFiles;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import picocli.CommandLine.Option;

/**
 * How a program reaches the coordinators (a picocli mixin): their addresses, TLS, and the token
 * that grants it its role. One set of flags for the director, the proxy agent and {@code veer ctl};
 * {@code --coordinator} is kept as another spelling of {@code --coordinators}.
 */
public final class CoordinatorOptions {
  /** Where the coordinators are when nothing says otherwise: {@code veer coordinator}'s default. */
  public static final String LOCAL = "127.0.0.1:7400";

  @Option(
      names = {"--coordinators", "--coordinator"},
      paramLabel = "HOST:PORT[,...]",
      defaultValue = "${env:VEER_COORDINATORS:-${env:VEER_COORDINATOR:-" + LOCAL + "}}",
      description =
          "Coordinators to reach, in order; the next is tried when one fails (env VEER_COORDINATORS;"
              + " default ${DEFAULT-VALUE}).")
  String coordinators;

  @Option(
      names = "--tls-ca",
      paramLabel = "FILE",
      description = "CA certificates (PEM) to verify coordinators" + " by: use TLS.")
  Path tlsCa;

  @Option(
      names = "--tls-cert",
      paramLabel = "FILE",
      description = "This program's certificate chain (PEM), for" + " mutual TLS.")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE", description = "Its private key (PEM).")
  Path tlsKey;

  @Option(
      names = "--token-file",
      paramLabel = "FILE",
      defaultValue = "${env:VEER_TOKEN_FILE}",
      description =
          "File holding the bearer token that grants this program's role (env VEER_TOKEN_FILE).")
  Path tokenFile;

  /** The coordinators' addresses, in order; fails when the flag names none. */
  public List<String> coordinators() {
    List<String> targets =
        Splitter.on(',').trimResults().omitEmptyStrings().splitToList(coordinators);
    if (targets.isEmpty()) {
      throw new IllegalArgumentException(
          "--coordinators names no coordinator (give HOST:PORT[,...])");
    }
    return targets;
  }

  public Optional<TlsFiles> tls() {
    if (tlsCa == null && (tlsCert != null || tlsKey != null)) {
      throw new IllegalArgumentException("--tls-cert and --tls-key need --tls-ca");
    }
    return tlsCa == null
        ? Optional.empty()
        : Optional.of(
            TlsFiles.client(tlsCa, Optional.ofNullable(tlsCert), Optional.ofNullable(tlsKey)));
  }

  public Optional<BearerToken> token() {
    return Optional.ofNullable(tokenFile).map(BearerToken::fromFile);
  }
}
