package dev.veer.testbed.bench;

import dev.veer.proto.director.v1.Applied;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.DirectorSyncGrpc;
import dev.veer.proto.director.v1.Hello;
import dev.veer.proto.director.v1.ServiceTable;
import dev.veer.proto.director.v1.Snapshot;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A director as far as the Sync stream goes, for benchmarks that need more directors than the
 * machine holds real ones: it says the Hello a current director says, parses every message, keeps
 * each service's table version, and acknowledges each version after its last part. It stops short
 * of the kernel: it neither inflates rows, nor builds tables, nor writes maps.
 */
final class WireDirector implements AutoCloseable {
  private static final int MAX_MESSAGE = 64 * 1024 * 1024;

  private final ManagedChannel channel;
  private final ConcurrentSkipListMap<Long, Long> ackedAt = new ConcurrentSkipListMap<>();
  private final Map<Long, Long> bytesOfVersion = new ConcurrentHashMap<>();
  private final AtomicLong bytes = new AtomicLong();
  private final Map<String, Long> held = new HashMap<>();
  private final StreamObserver<DirectorReport> reports;
  private volatile Throwable ended;

  WireDirector(String id, String target, int rowBits) {
    channel =
        Grpc.newChannelBuilder(target, InsecureChannelCredentials.create())
            .maxInboundMessageSize(MAX_MESSAGE)
            .build();
    reports =
        DirectorSyncGrpc.newStub(channel)
            .sync(
                new StreamObserver<>() {
                  @Override
                  public void onNext(Snapshot message) {
                    received(message);
                  }

                  @Override
                  public void onError(Throwable t) {
                    ended = t;
                  }

                  @Override
                  public void onCompleted() {
                    ended = new IllegalStateException("stream completed");
                  }
                });
    synchronized (reports) {
      reports.onNext(
          DirectorReport.newBuilder()
              .setHello(
                  Hello.newBuilder()
                      .setDirectorId(id)
                      .setAddress("192.0.2.250")
                      .setRowBits(rowBits)
                      .setMaxSnapshotBytes(MAX_MESSAGE)
                      .setCompactRows(true)
                      .setIncremental(true)
                      .setPackedRows(true)
                      .setRowDeltas(true))
              .build());
    }
  }

  private void received(Snapshot message) {
    long size = message.getSerializedSize();
    bytes.addAndGet(size);
    bytesOfVersion.merge(message.getVersion(), size, Long::sum);
    synchronized (held) {
      message.getRemovedList().forEach(held::remove);
      for (ServiceTable service : message.getServicesList()) {
        held.put(service.getName(), service.getTableVersion());
      }
    }
    if (!message.getMore()) {
      ackedAt.putIfAbsent(message.getVersion(), System.nanoTime());
      synchronized (reports) {
        reports.onNext(
            DirectorReport.newBuilder()
                .setApplied(Applied.newBuilder().setVersion(message.getVersion()).setSuccess(true))
                .build());
      }
    }
  }

  /** When this director acknowledged {@code version} or a later one, once it has. */
  long awaitAck(long version, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      Map.Entry<Long, Long> acked = ackedAt.ceilingEntry(version);
      if (acked != null) {
        return acked.getValue();
      }
      if (ended != null) {
        throw new IllegalStateException("the stream ended: " + ended, ended);
      }
      Thread.sleep(1);
    }
    throw new IllegalStateException("version " + version + " not acknowledged in " + timeout);
  }

  /** Bytes received for the messages of {@code version}. */
  long bytesOf(long version) {
    return bytesOfVersion.getOrDefault(version, 0L);
  }

  long bytesReceived() {
    return bytes.get();
  }

  int servicesHeld() {
    synchronized (held) {
      return held.size();
    }
  }

  @Override
  public void close() {
    channel.shutdownNow();
  }
}
