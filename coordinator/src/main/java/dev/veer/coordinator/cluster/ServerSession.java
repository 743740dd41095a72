package dev.veer.coordinator.cluster;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;

/**
 * One member's bidirectional stream on a coordinator (a director's Sync, an agent's Connect): how
 * it ends, whoever ends it. The subclass handles the member's messages and learns of the end once,
 * through {@link #closed}.
 */
public abstract class ServerSession<I, O> implements StreamObserver<I> {
  protected final ServerCallStreamObserver<O> out;
  private boolean ended;
  private boolean closed;

  protected ServerSession(ServerCallStreamObserver<O> out) {
    this.out = out;
    out.setOnCancelHandler(() -> close("cancelled"));
  }

  /** The stream is over (called once): forget the member. */
  protected abstract void closed(String why);

  /** Sends a message unless the stream is over; a failed send ends it. */
  protected synchronized void send(O message) {
    if (ended) {
      return;
    }
    try {
      out.onNext(message);
    } catch (RuntimeException e) {
      close("send failed: " + e.getMessage());
    }
  }

  protected synchronized boolean ended() {
    return ended;
  }

  /** Ends the stream with {@code why} (the member sees it as the call's status). */
  public synchronized void end(Status why) {
    if (!ended) {
      ended = true;
      close(why.toString());
      try {
        out.onError(why.asRuntimeException());
      } catch (RuntimeException ignored) {
        // The call is over already.
      }
    }
  }

  @Override
  public void onError(Throwable t) {
    close(Status.fromThrowable(t).toString());
  }

  @Override
  public synchronized void onCompleted() {
    close("stream completed");
    if (!ended) {
      ended = true;
      out.onCompleted();
    }
  }

  private synchronized void close(String why) {
    if (!closed) {
      closed = true;
      closed(why);
    }
  }
}
