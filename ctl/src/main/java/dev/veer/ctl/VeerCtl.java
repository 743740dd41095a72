package dev.veer.ctl;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import dev.veer.lifecycle.CoordinatorOptions;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.time.Duration;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code veer ctl}: every admin operation of a Veer cluster from the command line. Prints tables
 * for people and, with {@code --json}, the API's messages as JSON for scripts; the exit code says
 * what kind of outcome it was ({@link ExitCodes}).
 */
@Command(
    name = "veer ctl",
    mixinStandardHelpOptions = true,
    version = "veer ctl 0.1",
    description = "Administer a Veer cluster through any of its coordinators.",
    subcommands = {
      ServiceCommands.class,
      BackendCommands.class,
      StatusCommand.class,
      TableCommand.class,
      LookupCommand.class
    },
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:done",
      "1:failed otherwise",
      "2:wrong command line",
      "3:no such service or backend",
      "4:conflicts with the state (exists, stale version, precondition)",
      "5:invalid request",
      "6:no coordinator answered",
      "7:not authenticated or not allowed"
    })
public final class VeerCtl {
  @Spec CommandLine.Model.CommandSpec spec;

  @Mixin CoordinatorOptions coordinators;

  @Option(names = "--json", description = "Print the API's answer as JSON.")
  boolean json;

  @Option(
      names = "--timeout",
      paramLabel = "SECONDS",
      defaultValue = "10",
      description = "Per-call deadline in seconds (default ${DEFAULT-VALUE}).")
  int timeoutSeconds;

  public static void main(String[] args) {
    System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
  }

  /** Runs one command line; returns its exit code. */
  public static int run(String[] args, PrintWriter out, PrintWriter err) {
    CommandLine cli = new CommandLine(new VeerCtl());
    cli.setOut(out);
    cli.setErr(err);
    cli.setExecutionExceptionHandler(
        (e, line, parsed) -> {
          if (e instanceof StatusRuntimeException s) {
            line.getErr()
                .println(
                    "veer ctl: " + s.getStatus().getCode() + ": " + s.getStatus().getDescription());
            return ExitCodes.of(s.getStatus().getCode());
          }
          if (e instanceof IllegalArgumentException) {
            line.getErr().println("veer ctl: " + e.getMessage());
            return ExitCodes.USAGE;
          }
          line.getErr().println("veer ctl: " + e);
          return ExitCodes.FAILED;
        });
    return cli.execute(args);
  }

  AdminClient client() {
    return new AdminClient(
        coordinators.coordinators(),
        coordinators.tls(),
        coordinators.token(),
        Duration.ofSeconds(timeoutSeconds));
  }

  PrintWriter out() {
    return spec.commandLine().getOut();
  }

  /** Prints {@code message} as JSON with --json, else what {@code human} prints. */
  void print(MessageOrBuilder message, Runnable human) {
    if (json) {
      try {
        out().println(JsonFormat.printer().print(message));
      } catch (InvalidProtocolBufferException e) {
        throw new IllegalStateException(e);
      }
    } else {
      human.run();
    }
  }
}
