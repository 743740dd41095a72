package dev.veer.testbed.cluster;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One of Veer's daemons in a JVM of its own, started from this JVM's classpath, so that a test
 * can kill it the way a machine or an operator does: SIGKILL, no shutdown hook.
 */
public final class JavaProcess implements AutoCloseable {
  private final String name;
  private final Process process;

  private JavaProcess(String name, Process process) {
    this.name = name;
    this.process = process;
  }

  /** Runs {@code mainClass} with {@code args}, its output in {@code log}. */
  public static JavaProcess start(String name, Class<?> mainClass, List<String> args, Path log) throws IOException {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
        "-cp", System.getProperty("java.class.path"), mainClass.getName()));
    command.addAll(args);
    return new JavaProcess(name, new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile())
        .start());
  }

  public String name() {
    return name;
  }

  public boolean alive() {
    return process.isAlive();
  }

  /** SIGKILL, and waits for it to be gone. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor(10, TimeUnit.SECONDS);
  }

  /** SIGTERM (the daemon stops as it does on a host), then SIGKILL after 10 s. */
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
