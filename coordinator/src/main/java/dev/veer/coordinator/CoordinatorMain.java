package dev.veer.coordinator;

import com.google.common.net.HostAndPort;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.coordinator.status.StatusPage;
import dev.veer.lifecycle.ConfigFile;
import dev.veer.lifecycle.Daemon;
import dev.veer.lifecycle.DaemonOptions;
import dev.veer.metrics.MetricsServer;
import dev.veer.transport.AccessPolicy;
import dev.veer.transport.TlsFiles;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code veer coordinator}: runs one coordinator replica until SIGTERM. */
@Command(
    name = "veer coordinator",
    mixinStandardHelpOptions = true,
    description =
        "Run a Veer coordinator: desired state in ZooKeeper, admin API, tables for directors.")
public final class CoordinatorMain implements Callable<Integer> {
  @Mixin DaemonOptions daemon;

  @Option(
      names = "--nic-hash-key",
      paramLabel = "HEX",
      description =
          "RX-hash mode, for a new cluster: the flow hash is the NICs' RSS hash, Toeplitz over"
              + " source and destination address and port with this 40-byte key, which every"
              + " director's NIC must have (ethtool -X IF hkey HEX); directors then run with"
              + " --rx-hash. Default: the keyed SipHash, which no sender can aim.")
  String nicHashKey;

  @Option(names = "--id", description = "This replica's id (default: the host name).")
  String id;

  @Option(
      names = "--listen",
      defaultValue = "127.0.0.1:7400",
      paramLabel = "HOST:PORT",
      description = "Where to serve gRPC (default ${DEFAULT-VALUE}).")
  String listen;

  @Option(
      names = "--advertise",
      paramLabel = "HOST:PORT",
      description = "The address others reach this replica at (default: --listen).")
  String advertise;

  @Option(
      names = "--zookeeper",
      paramLabel = "CONNECT",
      description = "ZooKeeper ensemble connect string; without it a single node runs embedded.")
  String zookeeper;

  @Option(
      names = "--data-dir",
      defaultValue = "/var/lib/veer",
      paramLabel = "DIR",
      description = "Where the embedded ZooKeeper keeps its data (default ${DEFAULT-VALUE}).")
  Path dataDir;

  @Option(names = "--zookeeper-root", defaultValue = Coordinator.DEFAULT_ROOT, paramLabel = "PATH")
  String root;

  @Option(
      names = "--zookeeper-auth-file",
      paramLabel = "FILE",
      description =
          "File with user:password: Veer's znodes get ACLs that only this identity passes.")
  Path zookeeperAuth;

  @Option(names = "--tls-cert", paramLabel = "FILE")
  Path tlsCert;

  @Option(names = "--tls-key", paramLabel = "FILE")
  Path tlsKey;

  @Option(
      names = "--tls-client-ca",
      paramLabel = "FILE",
      description =
          "CA certificates of clients: with it, every client must present a certificate (mutual TLS).")
  Path tlsClientCa;

  @Option(
      names = "--access-file",
      paramLabel = "FILE",
      description =
          "Who may do what: lines 'token <secret> <roles>' or 'cert <common-name> <roles>'.")
  Path accessFile;

  @Option(
      names = "--row-bits",
      defaultValue = "16",
      description = "Table rows 2^N for a new cluster (default 16).")
  int rowBits;

  @Option(
      names = "--gue-port",
      defaultValue = "" + VeerAbi.GUE_PORT_DEFAULT,
      description = "GUE port for a new cluster (default ${DEFAULT-VALUE}).")
  int guePort;

  @Option(
      names = "--settle-seconds",
      defaultValue = "600",
      description =
          "How long tables keep the primaries of earlier backend sets (default ${DEFAULT-VALUE}).")
  int settleSeconds;

  @Option(
      names = "--check-interval-ms",
      defaultValue = "1000",
      description =
          "How often proxy agents check their services, for a new cluster (default ${DEFAULT-VALUE}).")
  int checkIntervalMillis;

  @Option(
      names = "--check-timeout-ms",
      defaultValue = "500",
      description = "How long one check may take, for a new cluster (default ${DEFAULT-VALUE}).")
  int checkTimeoutMillis;

  @Option(
      names = "--health-threshold",
      defaultValue = "2",
      description =
          "Checks in a row that change a backend's health, for a new cluster (default ${DEFAULT-VALUE}).")
  int healthThreshold;

  @Option(
      names = "--status-listen",
      paramLabel = "HOST:PORT",
      description =
          "Serve the read-only status page at http://HOST:PORT/ (bind it where only operators reach).")
  String statusListen;

  @Option(
      names = "--session-timeout-ms",
      defaultValue = "10000",
      description = "ZooKeeper session timeout.")
  int sessionTimeoutMillis;

  public static void main(String[] args) {
    System.exit(ConfigFile.run(new CoordinatorMain(), args));
  }

  private Coordinator.ClusterDefaults clusterDefaults() {
    Coordinator.ClusterDefaults defaults =
        new Coordinator.ClusterDefaults(
            rowBits,
            guePort,
            settleSeconds,
            checkIntervalMillis,
            checkTimeoutMillis,
            healthThreshold);
    if (nicHashKey == null) {
      return defaults;
    }
    String hex = nicHashKey.replace(":", "").trim();
    if (!hex.matches("[0-9a-fA-F]{" + 2 * VeerAbi.TOEPLITZ_KEY_LEN + "}")) {
      throw new CommandLine.ParameterException(
          new CommandLine(this),
          "--nic-hash-key takes the NICs' "
              + VeerAbi.TOEPLITZ_KEY_LEN
              + "-byte RSS key in hex, as ethtool -x prints it (colons allowed)");
    }
    return defaults.withNicHashKey(
        com.google.common.io.BaseEncoding.base16().decode(hex.toUpperCase(java.util.Locale.ROOT)));
  }

  @Override
  public Integer call() throws Exception {
    HostAndPort address = HostAndPort.fromString(listen).requireBracketsForIPv6();
    Optional<TlsFiles> tls = Optional.empty();
    if (tlsCert != null || tlsKey != null) {
      if (tlsCert == null || tlsKey == null) {
        throw new CommandLine.ParameterException(
            new CommandLine(this), "--tls-cert and --tls-key go together");
      }
      tls = Optional.of(TlsFiles.server(tlsCert, tlsKey, Optional.ofNullable(tlsClientCa)));
    }
    Coordinator.Config.Builder config =
        Coordinator.Config.builder(
                id != null ? id : InetAddress.getLocalHost().getHostName(), dataDir)
            .listen(new InetSocketAddress(address.getHost(), address.getPort()))
            .advertise(advertise != null ? advertise : listen)
            .root(root)
            .tls(tls)
            .access(
                accessFile == null ? AccessPolicy.allowAll() : AccessPolicy.fromFile(accessFile))
            .cluster(clusterDefaults())
            .sessionTimeoutMillis(sessionTimeoutMillis);
    if (zookeeper != null) {
      config.zookeeper(zookeeper);
    }
    if (zookeeperAuth != null) {
      config.zookeeperDigest(firstLine(zookeeperAuth));
    }
    Coordinator coordinator = Coordinator.start(config.build());
    Optional<MetricsServer> metrics =
        Daemon.metrics(
            this.daemon.metricsListen(),
            () -> {
              try {
                return coordinator.metrics();
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
            });
    Optional<StatusPage> page = Optional.empty();
    if (statusListen != null) {
      HostAndPort at = HostAndPort.fromString(statusListen).requireBracketsForIPv6();
      page =
          Optional.of(
              StatusPage.start(
                  new InetSocketAddress(at.getHost(), at.getPort()), coordinator.admin()));
    }
    Optional<StatusPage> pageToClose = page;
    return Daemon.runUntilSignalled(
        "coordinator",
        () -> {
          pageToClose.ifPresent(StatusPage::close);
          metrics.ifPresent(MetricsServer::close);
          coordinator.close();
        });
  }

  private static String firstLine(Path file) {
    try {
      return Files.readAllLines(file, StandardCharsets.UTF_8).get(0).trim();
    } catch (IOException | IndexOutOfBoundsException e) {
      throw new IllegalArgumentException("cannot read user:password from " + file, e);
    }
  }
}
