package dev.veer.coordinator.cluster;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.veer.proto.admin.v1.CoordinatorStatus;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A coordinator's place in the cluster: an ephemeral registration under {@code <root>/coordinators}
 * that says where it serves gRPC (kept across session loss by Curator's {@link PersistentNode}),
 * and a Curator {@link LeaderLatch} that makes exactly one coordinator the leader, the only one
 * that makes changes nobody asked for (health, settling).
 */
public final class Membership implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Membership.class);

  private final CuratorFramework zk;
  private final String coordinatorsPath;
  private final String id;
  private final PersistentNode registration;
  private final LeaderLatch latch;

  public Membership(CuratorFramework zk, String root, String id, String address) {
    this.zk = zk;
    this.coordinatorsPath = root + "/coordinators";
    this.id = id;
    byte[] data =
        CoordinatorStatus.newBuilder().setId(id).setAddress(address).build().toByteArray();
    this.registration =
        new PersistentNode(zk, CreateMode.EPHEMERAL, false, coordinatorsPath + "/" + id, data);
    this.latch = new LeaderLatch(zk, root + "/leader", id);
    latch.addListener(
        new org.apache.curator.framework.recipes.leader.LeaderLatchListener() {
          @Override
          public void isLeader() {
            log.info("coordinator {} is the leader", id);
          }

          @Override
          public void notLeader() {
            log.info("coordinator {} is no longer the leader", id);
          }
        });
  }

  public void start() throws Exception {
    registration.start();
    latch.start();
  }

  public String id() {
    return id;
  }

  /** Whether this coordinator leads now (as far as its ZooKeeper session knows). */
  public boolean isLeader() {
    return latch.hasLeadership();
  }

  /** Every registered coordinator, with the leader marked. */
  public List<CoordinatorStatus> coordinators() throws Exception {
    String leader = "";
    try {
      leader = latch.getLeader().getId();
    } catch (Exception e) {
      log.debug("no leader known: {}", e.toString());
    }
    List<CoordinatorStatus> out = new ArrayList<>();
    List<String> children;
    try {
      children = zk.getChildren().forPath(coordinatorsPath);
    } catch (KeeperException.NoNodeException e) {
      return out;
    }
    for (String child : children) {
      try {
        CoordinatorStatus status =
            CoordinatorStatus.parseFrom(zk.getData().forPath(coordinatorsPath + "/" + child));
        out.add(status.toBuilder().setLeader(status.getId().equals(leader)).build());
      } catch (KeeperException.NoNodeException | InvalidProtocolBufferException e) {
        log.debug("skipping coordinator node {}: {}", child, e.toString());
      }
    }
    out.sort(Comparator.comparing(CoordinatorStatus::getId));
    return out;
  }

  @Override
  public void close() throws Exception {
    try {
      latch.close();
    } finally {
      registration.close();
    }
  }
}
