package dev.veer.coordinator.state;

import static com.google.common.base.Preconditions.checkState;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import dev.veer.coordinator.admin.AdminException;
import dev.veer.proto.state.v1.ChangeRecord;
import dev.veer.proto.state.v1.ClusterHeader;
import dev.veer.proto.state.v1.ClusterSettings;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceRecord;
import dev.veer.proto.state.v1.ServiceState;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster's desired state in ZooKeeper, one znode per service (the layout is described in
 * {@code state.proto}). A write is one ZooKeeper multi that compare-and-sets the header's znode
 * version, so every write sees the one before it and the state's {@code version} counts writes
 * without gaps, and writes only the services it changes with a record of their names. Every
 * coordinator watches the header and catches up by reading the change records and the services they
 * name: what a change costs grows with the change, not with the cluster. {@link #current()} is the
 * newest state this process has seen, exactly as it was at its version.
 */
public final class ClusterStore implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ClusterStore.class);

  /** The schema this code writes; a state with a newer one is refused, never rewritten. */
  public static final int SCHEMA_VERSION = 2;

  /**
   * ZooKeeper refuses a request over jute.maxbuffer (1 MiB by default): one write, all its nodes
   * together, stays clear of it.
   */
  static final int MAX_WRITE_BYTES = 900 * 1024;

  /** Change records kept: a coordinator further behind than this reads every service again. */
  static final int KEPT_CHANGES = 4096;

  private static final int MAX_ATTEMPTS = 20;
  private static final int MAX_CATCH_UP_ROUNDS = 1000;

  private final CuratorFramework zk;
  private final Layout layout;
  private final CuratorCache cache;
  private final ExecutorService refresher =
      Executors.newSingleThreadExecutor(
          Thread.ofPlatform().name("veer-state-refresh").daemon(true).factory());
  private final List<Consumer<ClusterState>> listeners = new CopyOnWriteArrayList<>();
  private final Object refreshLock = new Object();
  private final Object publishLock = new Object();
  private volatile ClusterState current;

  private ClusterStore(CuratorFramework zk, Layout layout) {
    this.zk = zk;
    this.layout = layout;
    this.cache = CuratorCache.build(zk, layout.header(), CuratorCache.Options.SINGLE_NODE_CACHE);
  }

  /**
   * Opens the state under {@code root} (e.g. {@code /veer/v1}): creates it with {@code initial}
   * settings if this is a new cluster, moves a schema-1 state into this layout, reads it all and
   * starts watching it.
   */
  public static ClusterStore open(CuratorFramework zk, String root, ClusterSettings initial)
      throws Exception {
    ClusterStore store = new ClusterStore(zk, new Layout(root));
    store.createIfAbsent(initial);
    store
        .cache
        .listenable()
        .addListener(
            CuratorCacheListener.builder()
                .forCreatesAndChanges((before, after) -> store.refresher.execute(store::catchUp))
                .build());
    store.cache.start();
    store.read();
    return store;
  }

  private void createIfAbsent(ClusterSettings initial) throws Exception {
    for (String parent : List.of(layout.services(), layout.changes())) {
      try {
        zk.create().creatingParentsIfNeeded().forPath(parent);
      } catch (KeeperException.NodeExistsException e) {
        // made before
      }
    }
    while (zk.checkExists().forPath(layout.header()) == null) {
      Stat legacyStat = new Stat();
      byte[] legacy;
      try {
        legacy = zk.getData().storingStatIn(legacyStat).forPath(layout.legacy());
      } catch (KeeperException.NoNodeException e) {
        legacy = null;
      }
      try {
        if (legacy == null) {
          ClusterHeader header =
              ClusterHeader.newBuilder()
                  .setSchemaVersion(SCHEMA_VERSION)
                  .setVersion(1)
                  .setSettings(initial)
                  .setFirstChange(2)
                  .build();
          zk.create().forPath(layout.header(), header.toByteArray());
          log.info(
              "created the cluster state at {} (row bits {}, GUE port {})",
              layout.root(),
              initial.getRowBits(),
              initial.getGuePort());
        } else {
          upgrade(parseLegacy(legacy), legacyStat.getVersion());
        }
      } catch (KeeperException.NodeExistsException | KeeperException.BadVersionException e) {
        // Another coordinator made or moved it meanwhile: look again.
      }
    }
  }

  /**
   * Moves a schema-1 state (one znode) into this layout in one multi, leaving the old node at a
   * newer schema so a coordinator still on schema 1 refuses it instead of writing beside it.
   */
  private void upgrade(ClusterState legacy, int legacyZnodeVersion) throws Exception {
    long version = legacy.getVersion() + 1;
    List<CuratorOp> ops = new ArrayList<>();
    ops.add(
        zk.transactionOp()
            .setData()
            .withVersion(legacyZnodeVersion)
            .forPath(
                layout.legacy(),
                ClusterState.newBuilder()
                    .setSchemaVersion(SCHEMA_VERSION)
                    .setVersion(version)
                    .build()
                    .toByteArray()));
    ops.add(
        zk.transactionOp()
            .create()
            .forPath(
                layout.header(),
                ClusterHeader.newBuilder()
                    .setSchemaVersion(SCHEMA_VERSION)
                    .setVersion(version)
                    .setSettings(legacy.getSettings())
                    .setFirstChange(version + 1)
                    .build()
                    .toByteArray()));
    for (ServiceState service : legacy.getServicesList()) {
      ops.add(
          zk.transactionOp()
              .create()
              .forPath(layout.service(service.getName()), record(service, version).toByteArray()));
    }
    zk.transaction().forOperations(ops);
    log.info(
        "moved the cluster state at {} (version {}, {} services) from one znode to one per"
            + " service; it is at version {} now",
        layout.root(),
        legacy.getVersion(),
        legacy.getServicesCount(),
        version);
  }

  /** The newest state this process has seen. */
  public ClusterState current() {
    return current;
  }

  /** Calls {@code listener} with every newer state, from the refresh thread or a writer's. */
  public void addListener(Consumer<ClusterState> listener) {
    listeners.add(listener);
  }

  /** Catches up with ZooKeeper now and returns the state as of then. */
  public ClusterState read() throws Exception {
    synchronized (refreshLock) {
      ClusterState state = current;
      ClusterHeader header = readHeader();
      if (state != null && header.getVersion() <= state.getVersion()) {
        return state;
      }
      long target = state == null ? 0 : state.getVersion();
      boolean everything = state == null || target + 1 < header.getFirstChange();
      Map<String, Optional<ServiceState>> read = new HashMap<>();
      for (int round = 0; round < MAX_CATCH_UP_ROUNDS; round++) {
        TreeSet<String> names = new TreeSet<>();
        if (everything) {
          names.addAll(zk.getChildren().forPath(layout.services()));
          read.keySet().forEach(names::add);
          if (state != null) {
            state.getServicesList().forEach(s -> names.add(s.getName()));
          }
          everything = false;
        } else {
          for (long v = target + 1; v <= header.getVersion(); v++) {
            Optional<ChangeRecord> change = readChange(v);
            if (change.isEmpty()) {
              everything = true;
              break;
            }
            names.addAll(change.get().getServicesList());
          }
          if (everything) {
            continue;
          }
        }
        for (String name : names) {
          read.put(name, readService(name));
        }
        target = header.getVersion();
        // A write may have landed while we read (a service newer than the header, or gone):
        // read on through the changes it recorded until a header read after the reads agrees.
        ClusterHeader after = readHeader();
        if (after.getVersion() == target) {
          ClusterState next = assemble(state, header, read);
          publish(next);
          return current;
        }
        header = after;
      }
      throw new IllegalStateException(
          "the cluster state kept changing while this coordinator read it, "
              + MAX_CATCH_UP_ROUNDS
              + " rounds in a row");
    }
  }

  private void catchUp() {
    try {
      read();
    } catch (Exception e) {
      log.error("could not read the cluster state at {}: {}", layout.root(), e.toString());
    }
  }

  /**
   * Applies {@code change} to the current state and writes what it changed if the state is still
   * the one it was computed from, retrying on concurrent writes. With {@code expectedVersion} other
   * than 0, fails with ABORTED unless the state is at that version. A change that returns its input
   * unchanged writes nothing. {@code change} may throw {@link AdminException}; nothing is written
   * then. A change whose write would not fit one ZooKeeper request is refused whole.
   */
  public ClusterState update(long expectedVersion, UnaryOperator<ClusterState> change)
      throws Exception {
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      ClusterState before = read();
      Stat stat = new Stat();
      ClusterHeader header = readHeader(stat);
      if (header.getVersion() != before.getVersion()) {
        continue;
      }
      if (expectedVersion != 0 && before.getVersion() != expectedVersion) {
        throw AdminException.stale(expectedVersion, before.getVersion());
      }
      ClusterState changed = change.apply(before);
      if (changed.equals(before)) {
        return before;
      }
      long version = before.getVersion() + 1;
      ClusterState next =
          changed.toBuilder().setSchemaVersion(SCHEMA_VERSION).setVersion(version).build();
      Write write = new Write(version);
      diff(before, next, write);
      long firstChange = header.getFirstChange();
      if (version - firstChange >= KEPT_CHANGES) {
        write.ops.add(zk.transactionOp().delete().forPath(layout.change(firstChange)));
        firstChange++;
      }
      write.put(
          zk.transactionOp().create(),
          layout.change(version),
          ChangeRecord.newBuilder().addAllServices(write.names).build());
      write.ops.add(
          0,
          zk.transactionOp()
              .setData()
              .withVersion(stat.getVersion())
              .forPath(
                  layout.header(),
                  ClusterHeader.newBuilder()
                      .setSchemaVersion(SCHEMA_VERSION)
                      .setVersion(version)
                      .setSettings(next.getSettings())
                      .setFirstChange(firstChange)
                      .build()
                      .toByteArray()));
      if (write.bytes > MAX_WRITE_BYTES) {
        throw AdminException.precondition(
            "this change would write %d bytes to ZooKeeper (%d services) in one request, over the"
                + " %d one request holds safely: change fewer services or backends at once",
            write.bytes, write.names.size(), MAX_WRITE_BYTES);
      }
      try {
        zk.transaction().forOperations(write.ops);
        publish(next);
        return next;
      } catch (KeeperException.BadVersionException
          | KeeperException.NodeExistsException
          | KeeperException.NoNodeException e) {
        if (expectedVersion != 0) {
          throw AdminException.stale(expectedVersion, read().getVersion());
        }
        log.debug("concurrent write to {}; retrying", layout.root());
      }
    }
    throw new AdminException(
        io.grpc.Status.Code.UNAVAILABLE,
        "the cluster state changed under " + MAX_ATTEMPTS + " attempts in a row; try again");
  }

  /** Adds to {@code write} the service nodes that differ between two states sorted by name. */
  private void diff(ClusterState before, ClusterState after, Write write) throws Exception {
    Iterator<ServiceState> was = before.getServicesList().iterator();
    Iterator<ServiceState> is = after.getServicesList().iterator();
    ServiceState a = was.hasNext() ? was.next() : null;
    ServiceState b = is.hasNext() ? is.next() : null;
    while (a != null || b != null) {
      int order = a == null ? 1 : b == null ? -1 : a.getName().compareTo(b.getName());
      if (order < 0) {
        write.ops.add(zk.transactionOp().delete().forPath(layout.service(a.getName())));
        write.names.add(a.getName());
        a = was.hasNext() ? was.next() : null;
      } else if (order > 0) {
        write.put(
            zk.transactionOp().create(), layout.service(b.getName()), record(b, write.version));
        write.names.add(b.getName());
        b = is.hasNext() ? is.next() : null;
      } else {
        if (a != b && !a.equals(b)) {
          write.ops.add(
              zk.transactionOp()
                  .setData()
                  .forPath(layout.service(b.getName()), count(write, record(b, write.version))));
          write.names.add(b.getName());
        }
        a = was.hasNext() ? was.next() : null;
        b = is.hasNext() ? is.next() : null;
      }
    }
  }

  private static byte[] count(Write write, MessageLite message) {
    byte[] bytes = message.toByteArray();
    write.bytes += bytes.length;
    return bytes;
  }

  private static ServiceRecord record(ServiceState service, long version) {
    return ServiceRecord.newBuilder().setWrittenVersion(version).setService(service).build();
  }

  private static ClusterState assemble(
      ClusterState base, ClusterHeader header, Map<String, Optional<ServiceState>> read) {
    TreeMap<String, ServiceState> services = new TreeMap<>();
    if (base != null) {
      base.getServicesList().forEach(s -> services.put(s.getName(), s));
    }
    read.forEach(
        (name, service) -> {
          if (service.isPresent()) {
            services.put(name, service.get());
          } else {
            services.remove(name);
          }
        });
    return ClusterState.newBuilder()
        .setSchemaVersion(SCHEMA_VERSION)
        .setVersion(header.getVersion())
        .setSettings(header.getSettings())
        .addAllServices(services.values())
        .build();
  }

  private void publish(ClusterState state) {
    synchronized (publishLock) {
      if (current != null && state.getVersion() <= current.getVersion()) {
        return;
      }
      current = state;
      for (Consumer<ClusterState> listener : listeners) {
        try {
          listener.accept(state);
        } catch (RuntimeException e) {
          log.error("a cluster state listener failed on version {}", state.getVersion(), e);
        }
      }
    }
  }

  private ClusterHeader readHeader() throws Exception {
    return readHeader(new Stat());
  }

  private ClusterHeader readHeader(Stat stat) throws Exception {
    byte[] data = zk.getData().storingStatIn(stat).forPath(layout.header());
    ClusterHeader header = parse(ClusterHeader.parser(), data, layout.header());
    checkSchema(header.getSchemaVersion());
    return header;
  }

  private Optional<ChangeRecord> readChange(long version) throws Exception {
    try {
      return Optional.of(
          parse(
              ChangeRecord.parser(),
              zk.getData().forPath(layout.change(version)),
              layout.change(version)));
    } catch (KeeperException.NoNodeException e) {
      return Optional.empty();
    }
  }

  private Optional<ServiceState> readService(String name) throws Exception {
    String path = layout.service(name);
    try {
      return Optional.of(
          parse(ServiceRecord.parser(), zk.getData().forPath(path), path).getService());
    } catch (KeeperException.NoNodeException e) {
      return Optional.empty();
    }
  }

  static ClusterState parseLegacy(byte[] data) {
    ClusterState state = parse(ClusterState.parser(), data, "the schema-1 cluster state");
    checkSchema(state.getSchemaVersion());
    return state;
  }

  private static void checkSchema(int schema) {
    checkState(
        schema <= SCHEMA_VERSION,
        "the cluster state has schema version %s, newer than"
            + " this coordinator's %s: upgrade this coordinator",
        schema,
        SCHEMA_VERSION);
  }

  private static <T> T parse(com.google.protobuf.Parser<T> parser, byte[] data, String what) {
    try {
      return parser.parseFrom(data);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(what + " is not readable: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    cache.close();
    refresher.shutdownNow();
  }

  /** The znodes of one cluster. */
  record Layout(String root) {
    String header() {
      return root + "/cluster";
    }

    String services() {
      return root + "/services";
    }

    String service(String name) {
      return services() + "/" + name;
    }

    String changes() {
      return root + "/changes";
    }

    String change(long version) {
      return changes() + "/" + String.format("%020d", version);
    }

    /** Schema 1's single node. */
    String legacy() {
      return root + "/state";
    }
  }

  /** The operations of one multi and what they weigh. */
  private static final class Write {
    final long version;
    final List<CuratorOp> ops = new ArrayList<>();
    final List<String> names = new ArrayList<>();
    long bytes;

    Write(long version) {
      this.version = version;
    }

    void put(
        org.apache.curator.framework.api.transaction.TransactionCreateBuilder<CuratorOp> create,
        String path,
        MessageLite message)
        throws Exception {
      ops.add(create.forPath(path, count(this, message)));
    }
  }
}
