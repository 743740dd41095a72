package dev.veer.proxy;

import com.google.common.base.Splitter;
import com.google.common.net.InetAddresses;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.lifecycle.ConfigFile;
import dev.veer.lifecycle.CoordinatorOptions;
import dev.veer.lifecycle.Daemon;
import dev.veer.lifecycle.DaemonOptions;
import dev.veer.metrics.MetricsServer;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code veer proxy-agent}: runs the proxy agent on one interface until SIGTERM. */
@Command(
    name = "veer proxy-agent",
    mixinStandardHelpOptions = true,
    description =
        "Run a Veer proxy agent: the decapsulation program, its allow-list, and health reports.")
public final class ProxyAgentMain implements Callable<Integer> {
  @Mixin DaemonOptions daemon;

  @Option(names = "--id", description = "This agent's id (default: the host name).")
  String id;

  @Mixin CoordinatorOptions coordinators;

  @Option(
      names = "--interface",
      required = true,
      paramLabel = "IFNAME",
      description = "The interface GUE from the directors arrives on.")
  String ifname;

  @Option(
      names = "--netns",
      paramLabel = "NAME",
      description = "Network namespace of the interface (ip netns).")
  String netns;

  @Option(
      names = "--address",
      required = true,
      paramLabel = "ADDRESS[,ADDRESS]",
      description = "This host's backend addresses, as the services list them (IPv4 and/or IPv6).")
  String addresses;

  @Option(
      names = "--xdp-mode",
      defaultValue = "NATIVE",
      description = "NATIVE, GENERIC or OFFLOAD (default NATIVE).")
  XdpMode mode;

  @Option(
      names = "--gue-port",
      defaultValue = "" + VeerAbi.GUE_PORT_DEFAULT,
      description = "The cluster's GUE port (default ${DEFAULT-VALUE}).")
  int guePort;

  @Option(
      names = "--pin-dir",
      defaultValue = "/sys/fs/bpf/veer/proxy",
      paramLabel = "DIR",
      description =
          "Where the flow table's sockops link is pinned, so that it keeps the table true after a"
              + " crash of the agent until a new agent takes over (default ${DEFAULT-VALUE}).")
  Path pinDir;

  @Option(
      names = "--flow-table-entries",
      defaultValue = "" + VeerAbi.FLOWS_DEFAULT,
      paramLabel = "N",
      description =
          "Connections the proxy's flow table holds per address family (default ${DEFAULT-VALUE});"
              + " with more, packets of other proxies' flows take a socket lookup.")
  int flowEntries;

  @Option(
      names = "--co-located",
      paramLabel = "DIRECTOR_PIN_DIR",
      description =
          "Co-located mode: this host is a director too. The agent shares the program the director"
              + " daemon (started with --co-located) attached, through the maps it pinned in"
              + " DIRECTOR_PIN_DIR, and attaches none of its own; --interface and --xdp-mode are"
              + " the director's then.")
  Path coLocatedWith;

  public static void main(String[] args) {
    System.exit(ConfigFile.run(new ProxyAgentMain(), args));
  }

  @Override
  public Integer call() throws Exception {
    BpfSystem.requireUsable();
    List<InetAddress> backendAddresses =
        Splitter.on(',').trimResults().omitEmptyStrings().splitToList(addresses).stream()
            .map(ProxyAgentMain::address)
            .toList();
    ProxyAgent.Config.Builder config =
        ProxyAgent.Config.builder(
                id != null ? id : InetAddress.getLocalHost().getHostName(),
                coordinators.coordinators(),
                ifname,
                backendAddresses)
            .namespace(netns == null ? NetworkNamespace.current() : NetworkNamespace.named(netns))
            .mode(mode)
            .guePort(guePort)
            .tls(coordinators.tls())
            .token(coordinators.token())
            .pinDir(pinDir)
            .flowEntries(flowEntries);
    if (coLocatedWith != null) {
      config.coLocatedWith(coLocatedWith);
    }
    ProxyAgent agent = ProxyAgent.start(config.build());
    Optional<MetricsServer> metrics = Daemon.metrics(this.daemon.metricsListen(), agent::metrics);
    return Daemon.runUntilSignalled(
        "proxy agent",
        () -> {
          metrics.ifPresent(MetricsServer::close);
          agent.close();
        });
  }

  private static InetAddress address(String literal) {
    if (!InetAddresses.isInetAddress(literal)) {
      throw new IllegalArgumentException("--address takes IP address literals, got " + literal);
    }
    return InetAddresses.forString(literal);
  }
}
