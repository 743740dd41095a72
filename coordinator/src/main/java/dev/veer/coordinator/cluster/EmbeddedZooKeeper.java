package dev.veer.coordinator.cluster;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import org.apache.zookeeper.server.embedded.ExitHandler;
import org.apache.zookeeper.server.embedded.ZooKeeperServerEmbedded;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A single-node ZooKeeper inside the coordinator's process, for a one-machine cluster. Its data
 * lives in a directory of the operator's choosing, so the desired state survives restarts. A
 * production cluster runs a ZooKeeper ensemble instead and gives its connect string.
 */
public final class EmbeddedZooKeeper implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EmbeddedZooKeeper.class);

  private final ZooKeeperServerEmbedded server;
  private final String connectString;

  private EmbeddedZooKeeper(ZooKeeperServerEmbedded server, String connectString) {
    this.server = server;
    this.connectString = connectString;
  }

  /** Starts a node serving {@code listen} with its data in {@code dataDir}. */
  public static EmbeddedZooKeeper start(Path dataDir, InetSocketAddress listen) throws Exception {
    Files.createDirectories(dataDir);
    Properties config = new Properties();
    config.setProperty("clientPort", Integer.toString(listen.getPort()));
    config.setProperty("clientPortAddress", listen.getHostString());
    config.setProperty("tickTime", "500");
    config.setProperty("initLimit", "10");
    config.setProperty("syncLimit", "5");
    config.setProperty("admin.enableServer", "false");
    config.setProperty("4lw.commands.whitelist", "ruok,srvr");
    // Snapshots and transaction logs would otherwise pile up for ever (about 0.5 GB a day under
    // a demo cluster's load): keep the newest 3, purged every hour (ZooKeeper's smallest period).
    config.setProperty("autopurge.snapRetainCount", "3");
    config.setProperty("autopurge.purgeInterval", "1");
    ZooKeeperServerEmbedded server =
        ZooKeeperServerEmbedded.builder()
            .baseDir(dataDir)
            .configuration(config)
            .exitHandler(ExitHandler.LOG_ONLY)
            .build();
    try {
      server.start(30_000);
      String connect = listen.getHostString() + ":" + server.getClientPort();
      log.info("embedded ZooKeeper serving {} with data in {}", connect, dataDir);
      return new EmbeddedZooKeeper(server, connect);
    } catch (Exception e) {
      server.close();
      throw e;
    }
  }

  public String connectString() {
    return connectString;
  }

  @Override
  public void close() {
    server.close();
  }
}
