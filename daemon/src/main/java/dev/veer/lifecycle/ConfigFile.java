package dev.veer.lifecycle;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * A daemon's settings from a file given with {@code --config FILE}: lines {@code name = value},
 * where {@code name} is an option's long name without its dashes ({@code listen = 0.0.0.0:7400}),
 * and {@code #} starts a comment. Flags on the command line win over the file. A name that is no
 * option of the daemon, or a line that is not a setting, is refused before anything starts.
 */
public final class ConfigFile implements CommandLine.IDefaultValueProvider {
  public static final String OPTION = "--config";

  private final Map<String, String> values;

  private ConfigFile(Map<String, String> values) {
    this.values = values;
  }

  @Override
  public String defaultValue(ArgSpec argSpec) {
    if (argSpec instanceof OptionSpec option) {
      return values.get(option.longestName().replaceFirst("^-+", ""));
    }
    return null;
  }

  /**
   * The command line for {@code command}, its defaults read from the {@code --config} file if any.
   */
  public static CommandLine commandLine(Object command, String[] args) {
    CommandLine line = new CommandLine(command);
    Optional<Path> file = find(args);
    if (file.isPresent()) {
      line.setDefaultValueProvider(load(file.get(), line.getCommandSpec()));
    }
    return line;
  }

  /**
   * Runs a daemon's command line, its config file read first: the exit code, 2 for a config file
   * that cannot be used (its problems printed first).
   */
  public static int run(Object command, String[] args) {
    Logging.routeJavaUtilLogging();
    CommandLine line;
    try {
      line = commandLine(command, args);
    } catch (IllegalArgumentException e) {
      System.err.println(e.getMessage());
      return 2;
    }
    // A setting the daemon refuses (IllegalArgumentException) is the operator's to fix: its
    // message, not a stack trace, and the exit code of a bad command line.
    line.setExecutionExceptionHandler(
        (e, failed, parsed) -> {
          if (!(e instanceof IllegalArgumentException)) {
            throw e;
          }
          failed.getErr().println(failed.getCommandName() + ": " + e.getMessage());
          return 2;
        });
    return line.execute(args);
  }

  private static Optional<Path> find(String[] args) {
    for (int i = 0; i < args.length; i++) {
      if (args[i].equals(OPTION) && i + 1 < args.length) {
        return Optional.of(Path.of(args[i + 1]));
      }
      if (args[i].startsWith(OPTION + "=")) {
        return Optional.of(Path.of(args[i].substring(OPTION.length() + 1)));
      }
    }
    return Optional.empty();
  }

  static ConfigFile load(Path file, CommandSpec spec) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "cannot read the config file " + file + ": " + e.getMessage(), e);
    }
    TreeSet<String> known = new TreeSet<>();
    for (OptionSpec option : spec.options()) {
      String name = option.longestName().replaceFirst("^-+", "");
      if (!name.equals("config") && !option.usageHelp() && !option.versionHelp()) {
        known.add(name);
      }
    }
    Map<String, String> values = new LinkedHashMap<>();
    List<String> problems = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).replaceFirst("\\s#.*$", "").replaceFirst("^#.*$", "").trim();
      if (line.isEmpty()) {
        continue;
      }
      int eq = line.indexOf('=');
      String where = file + " line " + (i + 1);
      if (eq <= 0) {
        problems.add(where + ": expected 'name = value', got '" + line + "'");
        continue;
      }
      String name = line.substring(0, eq).trim();
      if (!known.contains(name)) {
        problems.add(
            where + ": unknown setting '" + name + "'; settings are " + String.join(", ", known));
        continue;
      }
      values.put(name, line.substring(eq + 1).trim());
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(String.join("\n", problems));
    }
    return new ConfigFile(values);
  }
}
