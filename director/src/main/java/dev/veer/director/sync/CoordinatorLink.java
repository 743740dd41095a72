package dev.veer.director.sync;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import dev.veer.proto.director.v1.Applied;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.DirectorSyncGrpc;
import dev.veer.proto.director.v1.Hello;
import dev.veer.proto.director.v1.Snapshot;
import dev.veer.transport.BearerToken;
import dev.veer.transport.TlsFiles;
import dev.veer.transport.Transport;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A director's connection to the coordinators: one Sync stream at a time to one coordinator of
 * the list, moving on to the next when it fails. Snapshots are applied in order as they come;
 * while no coordinator is reachable the data plane keeps forwarding with its last tables.
 */
public final class CoordinatorLink implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(CoordinatorLink.class);
  private static final long MIN_BACKOFF_MILLIS = 100;
  private static final long MAX_BACKOFF_MILLIS = 2_000;
  /** Snapshots carry whole tables: 512 KiB per service at the default 65,536 rows. */
  private static final int MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

  private final ImmutableList<String> coordinators;
  private final Optional<TlsFiles> tls;
  private final Optional<BearerToken> token;
  private final Hello identity;
  private final SnapshotApplier applier;
  private final LongConsumer onApplied;
  private final Thread thread;
  private volatile boolean closed;
  private volatile ManagedChannel channel;
  private volatile String connectedTo = "";

  /**
   * @param identity the Hello to introduce this director with (its versions are filled in)
   * @param onApplied called with each version applied, after it is acknowledged
   */
  public CoordinatorLink(List<String> coordinators, Optional<TlsFiles> tls, Optional<BearerToken> token,
      Hello identity, SnapshotApplier applier, LongConsumer onApplied) {
    checkArgument(!coordinators.isEmpty(), "at least one coordinator address is needed");
    this.coordinators = ImmutableList.copyOf(coordinators);
    this.tls = tls;
    this.token = token;
    this.identity = identity;
    this.applier = applier;
    this.onApplied = onApplied;
    this.thread = Thread.ofPlatform().name("veer-coordinator-link").daemon(true).unstarted(this::run);
  }

  public void start() {
    thread.start();
  }

  /** The coordinator the stream is open to, or "" while there is none. */
  public String connectedTo() {
    return connectedTo;
  }

  private void run() {
    long backoff = MIN_BACKOFF_MILLIS;
    for (int attempt = 0; !closed; attempt++) {
      String target = coordinators.get(attempt % coordinators.size());
      long started = System.nanoTime();
      String outcome = session(target);
      if (closed) {
        break;
      }
      // A stream that lived a while was healthy: try again at once, elsewhere.
      backoff = System.nanoTime() - started > TimeUnit.SECONDS.toNanos(5) ? MIN_BACKOFF_MILLIS
          : Math.min(backoff * 2, MAX_BACKOFF_MILLIS);
      log.warn("coordinator {}: {}; forwarding goes on with version {}; next attempt in {} ms", target, outcome,
          applier.appliedVersion(), backoff);
      try {
        Thread.sleep(backoff);
      } catch (InterruptedException e) {
        break;
      }
    }
  }

  /** One stream to one coordinator, until it ends; returns why it ended. */
  private String session(String target) {
    ManagedChannel ch = Grpc.newChannelBuilder(target, Transport.channelCredentials(tls))
        .maxInboundMessageSize(MAX_MESSAGE_BYTES).keepAliveTime(10, TimeUnit.SECONDS)
        .keepAliveTimeout(5, TimeUnit.SECONDS).build();
    channel = ch;
    try {
      DirectorSyncGrpc.DirectorSyncStub stub = DirectorSyncGrpc.newStub(ch);
      if (token.isPresent()) {
        stub = stub.withCallCredentials(token.get());
      }
      CountDownLatch ended = new CountDownLatch(1);
      String[] why = {"stream ended"};
      StreamObserver<DirectorReport>[] reports = new StreamObserver[1];
      reports[0] = stub.sync(new StreamObserver<>() {
        @Override
        public void onNext(Snapshot snapshot) {
          log.debug("version {} received ({} bytes)", snapshot.getVersion(), snapshot.getSerializedSize());
          Applied applied = applier.apply(snapshot);
          synchronized (reports) {
            reports[0].onNext(DirectorReport.newBuilder().setApplied(applied).build());
          }
          if (applied.getSuccess()) {
            onApplied.accept(applied.getVersion());
          }
        }

        @Override
        public void onError(Throwable t) {
          why[0] = Status.fromThrowable(t).toString();
          ended.countDown();
        }

        @Override
        public void onCompleted() {
          ended.countDown();
        }
      });
      synchronized (reports) {
        reports[0].onNext(DirectorReport.newBuilder().setHello(identity.toBuilder()
            .setAppliedVersion(applier.appliedVersion()).putAllTableVersions(applier.tableVersions())).build());
      }
      connectedTo = target;
      log.info("connected to coordinator {}", target);
      ended.await();
      return why[0];
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    } catch (RuntimeException e) {
      return e.toString();
    } finally {
      connectedTo = "";
      Transport.close(ch);
    }
  }

  @Override
  public void close() {
    closed = true;
    ManagedChannel ch = channel;
    if (ch != null) {
      ch.shutdownNow();
    }
    thread.interrupt();
    try {
      thread.join(5_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
