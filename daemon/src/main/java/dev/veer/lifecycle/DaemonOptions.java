package dev.veer.lifecycle;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** What every daemon takes (a picocli mixin): its config file and where to serve its metrics. */
public final class DaemonOptions {
  @Option(
      names = ConfigFile.OPTION,
      paramLabel = "FILE",
      description =
          "Settings from a file: lines 'name = value' (an option's name without dashes); flags win.")
  Path config;

  @Option(
      names = "--metrics-listen",
      paramLabel = "HOST:PORT",
      description = "Serve Prometheus metrics at http://HOST:PORT/metrics.")
  String metricsListen;

  /** Where to serve metrics ("host:port"), or null for nowhere. */
  public String metricsListen() {
    return metricsListen;
  }
}
