package dev.veer.coordinator.cluster;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Parser;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.ToLongFunction;
import java.util.function.UnaryOperator;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the members a coordinator serves (directors, proxy agents) report: one ephemeral znode per
 * member and coordinator ({@code <path>/<member>@<coordinator>}), written by the coordinator that
 * serves it, so it vanishes with that coordinator's session and every coordinator can report on
 * every member. Writes are asynchronous: a report never waits for ZooKeeper.
 *
 * <p>A status is written when it changed, not on every report: members report every second or so,
 * and a write per report would grow ZooKeeper's load with the fleet and with time instead of with
 * changes. Its report time alone does not count as a change; an unchanged status is written again
 * only after {@link #HEARTBEAT}, or when a reader needs a newer report time ({@link #put(Message,
 * boolean)}).
 */
public final class StatusRegistry<T extends Message> implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(StatusRegistry.class);

  private final CuratorFramework zk;
  private final String path;
  private final String coordinatorId;
  private final Parser<T> parser;
  private final Function<T, String> memberId;
  private final ToLongFunction<T> reportedAt;
  private final UnaryOperator<T> timeless;
  private final Map<String, T> latest = new java.util.concurrent.ConcurrentHashMap<>();

  /** What was last written for each member: without its report time, that time, and when. */
  private record Written(Message timeless, long reportedAt, long atNanos) {}

  private final Map<String, Written> written = new java.util.concurrent.ConcurrentHashMap<>();
  private final java.util.concurrent.atomic.AtomicLong writes =
      new java.util.concurrent.atomic.AtomicLong();

  /** An unchanged status is written again after this long, so report times stay roughly fresh. */
  public static final java.time.Duration HEARTBEAT = java.time.Duration.ofSeconds(30);

  private static final long RETRY_MILLIS = 250;
  private final java.util.concurrent.ScheduledExecutorService retries =
      java.util.concurrent.Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-status-retry").daemon(true).factory());

  /**
   * @param memberId a status's member id
   * @param reportedAt when a status was reported: of two for one member, the newer counts
   * @param timeless the status without its report time, to tell a change from a repeat
   */
  public StatusRegistry(
      CuratorFramework zk,
      String path,
      String coordinatorId,
      Parser<T> parser,
      Function<T, String> memberId,
      ToLongFunction<T> reportedAt,
      UnaryOperator<T> timeless) {
    this.zk = zk;
    this.timeless = timeless;
    this.path = path;
    this.coordinatorId = coordinatorId;
    this.parser = parser;
    this.memberId = memberId;
    this.reportedAt = reportedAt;
    this.cache = CuratorCache.build(zk, path);
    cache.start();
  }

  /**
   * Every coordinator's status znodes, kept by watches: {@link #all()} is asked on every admin call
   * and every round of the leader, and listing and reading each member's znode every time cost a
   * dozen ZooKeeper round trips a call (tens of milliseconds on a loaded machine).
   */
  private final CuratorCache cache;

  public String path() {
    return path;
  }

  /**
   * Records a member's status. A write that fails (ZooKeeper unreachable for a moment) is tried
   * again until it lands or a newer status for the member replaces it, so what the registry shows
   * catches up with what the member last said.
   */
  public void put(T status) {
    put(status, false);
  }

  /**
   * Records a member's status, writing it if it changed, if the last write is older than {@link
   * #HEARTBEAT}, or if {@code fresh} (a reader needs this report's time).
   */
  public void put(T status, boolean fresh) {
    String member = memberId.apply(status);
    latest.put(member, status);
    T withoutTime = timeless.apply(status);
    long now = System.nanoTime();
    Written last = written.get(member);
    if (!fresh
        && last != null
        && last.timeless().equals(withoutTime)
        && now - last.atNanos() < HEARTBEAT.toNanos()) {
      return;
    }
    written.put(member, new Written(withoutTime, reportedAt.applyAsLong(status), now));
    write(member, status);
  }

  /** When the status written last for {@code member} was reported (0: none written). */
  public long writtenReportTime(String member) {
    Written last = written.get(member);
    return last == null ? 0 : last.reportedAt();
  }

  /** ZooKeeper writes this registry has issued (status znodes created or set). */
  public long writes() {
    return writes.get();
  }

  private void write(String member, T status) {
    String node = node(member);
    writes.incrementAndGet();
    try {
      zk.create()
          .orSetData()
          .creatingParentContainersIfNeeded()
          .withMode(CreateMode.EPHEMERAL)
          .inBackground(
              (client, event) -> {
                if (event.getResultCode() != KeeperException.Code.OK.intValue()) {
                  log.warn(
                      "could not record {}: {}; retrying",
                      node,
                      KeeperException.Code.get(event.getResultCode()));
                  retry(member, status);
                }
              })
          .forPath(node, status.toByteArray());
    } catch (Exception e) {
      log.warn("could not record {}: {}; retrying", node, e.toString());
      retry(member, status);
    }
  }

  private void retry(String member, T status) {
    retries.schedule(
        () -> {
          if (latest.get(member) == status) {
            write(member, status);
          }
        },
        RETRY_MILLIS,
        java.util.concurrent.TimeUnit.MILLISECONDS);
  }

  public void remove(String member) {
    latest.remove(member);
    written.remove(member);
    try {
      zk.delete().quietly().inBackground().forPath(node(member));
    } catch (Exception e) {
      log.warn("could not remove {}: {}", node(member), e.toString());
    }
  }

  /** Every member some coordinator serves: its newest status, by member id. */
  public List<T> all() throws Exception {
    Map<String, T> byId = new HashMap<>();
    String prefix = path + "/";
    for (ChildData child : (Iterable<ChildData>) cache.stream()::iterator) {
      String node = child.getPath();
      if (!node.startsWith(prefix) || node.indexOf('/', prefix.length()) >= 0) {
        continue; // the registry's own node
      }
      try {
        T status = parser.parseFrom(child.getData());
        byId.merge(
            memberId.apply(status),
            status,
            (a, b) -> reportedAt.applyAsLong(a) >= reportedAt.applyAsLong(b) ? a : b);
      } catch (InvalidProtocolBufferException e) {
        log.warn("ignoring unreadable status {}", node);
      }
    }
    List<T> out = new ArrayList<>(byId.values());
    out.sort(Comparator.comparing(memberId));
    return out;
  }

  /** Which coordinator's node this is: the part after '@'. */
  public String coordinatorId() {
    return coordinatorId;
  }

  private String node(String member) {
    return path + "/" + member + "@" + coordinatorId;
  }

  @Override
  public void close() {
    retries.shutdownNow();
    cache.close();
  }
}
