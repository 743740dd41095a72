package dev.veer.bpf;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Test-only BPF objects, compiled from src/test/resources/bpf-test with the build's clang. */
final class TestObjects {
  private TestObjects() {}

  /** Compiles bpf-test/{@code name}.c into {@code dir}/{@code name}.o. */
  static Path compile(String name, Path dir) throws IOException, InterruptedException {
    Path source = dir.resolve(name + ".c");
    try (InputStream in = TestObjects.class.getResourceAsStream("/bpf-test/" + name + ".c")) {
      Files.copy(in, source);
    }
    Path object = dir.resolve(name + ".o");
    Process clang =
        new ProcessBuilder(
                List.of(
                    "clang",
                    "-O2",
                    "-g",
                    "-Wall",
                    "-Werror",
                    "-target",
                    "bpf",
                    "-I/usr/include/x86_64-linux-gnu",
                    "-c",
                    source.toString(),
                    "-o",
                    object.toString()))
            .redirectErrorStream(true)
            .start();
    String output = new String(clang.getInputStream().readAllBytes());
    if (!clang.waitFor(60, TimeUnit.SECONDS) || clang.exitValue() != 0) {
      throw new IllegalStateException("clang failed on " + source + ":\n" + output);
    }
    return object;
  }

  /** Runs a command (ip, ...) and fails with its output if it does not succeed. */
  static String exec(String... command) throws IOException, InterruptedException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes());
    if (!process.waitFor(30, TimeUnit.SECONDS) || process.exitValue() != 0) {
      throw new IllegalStateException(String.join(" ", command) + " failed:\n" + output);
    }
    return output;
  }
}
