package dev.veer.coordinator.sync;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.veer.proto.admin.v1.DirectorStatus;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.curator.framework.CuratorFramework;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which directors are connected where, and what they run: one ephemeral znode per director and
 * coordinator ({@code <root>/directors/<director>@<coordinator>}), written by the coordinator
 * that serves it, so it vanishes with that coordinator's session and every coordinator can
 * report on every director.
 */
public final class DirectorRegistry {
  private static final Logger log = LoggerFactory.getLogger(DirectorRegistry.class);

  private final CuratorFramework zk;
  private final String path;
  private final String coordinatorId;

  public DirectorRegistry(CuratorFramework zk, String root, String coordinatorId) {
    this.zk = zk;
    this.path = root + "/directors";
    this.coordinatorId = coordinatorId;
  }

  /** Records a director's status; asynchronous, so acknowledgements never wait for ZooKeeper. */
  void put(DirectorStatus status) {
    String node = node(status.getId());
    byte[] data = status.toBuilder().setCoordinator(coordinatorId).build().toByteArray();
    try {
      zk.create().orSetData().creatingParentContainersIfNeeded().withMode(CreateMode.EPHEMERAL)
          .inBackground((client, event) -> {
            if (event.getResultCode() != KeeperException.Code.OK.intValue()) {
              log.warn("could not record director {} at {}: {}", status.getId(), node,
                  KeeperException.Code.get(event.getResultCode()));
            }
          }).forPath(node, data);
    } catch (Exception e) {
      log.warn("could not record director {}: {}", status.getId(), e.toString());
    }
  }

  void remove(String directorId) {
    try {
      zk.delete().quietly().inBackground().forPath(node(directorId));
    } catch (Exception e) {
      log.warn("could not remove director {}: {}", directorId, e.toString());
    }
  }

  /** Every director some coordinator serves; one entry per director, its newest report. */
  public List<DirectorStatus> all() throws Exception {
    Map<String, DirectorStatus> byId = new HashMap<>();
    List<String> children;
    try {
      children = zk.getChildren().forPath(path);
    } catch (KeeperException.NoNodeException e) {
      return List.of();
    }
    for (String child : children) {
      try {
        DirectorStatus status = DirectorStatus.parseFrom(zk.getData().forPath(path + "/" + child));
        byId.merge(status.getId(), status,
            (a, b) -> a.getAppliedAtMillis() >= b.getAppliedAtMillis() ? a : b);
      } catch (KeeperException.NoNodeException e) {
        // Gone between listing and reading.
      } catch (InvalidProtocolBufferException e) {
        log.warn("ignoring unreadable director status {}", child);
      }
    }
    List<DirectorStatus> out = new ArrayList<>(byId.values());
    out.sort(Comparator.comparing(DirectorStatus::getId));
    return out;
  }

  private String node(String directorId) {
    return path + "/" + directorId + "@" + coordinatorId;
  }
}
