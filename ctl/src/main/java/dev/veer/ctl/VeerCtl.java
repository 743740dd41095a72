package dev.veer.ctl;

import com.google.common.base.Splitter;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageOrBuilder;
import com.google.protobuf.util.JsonFormat;
import dev.veer.transport.BearerToken;
import dev.veer.transport.TlsFiles;
import io.grpc.StatusRuntimeException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code veer ctl}: every admin operation of a Veer cluster from the command line. Prints tables
 * for people and, with {@code --json}, the API's messages as JSON for scripts; the exit code says
 * what kind of outcome it was ({@link ExitCodes}).
 */
@Command(name = "veer ctl", mixinStandardHelpOptions = true, version = "veer ctl 0.1",
    description = "Administer a Veer cluster through any of its coordinators.",
    subcommands = {ServiceCommands.class, BackendCommands.class, StatusCommand.class, TableCommand.class,
        LookupCommand.class},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:done", "1:failed otherwise", "2:wrong command line", "3:no such service or backend",
        "4:conflicts with the state (exists, stale version, precondition)", "5:invalid request",
        "6:no coordinator answered", "7:not authenticated or not allowed"})
public final class VeerCtl {
  @Spec
  CommandLine.Model.CommandSpec spec;

  @Option(names = "--coordinator", paramLabel = "HOST:PORT[,HOST:PORT...]",
      defaultValue = "${env:VEER_COORDINATOR:-127.0.0.1:7400}",
      description = "Coordinators to ask, in order (env VEER_COORDINATOR; default ${DEFAULT-VALUE}).")
  String coordinators;

  @Option(names = "--token-file", paramLabel = "FILE", defaultValue = "${env:VEER_TOKEN_FILE}",
      description = "File holding the bearer token (env VEER_TOKEN_FILE).")
  Path tokenFile;

  @Option(names = "--tls-ca", paramLabel = "FILE", description = "CA certificates (PEM) to verify coordinators: use TLS.")
  Path tlsCa;

  @Option(names = "--tls-cert", paramLabel = "FILE", description = "Client certificate chain (PEM), for mutual TLS.")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE", description = "Client private key (PEM), for mutual TLS.")
  Path tlsKey;

  @Option(names = "--json", description = "Print the API's answer as JSON.")
  boolean json;

  @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "10",
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
    cli.setExecutionExceptionHandler((e, line, parsed) -> {
      if (e instanceof StatusRuntimeException s) {
        line.getErr().println("veer ctl: " + s.getStatus().getCode() + ": " + s.getStatus().getDescription());
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
    Optional<TlsFiles> tls = tlsCa == null ? Optional.empty()
        : Optional.of(TlsFiles.client(tlsCa, Optional.ofNullable(tlsCert), Optional.ofNullable(tlsKey)));
    if (tlsCa == null && (tlsCert != null || tlsKey != null)) {
      throw new IllegalArgumentException("--tls-cert and --tls-key need --tls-ca");
    }
    Optional<BearerToken> token = Optional.ofNullable(tokenFile).map(BearerToken::fromFile);
    List<String> targets = Splitter.on(',').trimResults().omitEmptyStrings().splitToList(coordinators);
    if (targets.isEmpty()) {
      throw new IllegalArgumentException("--coordinator names no coordinator");
    }
    return new AdminClient(targets, tls, token, Duration.ofSeconds(timeoutSeconds));
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
