package dev.veer.bpf;

import com.google.common.base.Joiner;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs system commands (iproute2, sysctl, ethtool) with a deadline, failing loudly with their
 * output.
 */
public final class Shell {
  private static final long TIMEOUT_SECONDS = 30;

  private Shell() {}

  /** Runs a command; returns its standard output or throws with everything it printed. */
  public static String run(String... command) {
    Result r = tryRun(command);
    if (r.exitCode() != 0) {
      throw new IllegalStateException(
          "command failed (exit "
              + r.exitCode()
              + "): "
              + Joiner.on(' ').join(command)
              + "\n"
              + r.output().strip());
    }
    return r.output();
  }

  /** Runs a command and returns its exit code and combined output; kills it after 30 s. */
  public static Result tryRun(String... command) {
    File output = null;
    try {
      // Output goes to a file so that waiting is bounded even if the command never closes it.
      output = File.createTempFile("veer-cmd", ".out");
      Process p =
          new ProcessBuilder(List.of(command))
              .redirectErrorStream(true)
              .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
              .redirectOutput(output)
              .start();
      if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IllegalStateException(
            "command timed out after " + TIMEOUT_SECONDS + " s: " + Joiner.on(' ').join(command));
      }
      return new Result(p.exitValue(), Files.readString(output.toPath(), StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run " + command[0] + " (is it installed?)", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted running " + command[0], e);
    } finally {
      if (output != null) {
        output.delete();
      }
    }
  }

  public record Result(int exitCode, String output) {}
}
