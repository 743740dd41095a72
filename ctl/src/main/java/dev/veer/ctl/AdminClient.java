package dev.veer.ctl;

import com.google.common.collect.ImmutableList;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.transport.BearerToken;
import dev.veer.transport.TlsFiles;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * The admin API through the first coordinator of a list that answers: a call that finds one
 * unavailable is tried on the next. Writes are compare-and-set, so retrying elsewhere cannot apply
 * a change twice unless the caller asked for "any version".
 */
final class AdminClient implements AutoCloseable {
  private final ImmutableList<String> targets;
  private final Optional<TlsFiles> tls;
  private final Optional<BearerToken> token;
  private final Duration timeout;
  private ManagedChannel channel;
  private int current;

  AdminClient(
      List<String> targets, Optional<TlsFiles> tls, Optional<BearerToken> token, Duration timeout) {
    this.targets = ImmutableList.copyOf(targets);
    this.tls = tls;
    this.token = token;
    this.timeout = timeout;
  }

  <T> T call(Function<AdminServiceGrpc.AdminServiceBlockingStub, T> call) {
    StatusRuntimeException last = null;
    for (int i = 0; i < targets.size(); i++) {
      AdminServiceGrpc.AdminServiceBlockingStub stub = stub();
      try {
        return call.apply(stub.withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS));
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) {
          throw e;
        }
        last = e;
        next();
      }
    }
    throw new StatusRuntimeException(
        Status.UNAVAILABLE.withDescription(
            "no coordinator answered ("
                + String.join(", ", targets)
                + "): "
                + last.getStatus().getDescription()));
  }

  private AdminServiceGrpc.AdminServiceBlockingStub stub() {
    if (channel == null) {
      channel = Transport.channel(targets.get(current), tls);
    }
    AdminServiceGrpc.AdminServiceBlockingStub stub = AdminServiceGrpc.newBlockingStub(channel);
    return token.isPresent() ? stub.withCallCredentials(token.get()) : stub;
  }

  private void next() {
    close();
    current = (current + 1) % targets.size();
  }

  @Override
  public void close() {
    if (channel != null) {
      Transport.close(channel);
      channel = null;
    }
  }
}
