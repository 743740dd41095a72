package dev.veer.testbed.cluster;

import dev.veer.coordinator.CoordinatorMain;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A coordinator in a JVM of its own ({@link JavaProcess}), on a free loopback port. */
public final class CoordinatorProcess implements AutoCloseable {
  private final String id;
  private final int port;
  private final JavaProcess process;

  private CoordinatorProcess(String id, int port, JavaProcess process) {
    this.id = id;
    this.port = port;
    this.process = process;
  }

  /** A coordinator of the ensemble at {@code zookeeper}, logging to {@code <logDir>/<id>.log}. */
  public static CoordinatorProcess start(
      String id, String zookeeper, Path logDir, String... options) throws IOException {
    int port = freePort();
    List<String> args =
        new ArrayList<>(
            List.of(
                "--id",
                id,
                "--listen",
                "127.0.0.1:" + port,
                "--zookeeper",
                zookeeper,
                "--session-timeout-ms",
                "3000",
                "--settle-seconds",
                "600"));
    args.addAll(List.of(options));
    return new CoordinatorProcess(
        id, port, JavaProcess.start(id, CoordinatorMain.class, args, logDir.resolve(id + ".log")));
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

  /** The coordinator JVM's process id (for jcmd, /proc). */
  public long pid() {
    return process.pid();
  }

  public boolean alive() {
    return process.alive();
  }

  public void kill() throws InterruptedException {
    process.kill();
  }

  @Override
  public void close() throws InterruptedException {
    process.close();
  }
}
