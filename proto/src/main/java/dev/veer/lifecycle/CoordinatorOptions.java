package dev.veer.lifecycle;

import com.google.common.base.Splitter;
import dev.veer.transport.BearerToken;
import dev.veer.transport.TlsFiles;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import picocli.CommandLine.Option;

/**
 * How a daemon reaches the coordinators (a picocli mixin): their addresses, TLS, and the token
 * that grants the daemon its role. Shared by the director and the proxy agent.
 */
public final class CoordinatorOptions {
  @Option(names = "--coordinators", required = true, paramLabel = "HOST:PORT[,...]",
      description = "Coordinators to follow; the next is tried when one fails.")
  String coordinators;

  @Option(names = "--tls-ca", paramLabel = "FILE", description = "CAs to verify coordinators by: use TLS.")
  Path tlsCa;

  @Option(names = "--tls-cert", paramLabel = "FILE", description = "This daemon's certificate, for mutual TLS.")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE", description = "Its private key.")
  Path tlsKey;

  @Option(names = "--token-file", paramLabel = "FILE", description = "Bearer token granting this daemon's role.")
  Path tokenFile;

  public List<String> coordinators() {
    return Splitter.on(',').trimResults().omitEmptyStrings().splitToList(coordinators);
  }

  public Optional<TlsFiles> tls() {
    if (tlsCa == null && (tlsCert != null || tlsKey != null)) {
      throw new IllegalArgumentException("--tls-cert and --tls-key need --tls-ca");
    }
    return tlsCa == null ? Optional.empty()
        : Optional.of(TlsFiles.client(tlsCa, Optional.ofNullable(tlsCert), Optional.ofNullable(tlsKey)));
  }

  public Optional<BearerToken> token() {
    return Optional.ofNullable(tokenFile).map(BearerToken::fromFile);
  }
}
