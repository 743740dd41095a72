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
public final class CoordinatorProcess implements AutoCloseable {
  private final String id;
  private final int port;
  private final Process process;

  private CoordinatorProcess(String id, int port, Process process) {
    this.id = id;
    this.port = port;
    this.process = process;
  }

  /** A coordinator of the ensemble at {@code zookeeper}, logging to {@code <logDir>/<id>.log}. */
  public static CoordinatorProcess start(String id, String zookeeper, Path logDir, String... options)
      throws IOException {
    int port = freePort();
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
        "-cp", System.getProperty("java.class.path"), CoordinatorMain.class.getName(), "--id", id,
        "--listen", "127.0.0.1:" + port, "--zookeeper", zookeeper, "--session-timeout-ms", "3000",
        "--settle-seconds", "600"));
    command.addAll(List.of(options));
    Process process = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(logDir.resolve(id + ".log").toFile()).start();
    return new CoordinatorProcess(id, port, process);
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    }
  }

  public String id() {
    return id;
  }

  public String target() {
    return "127.0.0.1:" + port;
  }

  public boolean alive() {
    return process.isAlive();
  }

  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  @Override
  public void close() throws InterruptedException {
    // Polite first: a coordinator that stops cleanly hands its leadership over at once.
    if (process.isAlive()) {
      process.destroy();
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        kill();
      }
    }
  }
}
