package dev.veer.testbed.cluster;

import dev.veer.coordinator.CoordinatorMain;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A coordinator in a JVM of its own, so that a test can kill it the way an operator's machine
 * dies: SIGKILL, no shutdown hook, its ZooKeeper session left to expire.
 */
final class CoordinatorProcess implements AutoCloseable {
  private final String id;
  private final int port;
  private final Process process;

  private CoordinatorProcess(String id, int port, Process process) {
    this.id = id;
    this.port = port;
    this.process = process;
  }

  static CoordinatorProcess start(String id, String zookeeper, Path logDir) throws IOException {
    int port = freePort();
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
        "-cp", System.getProperty("java.class.path"), CoordinatorMain.class.getName(), "--id", id,
        "--listen", "127.0.0.1:" + port, "--zookeeper", zookeeper, "--session-timeout-ms", "3000",
        "--settle-seconds", "600"));
    Process process = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(logDir.resolve(id + ".log").toFile()).start();
    return new CoordinatorProcess(id, port, process);
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }

  String id() {
    return id;
  }

  String target() {
    return "127.0.0.1:" + port;
  }

  boolean alive() {
    return process.isAlive();
  }

  void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  @Override
  public void close() throws InterruptedException {
    if (process.isAlive()) {
      process.destroy();
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        kill();
      }
    }
  }
}
