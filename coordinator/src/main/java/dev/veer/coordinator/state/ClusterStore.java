package dev.veer.coordinator.state;

import static com.google.common.base.Preconditions.checkState;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.veer.coordinator.admin.AdminException;
import dev.veer.proto.state.v1.ClusterSettings;
import dev.veer.proto.state.v1.ClusterState;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster's desired state in ZooKeeper: one znode holding a {@link ClusterState}, replaced
 * whole by compare-and-set on the znode's version, so every write sees the one before it and the
 * state's own {@code version} counts writes without gaps. Every coordinator watches the node;
 * {@link #current()} is the newest state this process has seen.
 */
public final class ClusterStore implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ClusterStore.class);

  /** The schema this code writes; a state with a newer one is refused, never rewritten. */
  public static final int SCHEMA_VERSION = 1;

  /** ZooKeeper's default limit on a znode (jute.maxbuffer) is 1 MiB; keep clear of it. */
  static final int MAX_STATE_BYTES = 900 * 1024;

  private static final int MAX_ATTEMPTS = 20;

  private final CuratorFramework zk;
  private final String path;
  private final CuratorCache cache;
  private final List<Consumer<ClusterState>> listeners = new CopyOnWriteArrayList<>();
  private final Object lock = new Object();
  private volatile ClusterState current;

  private ClusterStore(CuratorFramework zk, String path) {
    this.zk = zk;
    this.path = path;
    this.cache = CuratorCache.build(zk, path, CuratorCache.Options.SINGLE_NODE_CACHE);
  }

  /**
   * Opens the state under {@code root} (e.g. {@code /veer/v1}), creating it with {@code initial}
   * settings if this is a new cluster, and starts watching it.
   */
  public static ClusterStore open(CuratorFramework zk, String root, ClusterSettings initial)
      throws Exception {
    ClusterStore store = new ClusterStore(zk, root + "/state");
    store.createIfAbsent(initial);
    store
        .cache
        .listenable()
        .addListener(
            CuratorCacheListener.builder()
                .forCreatesAndChanges((before, after) -> store.seen(after))
                .build());
    store.cache.start();
    store.seen(store.read().state());
    return store;
  }

  private void createIfAbsent(ClusterSettings initial) throws Exception {
    ClusterState fresh =
        ClusterState.newBuilder()
            .setSchemaVersion(SCHEMA_VERSION)
            .setVersion(1)
            .setSettings(initial)
            .build();
    try {
      zk.create().creatingParentsIfNeeded().forPath(path, fresh.toByteArray());
      log.info(
          "created the cluster state at {} (row bits {}, GUE port {})",
          path,
          initial.getRowBits(),
          initial.getGuePort());
    } catch (KeeperException.NodeExistsException e) {
      // Another coordinator, or an earlier run, made it: theirs stands.
    }
  }

  /** The newest state this process has seen. */
  public ClusterState current() {
    return current;
  }

  /** Calls {@code listener} with every newer state, from ZooKeeper's event thread or a writer's. */
  public void addListener(Consumer<ClusterState> listener) {
    listeners.add(listener);
  }

  /** Reads the state from ZooKeeper now, with the znode version it has. */
  public Versioned read() throws Exception {
    Stat stat = new Stat();
    byte[] data = zk.getData().storingStatIn(stat).forPath(path);
    return new Versioned(parse(data), stat.getVersion());
  }

  /**
   * Applies {@code change} to the current state and writes the result if the state is still the one
   * it was computed from, retrying on concurrent writes. With {@code expectedVersion} other than 0,
   * fails with ABORTED unless the state is at that version. A change that returns its input
   * unchanged writes nothing. {@code change} may throw {@link AdminException}; nothing is written
   * then.
   */
  public ClusterState update(long expectedVersion, UnaryOperator<ClusterState> change)
      throws Exception {
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      Versioned read = read();
      ClusterState before = read.state();
      if (expectedVersion != 0 && before.getVersion() != expectedVersion) {
        throw AdminException.stale(expectedVersion, before.getVersion());
      }
      ClusterState changed = change.apply(before);
      if (changed.equals(before)) {
        return before;
      }
      ClusterState next =
          changed.toBuilder()
              .setSchemaVersion(SCHEMA_VERSION)
              .setVersion(before.getVersion() + 1)
              .build();
      byte[] bytes = next.toByteArray();
      if (bytes.length > MAX_STATE_BYTES) {
        throw AdminException.precondition(
            "the cluster state would grow to %d bytes, over the %d a ZooKeeper node"
                + " holds safely: remove services or backends first",
            bytes.length, MAX_STATE_BYTES);
      }
      try {
        zk.setData().withVersion(read.znodeVersion()).forPath(path, bytes);
        seen(next);
        return next;
      } catch (KeeperException.BadVersionException e) {
        if (expectedVersion != 0) {
          throw AdminException.stale(expectedVersion, read().state().getVersion());
        }
        log.debug("concurrent write to {}; retrying", path);
      }
    }
    throw new AdminException(
        io.grpc.Status.Code.UNAVAILABLE,
        "the cluster state changed under " + MAX_ATTEMPTS + " attempts in a row; try again");
  }

  private void seen(ChildData data) {
    if (data != null && data.getData() != null) {
      try {
        seen(parse(data.getData()));
      } catch (RuntimeException e) {
        log.error("ignoring an unreadable cluster state at {}: {}", path, e.getMessage());
      }
    }
  }

  private void seen(ClusterState state) {
    synchronized (lock) {
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

  static ClusterState parse(byte[] data) {
    try {
      ClusterState state = ClusterState.parseFrom(data);
      checkState(
          state.getSchemaVersion() <= SCHEMA_VERSION,
          "the cluster state has schema version %s, newer than"
              + " this coordinator's %s: upgrade this coordinator",
          state.getSchemaVersion(),
          SCHEMA_VERSION);
      return state;
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException(
          "the cluster state znode does not hold a ClusterState: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    cache.close();
  }

  /** A state and the znode version it was read at. */
  public record Versioned(ClusterState state, int znodeVersion) {}
}
