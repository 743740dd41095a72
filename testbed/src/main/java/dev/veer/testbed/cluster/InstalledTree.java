package dev.veer.testbed.cluster;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Veer as its Debian packages install it, extracted under {@code root}: daemons started from it run
 * on its bundled Java runtime with exactly the capabilities their systemd unit grants ({@code
 * CapabilityBoundingSet=}, applied with {@code setpriv} as systemd applies it to a root service).
 */
public record InstalledTree(Path root) {
  /** The system property naming an extracted tree, set by {@code packaging/check-debs}. */
  public static final String PROPERTY = "veer.installed.root";

  /** The command that runs {@code veer <role>} from this tree as the role's unit would. */
  public List<String> command(String role) {
    List<String> command = new ArrayList<>();
    command.add("setpriv");
    command.add("--bounding-set=-all" + capabilities(role));
    command.add("--inh-caps=-all");
    command.add("--");
    command.add(root.resolve("usr/bin/veer").toString());
    command.add(role);
    return command;
  }

  /** The unit's bounding set as setpriv takes it: ",+bpf,+perfmon,..." ("" for none). */
  private String capabilities(String role) {
    Path unit = root.resolve("lib/systemd/system/veer-" + role + ".service");
    try {
      StringBuilder out = new StringBuilder();
      for (String line : Files.readAllLines(unit)) {
        if (line.startsWith("CapabilityBoundingSet=")) {
          for (String cap : line.substring(line.indexOf('=') + 1).trim().split("\\s+")) {
            if (!cap.isEmpty()) {
              out.append(",+").append(cap.replaceFirst("^CAP_", "").toLowerCase(Locale.ROOT));
            }
          }
          return out.toString();
        }
      }
      throw new IllegalStateException(unit + " sets no CapabilityBoundingSet");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + unit, e);
    }
  }
}
