package dev.veer.director.sync;

import dev.veer.proto.director.v1.Applied;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.DirectorSyncGrpc;
import dev.veer.proto.director.v1.Hello;
import dev.veer.proto.director.v1.Snapshot;
import dev.veer.transport.BearerToken;
import dev.veer.transport.Reconnecting;
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
 * A director's connection to the coordinators: one Sync stream at a time to one coordinator of the
 * list, moving on to the next when it fails. Snapshots are applied in order as they come; while no
 * coordinator is reachable the data plane keeps forwarding with its last tables.
 */
public final class CoordinatorLink implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(CoordinatorLink.class);

  /**
   * The largest message taken: coordinators send a version in messages of at most this (or 4 MiB),
   * so only a single table larger than this could not be received.
   */
  public static final int DEFAULT_MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024;

  private final Optional<BearerToken> token;
  private final Hello identity;
  private final SnapshotApplier applier;
  private final LongConsumer onApplied;
  private final Reconnecting streams;
  private volatile String connectedTo = "";
  private volatile StreamObserver<DirectorReport> current;

  /**
   * @param identity the Hello to introduce this director with (its versions are filled in)
   * @param onApplied called with each version applied, after it is acknowledged
   */
  public CoordinatorLink(
      List<String> coordinators,
      Optional<TlsFiles> tls,
      Optional<BearerToken> token,
      Hello identity,
      SnapshotApplier applier,
      LongConsumer onApplied) {
    this.token = token;
    int maxSnapshotBytes = identity.getMaxSnapshotBytes();
    this.identity = identity;
    this.applier = applier;
    this.onApplied = onApplied;
    this.streams =
        new Reconnecting(
            "coordinator-link",
            coordinators,
            target ->
                Grpc.newChannelBuilder(target, Transport.channelCredentials(tls))
                    .maxInboundMessageSize(maxSnapshotBytes)
                    .keepAliveTime(10, TimeUnit.SECONDS)
                    .keepAliveTimeout(5, TimeUnit.SECONDS)
                    .build(),
            this::session);
  }

  public void start() {
    streams.start();
  }

  /** The coordinator the stream is open to, or "" while there is none. */
  public String connectedTo() {
    return connectedTo;
  }

  /** One Sync stream, until it ends; returns why it ended. */
  private String session(ManagedChannel ch, String target) throws InterruptedException {
    DirectorSyncGrpc.DirectorSyncStub stub = DirectorSyncGrpc.newStub(ch);
    if (token.isPresent()) {
      stub = stub.withCallCredentials(token.get());
    }
    CountDownLatch ended = new CountDownLatch(1);
    String[] why = {"stream ended"};
    @SuppressWarnings("unchecked")
    StreamObserver<DirectorReport>[] reports = new StreamObserver[1];
    reports[0] =
        stub.sync(
            new StreamObserver<>() {
              @Override
              public void onNext(Snapshot snapshot) {
                log.debug(
                    "version {} received ({} bytes)",
                    snapshot.getVersion(),
                    snapshot.getSerializedSize());
                Optional<Applied> applied = applier.receive(snapshot);
                if (applied.isEmpty()) {
                  return;
                }
                synchronized (reports[0]) {
                  reports[0].onNext(DirectorReport.newBuilder().setApplied(applied.get()).build());
                }
                if (applied.get().getSuccess()) {
                  onApplied.accept(applied.get().getVersion());
                }
              }

              @Override
              public void onError(Throwable t) {
                why[0] =
                    Status.fromThrowable(t).toString()
                        + "; forwarding goes on with version "
                        + applier.appliedVersion();
                ended.countDown();
              }

              @Override
              public void onCompleted() {
                ended.countDown();
              }
            });
    synchronized (reports[0]) {
      reports[0].onNext(
          DirectorReport.newBuilder()
              .setHello(
                  identity.toBuilder()
                      .setAppliedVersion(applier.appliedVersion())
                      .putAllTableVersions(applier.tableVersions()))
              .build());
    }
    connectedTo = target;
    current = reports[0];
    log.info("connected to coordinator {}", target);
    try {
      ended.await();
      return why[0];
    } finally {
      current = null;
      connectedTo = "";
    }
  }

  /**
   * Sends a report on the stream open now; dropped while there is none (the next one is due soon).
   */
  public void report(DirectorReport report) {
    StreamObserver<DirectorReport> out = current;
    if (out != null) {
      synchronized (out) {
        out.onNext(report);
      }
    }
  }

  @Override
  public void close() {
    streams.close();
  }
}
