package dev.veer.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.veer.lifecycle.ConfigFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * A daemon's config file: settings by option name, flags winning, every mistake refused up front.
 */
class ConfigFileTest {
  @TempDir Path dir;

  CoordinatorMain parse(String... args) {
    CoordinatorMain main = new CoordinatorMain();
    ConfigFile.commandLine(main, args).parseArgs(args);
    return main;
  }

  @Test
  void settingsComeFromTheFileAndFlagsWin() throws Exception {
    Path file =
        Files.writeString(
            dir.resolve("coordinator.conf"),
            """
        # a coordinator of the ensemble
        listen = 0.0.0.0:7400
        zookeeper = zk1:2181,zk2:2181   # three nodes in production
        settle-seconds = 900
        """);
    CoordinatorMain fromFile = parse("--config", file.toString());
    assertThat(fromFile.listen).isEqualTo("0.0.0.0:7400");
    assertThat(fromFile.zookeeper).isEqualTo("zk1:2181,zk2:2181");
    assertThat(fromFile.settleSeconds).isEqualTo(900);
    assertThat(fromFile.rowBits).as("not in the file: the default").isEqualTo(16);
    CoordinatorMain flagged = parse("--config", file.toString(), "--settle-seconds", "60");
    assertThat(flagged.settleSeconds).isEqualTo(60);
  }

  @Test
  void unknownSettingsAndMalformedLinesAreRefusedWithTheirLine() throws Exception {
    Path file =
        Files.writeString(
            dir.resolve("bad.conf"), "listen = 0.0.0.0:7400\nlisten-on = x\nnonsense\n");
    assertThatThrownBy(() -> parse("--config", file.toString()))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("line 2: unknown setting 'listen-on'")
        .hasMessageContaining("settings are")
        .hasMessageContaining("line 3: expected 'name = value'");
    assertThatThrownBy(() -> parse("--config", dir.resolve("missing.conf").toString()))
        .hasMessageContaining("cannot read the config file");
  }

  @Test
  void aBadValueInTheFileIsAUsageError() throws Exception {
    Path file = Files.writeString(dir.resolve("typo.conf"), "row-bits = sixteen\n");
    assertThatThrownBy(() -> parse("--config", file.toString()))
        .isInstanceOf(CommandLine.ParameterException.class)
        .hasMessageContaining("sixteen");
  }

  @Test
  void aSettingTheDaemonRefusesEndsItWithItsMessageAndExitCode2() {
    java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
    java.io.PrintStream saved = System.err;
    int code;
    System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
    try {
      code =
          ConfigFile.run(
              new CoordinatorMain(),
              new String[] {"--row-bits", "3", "--data-dir", dir.resolve("data").toString()});
    } finally {
      System.setErr(saved);
    }
    assertThat(code).isEqualTo(2);
    assertThat(err.toString(java.nio.charset.StandardCharsets.UTF_8))
        .startsWith("veer coordinator: ")
        .contains("row")
        .doesNotContain("\tat ");
  }
}
