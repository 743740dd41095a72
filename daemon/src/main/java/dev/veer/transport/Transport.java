package dev.veer.transport;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.InsecureServerCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ServerCredentials;
import io.grpc.TlsChannelCredentials;
import io.grpc.TlsServerCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/** Credentials and channels for Veer's gRPC connections: plaintext, TLS, or mutual TLS. */
public final class Transport {
  private Transport() {}

  /** Plaintext without files; TLS with them, requiring client certificates when CAs are given. */
  public static ServerCredentials serverCredentials(Optional<TlsFiles> tls) {
    if (tls.isEmpty()) {
      return InsecureServerCredentials.create();
    }
    TlsFiles files = tls.get();
    try {
      TlsServerCredentials.Builder builder =
          TlsServerCredentials.newBuilder()
              .keyManager(
                  files.certificateChain().orElseThrow().toFile(),
                  files.privateKey().orElseThrow().toFile());
      if (files.trustedCas().isPresent()) {
        builder
            .trustManager(files.trustedCas().get().toFile())
            .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
      }
      return builder.build();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the server's TLS files: " + e.getMessage(), e);
    }
  }

  public static ChannelCredentials channelCredentials(Optional<TlsFiles> tls) {
    if (tls.isEmpty()) {
      return InsecureChannelCredentials.create();
    }
    TlsFiles files = tls.get();
    try {
      TlsChannelCredentials.Builder builder = TlsChannelCredentials.newBuilder();
      if (files.trustedCas().isPresent()) {
        builder.trustManager(files.trustedCas().get().toFile());
      }
      if (files.certificateChain().isPresent()) {
        builder.keyManager(
            files.certificateChain().get().toFile(), files.privateKey().orElseThrow().toFile());
      }
      return builder.build();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the client's TLS files: " + e.getMessage(), e);
    }
  }

  /**
   * A channel to {@code target} ("host:port"), with a bearer token on every call if one is given.
   */
  public static ManagedChannel channel(String target, Optional<TlsFiles> tls) {
    return Grpc.newChannelBuilder(target, channelCredentials(tls)).build();
  }

  /** Shuts a channel down, waiting a little for calls in flight. */
  public static void close(ManagedChannel channel) {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(2, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
