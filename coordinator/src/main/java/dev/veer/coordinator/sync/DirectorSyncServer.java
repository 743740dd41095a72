package dev.veer.coordinator.sync;

import com.google.common.collect.ImmutableMap;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.cluster.ServerSession;
import dev.veer.coordinator.cluster.StatusRegistry;
import dev.veer.coordinator.state.ClusterStore;
import dev.veer.proto.admin.v1.DirectorProbe;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.director.v1.Applied;
import dev.veer.proto.director.v1.BackendProbe;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.DirectorSyncGrpc;
import dev.veer.proto.director.v1.Hello;
import dev.veer.proto.director.v1.ProbeReport;
import dev.veer.proto.director.v1.RouteReport;
import dev.veer.proto.director.v1.ServiceTable;
import dev.veer.proto.director.v1.Settings;
import dev.veer.proto.director.v1.Snapshot;
import dev.veer.proto.state.v1.ClusterState;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the director Sync stream: every connected director gets the current tables at once and
 * then what each change of the desired state changed, and its acknowledgements are recorded in the
 * {@link StatusRegistry}. A version goes in messages of at most {@link #MESSAGE_BYTES}, each sent
 * when the stream is ready for it (gRPC flow control), so a director starting from nothing is
 * streamed every table without either side holding them all in one message. A director that is slow
 * to read gets, when it is ready again, the newest version's difference from what it was sent.
 */
public final class DirectorSyncServer extends DirectorSyncGrpc.DirectorSyncImplBase
    implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DirectorSyncServer.class);

  private final ClusterStore store;
  private final TableCompiler compiler;
  private final StatusRegistry<DirectorStatus> registry;
  private final Set<Session> sessions = ConcurrentHashMap.newKeySet();

  /** Compiles tables off ZooKeeper's event thread, one state at a time. */
  private final ExecutorService compiling =
      Executors.newSingleThreadExecutor(
          Thread.ofPlatform().name("veer-compile").daemon(true).factory());

  private volatile Published published;

  private final RowDeltas deltas = new RowDeltas();

  /** A state's compiled tables, as every session sends them. */
  private record Published(
      ClusterState state, ImmutableMap<String, TableCompiler.Compiled> tables) {}

  public DirectorSyncServer(
      ClusterStore store, TableCompiler compiler, StatusRegistry<DirectorStatus> registry) {
    this.store = store;
    this.compiler = compiler;
    this.registry = registry;
    publish(store.current());
    store.addListener(state -> compiling.execute(() -> publish(state)));
  }

  private void publish(ClusterState state) {
    Published current = published;
    if (current != null && current.state().getVersion() >= state.getVersion()) {
      return;
    }
    long start = System.nanoTime();
    Published next = new Published(state, compiler.compile(state));
    published = next;
    for (Session session : sessions) {
      session.offer(next);
    }
    log.debug(
        "version {} compiled and offered to {} directors in {} ms",
        state.getVersion(),
        sessions.size(),
        (System.nanoTime() - start) / 1_000_000);
  }

  /** The version of the newest compiled state. */
  public long publishedVersion() {
    return published.state().getVersion();
  }

  @Override
  public StreamObserver<DirectorReport> sync(StreamObserver<Snapshot> responses) {
    return new Session((ServerCallStreamObserver<Snapshot>) responses);
  }

  @Override
  public void close() {
    compiling.shutdownNow();
    for (Session session : sessions) {
      session.end(Status.UNAVAILABLE.withDescription("coordinator shutting down"));
    }
  }

  private static DirectorStatus withRoutes(DirectorStatus status, RouteReport report) {
    return status.toBuilder()
        .setAnnouncing(report.getAnnouncing())
        .clearAnnounced()
        .addAllAnnounced(report.getAnnouncedList().stream().map(Addresses::literal).toList())
        .setAnnouncementChange(report.getLastChange())
        .setSpeakerRead(report.getSpeakerRead())
        .clearBgpSessions()
        .addAllBgpSessions(report.getSessionsList())
        .setSpeakerProblem(report.getSpeakerProblem())
        .build();
  }

  /** The most a Sync message carries to a director that takes a version in parts. */
  static final long MESSAGE_BYTES = 4L * 1024 * 1024;

  /** A message's fields besides its services, allowed for generously. */
  private static final long MESSAGE_OVERHEAD = 1024;

  /** What a director that does not say its limit (older than the limit) accepts. */
  static final long LEGACY_MAX_SNAPSHOT_BYTES = 512L * 1024 * 1024;

  private final java.util.concurrent.atomic.AtomicLong tooLarge =
      new java.util.concurrent.atomic.AtomicLong();

  /** Snapshots not sent because they were larger than their director accepts. */
  public long snapshotsTooLarge() {
    return tooLarge.get();
  }

  /** One director's stream. */
  private final class Session extends ServerSession<DirectorReport, Snapshot> {
    private Hello hello;
    private DirectorStatus status;
    private RouteReport routes;

    /** The table versions the director will hold once it has applied what was sent. */
    private final Map<String, Long> held = new HashMap<>();

    private Published pending;
    private long sentVersion;

    /** What the director was sent of each service, for the next version's difference. */
    private final Map<String, TableCompiler.Compiled> sent = new HashMap<>();

    private Transfer transfer;

    /** The version the status's error is about. */
    private long errorVersion;

    /** The version last sent whole because the director could not apply what it was sent. */
    private long resentWhole = -1;

    Session(ServerCallStreamObserver<Snapshot> out) {
      super(out);
      out.setOnReadyHandler(this::flush);
    }

    @Override
    public synchronized void onNext(DirectorReport report) {
      switch (report.getReportCase()) {
        case HELLO -> hello(report.getHello());
        case APPLIED -> applied(report.getApplied());
        case PROBES -> probes(report.getProbes());
        case ROUTES -> routes(report.getRoutes());
        default ->
            end(
                Status.INVALID_ARGUMENT.withDescription(
                    "unknown report " + report.getReportCase()));
      }
    }

    private void hello(Hello message) {
      if (hello != null) {
        end(Status.INVALID_ARGUMENT.withDescription("Hello sent twice on one stream"));
        return;
      }
      if (message.getDirectorId().isEmpty()) {
        end(Status.INVALID_ARGUMENT.withDescription("Hello without a director_id"));
        return;
      }
      if (message.getSourceAddressesList().stream()
          .anyMatch(a -> a.size() != 4 && a.size() != 16)) {
        end(Status.INVALID_ARGUMENT.withDescription("a source address has 4 or 16 bytes"));
        return;
      }
      Published current = published;
      int rowBits = current.state().getSettings().getRowBits();
      if (message.getRowBits() != rowBits) {
        end(
            Status.FAILED_PRECONDITION.withDescription(
                "this cluster's tables have 2^"
                    + rowBits
                    + " rows; director "
                    + message.getDirectorId()
                    + " runs 2^"
                    + message.getRowBits()
                    + ": restart it with --row-bits "
                    + rowBits));
        return;
      }
      hello = message;
      held.putAll(message.getTableVersionsMap());
      sessions.add(this);
      log.info(
          "director {} ({}) connected, running version {}",
          message.getDirectorId(),
          message.getAddress(),
          message.getAppliedVersion());
      record(message.getAppliedVersion(), "");
      offer(published);
    }

    private void applied(Applied message) {
      if (hello == null) {
        end(Status.FAILED_PRECONDITION.withDescription("Applied before Hello"));
        return;
      }
      if (!message.getSuccess()) {
        held.clear();
        boolean failedWhole = message.getVersion() == resentWhole;
        // It forwards on with what it applied before: its status keeps that version, with why.
        String why =
            "could not apply version "
                + message.getVersion()
                + (failedWhole ? " even sent whole" : "")
                + ": "
                + message.getError();
        if (failedWhole) {
          log.error(
              "director {} {}; it forwards on with version {}, and is sent the next version",
              hello.getDirectorId(),
              why,
              status.getAppliedVersion());
        } else {
          log.warn("director {} {}; sending it whole", hello.getDirectorId(), why);
        }
        errorVersion = message.getVersion();
        status =
            status.toBuilder().setError(why).setAppliedAtMillis(System.currentTimeMillis()).build();
        registry.put(status);
        Published current = published;
        // Once whole: a director that cannot take a version whole will not take it a second time.
        if (!failedWhole && current.state().getVersion() >= message.getVersion()) {
          resentWhole = current.state().getVersion();
          sentVersion = 0;
          sent.clear();
          transfer = null;
          offer(current);
        }
        return;
      }
      // An error about a newer version than this one stands until that version is applied.
      record(message.getVersion(), message.getVersion() >= errorVersion ? "" : status.getError());
    }

    private void record(long version, String error) {
      status =
          DirectorStatus.newBuilder()
              .setId(hello.getDirectorId())
              .setCoordinator(registry.coordinatorId())
              .setAddress(hello.getAddress())
              .setCoLocated(hello.getCoLocated())
              .setAppliedVersion(version)
              .setAppliedAtMillis(System.currentTimeMillis())
              .setError(error)
              .addAllSourceAddresses(
                  hello.getSourceAddressesList().stream().map(Addresses::literal).toList())
              .addAllProbes(status == null ? List.of() : status.getProbesList())
              .build();
      if (routes != null) {
        status = withRoutes(status, routes);
      }
      registry.put(status);
    }

    private void routes(RouteReport report) {
      if (hello == null) {
        end(Status.FAILED_PRECONDITION.withDescription("RouteReport before Hello"));
        return;
      }
      if (report.getAnnouncedList().stream().anyMatch(a -> a.size() != 4 && a.size() != 16)) {
        end(Status.INVALID_ARGUMENT.withDescription("an announced VIP has 4 or 16 bytes"));
        return;
      }
      routes = report;
      status =
          withRoutes(status, report).toBuilder()
              .setAppliedAtMillis(System.currentTimeMillis())
              .build();
      registry.put(status);
    }

    private void probes(ProbeReport report) {
      if (hello == null) {
        end(Status.FAILED_PRECONDITION.withDescription("ProbeReport before Hello"));
        return;
      }
      List<DirectorProbe> probes = new java.util.ArrayList<>();
      for (BackendProbe p : report.getBackendsList()) {
        if (p.getBackend().size() != 4 && p.getBackend().size() != 16) {
          end(
              Status.INVALID_ARGUMENT.withDescription(
                  "a probed backend's address has 4 or 16 bytes"));
          return;
        }
        probes.add(
            DirectorProbe.newBuilder()
                .setService(p.getService())
                .setBackend(Addresses.literal(p.getBackend()))
                .setHealth(p.getHealth())
                .setDetail(p.getDetail())
                .setConsecutive(
                    dev.veer.coordinator.agents.BackendKeeper.consecutiveToStore(
                        p.getConsecutive(), store.current()))
                .build());
      }
      // Stamped with the time of the report, so the newest status wins across coordinators.
      status =
          status.toBuilder()
              .clearProbes()
              .addAllProbes(probes)
              .setAppliedAtMillis(System.currentTimeMillis())
              .build();
      registry.put(status);
    }

    synchronized void offer(Published next) {
      if (ended() || hello == null || next == null || next.state().getVersion() <= sentVersion) {
        return;
      }
      pending = next;
      flush();
    }

    /** Sends what is due while the stream takes it; called again when it is ready for more. */
    private synchronized void flush() {
      while (!ended() && out.isReady()) {
        if (transfer == null) {
          if (pending == null) {
            return;
          }
          Published next = pending;
          pending = null;
          if (hello.getIncremental()) {
            transfer = startTransfer(next);
          } else {
            sendWhole(next);
          }
          continue;
        }
        Snapshot message = transfer.next();
        if (!message.getMore()) {
          transfer = null;
        }
        send(message);
      }
    }

    private Settings settings(ClusterState state) {
      return Settings.newBuilder()
          .setFlowHashKey(state.getSettings().getFlowHashKey())
          .setNicHashKey(state.getSettings().getNicHashKey())
          .setGuePort(state.getSettings().getGuePort())
          .setRowBits(state.getSettings().getRowBits())
          .setCheckIntervalMillis(state.getSettings().getCheckIntervalMillis())
          .setCheckTimeoutMillis(state.getSettings().getCheckTimeoutMillis())
          .build();
    }

    /**
     * What {@code name} is sent as: a reference if the director holds its table; the rows that
     * changed if it holds the table sent before and takes deltas; else the table.
     */
    private ServiceTable wire(String name, TableCompiler.Compiled compiled) {
      long version = compiled.wire().getTableVersion();
      Long holds = held.get(name);
      if (Long.valueOf(version).equals(holds)) {
        return compiled.reference();
      }
      TableCompiler.Compiled base = sent.get(name);
      if (hello.getRowDeltas()
          && base != null
          && holds != null
          && base.wire().getTableVersion() == holds) {
        Optional<ServiceTable> delta = deltas.between(base, compiled);
        if (delta.isPresent()) {
          return delta.get();
        }
      }
      return TableCompiler.forDirector(
          compiled.wire(), compiled.rowBits(), hello.getPackedRows(), hello.getCompactRows());
    }

    /**
     * Starts sending a version in messages of bounded size: after the stream's first version only
     * the services whose compiled form changed since the last one sent, and the names of those
     * gone. Refused, with the reason in the director's status, if one service alone is larger than
     * the director takes in a message.
     */
    private Transfer startTransfer(Published next) {
      boolean incremental = !sent.isEmpty() || sentVersion != 0;
      List<String> names = new ArrayList<>();
      long limit = messageLimit();
      for (Map.Entry<String, TableCompiler.Compiled> e : next.tables().entrySet()) {
        if (incremental && sent.get(e.getKey()) == e.getValue()) {
          continue;
        }
        long size = wire(e.getKey(), e.getValue()).getSerializedSize();
        if (size + MESSAGE_OVERHEAD > limit) {
          tooLarge(
              next.state().getVersion(),
              "service " + e.getKey() + "'s table is " + size + " bytes",
              limit);
          return null;
        }
        names.add(e.getKey());
      }
      List<String> removed = new ArrayList<>();
      if (incremental) {
        for (String name : sent.keySet()) {
          if (!next.tables().containsKey(name)) {
            removed.add(name);
          }
        }
      } else {
        held.keySet().retainAll(next.tables().keySet());
      }
      removed.forEach(
          name -> {
            sent.remove(name);
            held.remove(name);
          });
      sentVersion = next.state().getVersion();
      return new Transfer(next, incremental, removed, names.iterator(), limit);
    }

    private long messageLimit() {
      long director =
          hello.getMaxSnapshotBytes() > 0 ? hello.getMaxSnapshotBytes() : LEGACY_MAX_SNAPSHOT_BYTES;
      return Math.min(director, MESSAGE_BYTES);
    }

    /** A version on its way, one bounded message at a time. */
    private final class Transfer {
      private final Published published;
      private final Settings settings;
      private final boolean incremental;
      private List<String> removed;
      private final java.util.Iterator<String> names;
      private final long limit;
      private String carried;
      private int part;

      Transfer(
          Published published,
          boolean incremental,
          List<String> removed,
          java.util.Iterator<String> names,
          long limit) {
        this.published = published;
        this.settings = settings(published.state());
        this.incremental = incremental;
        this.removed = removed;
        this.names = names;
        this.limit = limit;
      }

      Snapshot next() {
        Snapshot.Builder message =
            Snapshot.newBuilder()
                .setVersion(published.state().getVersion())
                .setSettings(settings)
                .setIncremental(incremental)
                .setPart(part++);
        if (removed != null) {
          // Removals go in the first message, before anything is installed.
          message.addAllRemoved(removed);
          removed = null;
        }
        long size = MESSAGE_OVERHEAD + settings.getSerializedSize();
        while (carried != null || names.hasNext()) {
          String name = carried != null ? carried : names.next();
          carried = null;
          TableCompiler.Compiled compiled = published.tables().get(name);
          ServiceTable table = wire(name, compiled);
          long more = table.getSerializedSize() + 8L;
          if (message.getServicesCount() > 0 && size + more > limit) {
            carried = name;
            break;
          }
          size += more;
          message.addServices(table);
          held.put(name, compiled.wire().getTableVersion());
          sent.put(name, compiled);
        }
        return message.setMore(carried != null || names.hasNext()).build();
      }
    }

    private void tooLarge(long version, String what, long limit) {
      errorVersion = version;
      String why =
          "version "
              + version
              + ": "
              + what
              + ", over the "
              + limit
              + " this director accepts in a message (--max-snapshot-mib): it forwards on with"
              + " version "
              + status.getAppliedVersion();
      if (!why.equals(status.getError())) {
        log.error("director {}: {}", hello.getDirectorId(), why);
      }
      tooLarge.incrementAndGet();
      status =
          status.toBuilder().setError(why).setAppliedAtMillis(System.currentTimeMillis()).build();
      registry.put(status);
    }

    /** A version whole, in one message, as a director without incremental takes it. */
    private void sendWhole(Published next) {
      Snapshot.Builder snapshot =
          Snapshot.newBuilder()
              .setVersion(next.state().getVersion())
              .setSettings(settings(next.state()));
      Map<String, Long> nowHeld = new HashMap<>();
      next.tables()
          .forEach(
              (name, compiled) -> {
                snapshot.addServices(wire(name, compiled));
                nowHeld.put(name, compiled.wire().getTableVersion());
              });
      Snapshot built = snapshot.build();
      long size = built.getSerializedSize();
      long limit =
          hello.getMaxSnapshotBytes() > 0 ? hello.getMaxSnapshotBytes() : LEGACY_MAX_SNAPSHOT_BYTES;
      if (size > limit) {
        // Sent, it would end the stream (the director refuses the message) and every reconnect
        // after it: keep the stream, say why, and send the next version that fits.
        tooLarge(built.getVersion(), "its snapshot is " + size + " bytes", limit);
        return;
      }
      held.clear();
      held.putAll(nowHeld);
      sentVersion = next.state().getVersion();
      send(built);
    }

    @Override
    protected void closed(String why) {
      sessions.remove(this);
      Hello h = hello;
      if (h != null) {
        log.info("director {} disconnected: {}", h.getDirectorId(), why);
        registry.remove(h.getDirectorId());
      }
    }
  }
}
