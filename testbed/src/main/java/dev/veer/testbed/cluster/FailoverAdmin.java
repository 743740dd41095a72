package dev.veer.testbed.cluster;

import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * An admin client for tests of failures: a call that finds a coordinator unavailable, too slow or
 * dying under it is tried on the next, up to three rounds of the list.
 */
public final class FailoverAdmin implements AutoCloseable {
  /**
   * How long one try may take: a status call of a cluster of 1,000 services under load took over 3
   * s (it builds every service's view), and a dead coordinator fails fast anyway (UNAVAILABLE).
   */
  private static final long CALL_DEADLINE_SECONDS = 10;

  private final List<String> targets;
  private final List<ManagedChannel> channels = new ArrayList<>();
  private int current;

  public FailoverAdmin(List<String> targets) {
    this.targets = List.copyOf(targets);
    targets.forEach(t -> channels.add(Transport.channel(t, Optional.empty())));
  }

  public synchronized <T> T call(Function<AdminServiceGrpc.AdminServiceBlockingStub, T> call) {
    StatusRuntimeException last = null;
    for (int attempt = 0; attempt < targets.size() * 3; attempt++) {
      try {
        return call.apply(
            AdminServiceGrpc.newBlockingStub(channels.get(current))
                .withDeadlineAfter(CALL_DEADLINE_SECONDS, TimeUnit.SECONDS));
      } catch (StatusRuntimeException e) {
        if (!coordinatorGone(e.getStatus())) {
          throw e;
        }
        last = e;
        current = (current + 1) % targets.size();
      }
    }
    throw last;
  }

  /**
   * Whether the call failed because the coordinator could not answer: unavailable, too slow, or its
   * process died under the call (gRPC reports "UNKNOWN: channel closed" then).
   */
  private static boolean coordinatorGone(Status status) {
    return switch (status.getCode()) {
      case UNAVAILABLE, DEADLINE_EXCEEDED -> true;
      case UNKNOWN ->
          status.getDescription() != null && status.getDescription().contains("channel closed");
      default -> false;
    };
  }

  @Override
  public void close() {
    channels.forEach(Transport::close);
  }
}
