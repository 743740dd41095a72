package dev.veer.bpf;

import com.google.common.base.Joiner;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs system commands (iproute2, sysctl, ethtool) with a deadline, failing loudly with their output. */
public final class Shell {
  private static final long TIMEOUT_SECONDS = 30;

  private Shell() {}

  /** Runs a command; returns its standard output or throws with everything it printed. */
  public static String run(String... command) {
    Result r = tryRun(command);
    if (r.exitCode() != 0) {
      throw new IllegalStateException("command failed (exit " + r.exitCode() + "): "
          + Joiner.on(' ').join(command) + "\n" + r.output().strip());
    }
    return r.output();
  }

  /** Runs a command and returns its exit code and combined output, whatever they are. */
  public static Result tryRun(String... command) {
    ProcessBuilder pb = new ProcessBuilder(List.of(command)).redirectErrorStream(true);
    try {
      Process p = pb.start();
      p.getOutputStream().close();
      byte[] out = p.getInputStream().readAllBytes();
      if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IllegalStateException("command timed out: " + Joiner.on(' ').join(command));
      }
      return new Result(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run " + command[0] + " (is it installed?)", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted running " + command[0], e);
    }
  }

  public record Result(int exitCode, String output) {}
}
