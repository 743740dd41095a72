package dev.veer.testbed.cluster;

import java.io.IOException;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingCluster;

/**
 * A real ZooKeeper ensemble of in-process servers on loopback, for the tests and the survival
 * suite. Its servers do not fsync their transaction logs ({@code forceSync=no}): they share one
 * disk of a test machine, where three fsyncs a write made a write take about 0.2 s, and durability
 * across a power cut is not what the tests test. Everything else is a real quorum.
 */
public final class ZooKeeperEnsemble {
  private ZooKeeperEnsemble() {}

  /**
   * Starts {@code servers} servers whose client, election and quorum ports are all distinct: they
   * were all held open at once when chosen. (Curator's own choice probes one port at a time and can
   * hand out a port twice: "Client and election port must be different".)
   */
  public static TestingCluster start(int servers) throws Exception {
    TestingCluster cluster = new TestingCluster(specs(servers));
    try {
      cluster.start();
      return cluster;
    } catch (Exception e) {
      cluster.close();
      throw e;
    }
  }

  private static List<InstanceSpec> specs(int servers) throws IOException {
    List<ServerSocket> held = new ArrayList<>();
    try {
      for (int i = 0; i < servers * 3; i++) {
        held.add(new ServerSocket(0));
      }
      List<InstanceSpec> specs = new ArrayList<>();
      for (int s = 0; s < servers; s++) {
        specs.add(
            new InstanceSpec(
                null,
                held.get(3 * s).getLocalPort(),
                held.get(3 * s + 1).getLocalPort(),
                held.get(3 * s + 2).getLocalPort(),
                true,
                s + 1,
                -1,
                -1,
                Map.of("forceSync", "no")));
      }
      return specs;
    } finally {
      for (ServerSocket socket : held) {
        socket.close();
      }
    }
  }
}
