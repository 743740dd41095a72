package dev.veer.testbed.cluster;

import dev.veer.bpf.Shell;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * One of Veer's daemons in a JVM of its own, started from this JVM's classpath, so that a test can
 * kill it the way a machine or an operator does: SIGKILL, no shutdown hook.
 */
public final class JavaProcess implements AutoCloseable {
  private final String name;
  private final Process process;
  private final Path log;
  private final long logStart;

  private JavaProcess(String name, Process process, Path log, long logStart) {
    this.name = name;
    this.process = process;
    this.log = log;
    this.logStart = logStart;
  }

  /** Runs {@code mainClass} with {@code args}, its output appended to {@code log}. */
  public static JavaProcess start(String name, Class<?> mainClass, List<String> args, Path log)
      throws IOException {
    List<String> command =
        new ArrayList<>(
            List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                System.getProperty("java.class.path"),
                mainClass.getName()));
    command.addAll(args);
    return start(name, command, log);
  }

  /** Runs {@code command} (a daemon started some other way), its output appended to {@code log}. */
  public static JavaProcess start(String name, List<String> command, Path log) throws IOException {
    long logStart = Files.exists(log) ? Files.size(log) : 0;
    Process process =
        new ProcessBuilder(command)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
    return new JavaProcess(name, process, log, logStart);
  }

  public String name() {
    return name;
  }

  public long pid() {
    return process.pid();
  }

  public boolean alive() {
    return process.isAlive();
  }

  /**
   * Waits until this run of the process has logged {@code text}; fails with the log's end if the
   * process exits first or the time runs out.
   */
  public void awaitLog(String text, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      String output = output();
      if (output.contains(text)) {
        return;
      }
      if (!process.isAlive() || System.nanoTime() > deadline) {
        String tail = output.substring(Math.max(0, output.length() - 8000));
        throw new IllegalStateException(
            name
                + (process.isAlive()
                    ? " did not log '" + text + "' in " + timeout
                    : " exited with " + process.exitValue())
                + "; its log ("
                + log
                + ") ends:\n"
                + tail);
      }
      Thread.sleep(50);
    }
  }

  /** What this run of the process has logged so far. */
  private String output() {
    try (RandomAccessFile file = new RandomAccessFile(log.toFile(), "r")) {
      long length = file.length() - logStart;
      byte[] bytes = new byte[(int) Math.max(0, Math.min(length, 1 << 24))];
      file.seek(logStart);
      file.readFully(bytes);
      return new String(bytes, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "";
    }
  }

  /** SIGSTOP (true) or SIGCONT (false): a host that stops answering, and comes back. */
  public void freeze(boolean frozen) {
    Shell.run("kill", frozen ? "-STOP" : "-CONT", Long.toString(process.pid()));
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
