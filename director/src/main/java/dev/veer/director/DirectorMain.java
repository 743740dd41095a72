package dev.veer.director;

import com.google.common.base.Splitter;
import com.google.common.collect.ImmutableList;
import com.google.common.net.InetAddresses;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.director.routes.RouteAnnouncer;
import dev.veer.director.routes.SpeakerConfig;
import dev.veer.lifecycle.ConfigFile;
import dev.veer.lifecycle.CoordinatorOptions;
import dev.veer.lifecycle.Daemon;
import dev.veer.lifecycle.DaemonOptions;
import dev.veer.metrics.MetricsServer;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code veer director}: runs the director daemon on one interface until SIGTERM. */
@Command(
    name = "veer director",
    mixinStandardHelpOptions = true,
    description =
        "Run a Veer director: the XDP program on an interface, tables from the coordinators.")
public final class DirectorMain implements Callable<Integer> {
  @Mixin DaemonOptions daemon;

  @Option(names = "--id", description = "This director's id (default: the host name).")
  String id;

  @Mixin CoordinatorOptions coordinators;

  @Option(
      names = "--interface",
      required = true,
      paramLabel = "IFNAME",
      description = "The interface the router sends VIP traffic to.")
  String ifname;

  @Option(
      names = "--netns",
      paramLabel = "NAME",
      description = "Network namespace of the interface (ip netns).")
  String netns;

  @Option(
      names = "--source4",
      paramLabel = "ADDRESS",
      description = "This director's IPv4 address (outer source).")
  String source4;

  @Option(
      names = "--source6",
      paramLabel = "ADDRESS",
      description = "This director's IPv6 address (outer source).")
  String source6;

  @Option(
      names = "--xdp-mode",
      defaultValue = "NATIVE",
      description = "NATIVE, GENERIC or OFFLOAD (default NATIVE).")
  XdpMode mode;

  @Option(
      names = "--row-bits",
      defaultValue = "" + VeerAbi.DEFAULT_ROW_BITS,
      description = "Table rows 2^N; must match the cluster's (default ${DEFAULT-VALUE}).")
  int rowBits;

  @Option(
      names = "--pin-dir",
      defaultValue = "/sys/fs/bpf/veer/director",
      paramLabel = "DIR",
      description =
          "Where the director's maps are pinned; a restart takes them over without a pause in"
              + " forwarding (default ${DEFAULT-VALUE}).")
  Path pinDir;

  @Option(
      names = "--co-located",
      description =
          "Co-located mode: this host is a proxy too, on the same interface. The daemon attaches"
              + " the co-located program, which delivers the flows this host owns without"
              + " encapsulation; start the proxy agent with --co-located set to this --pin-dir.")
  boolean coLocated;

  @Option(
      names = "--rx-hash",
      description =
          "RX-hash mode: take the flow hash from the NIC's RSS hash (a program bound to the"
              + " interface's driver) instead of computing the keyed hash. Every director's NIC must"
              + " hash with Toeplitz and the cluster's key (coordinator --nic-hash-key; ethtool -X"
              + " IF hkey KEY hfunc toeplitz). Refused where the driver gives XDP no RX hash.")
  boolean rxHash;

  @Option(
      names = "--detach-on-exit",
      description =
          "On SIGTERM, detach the program and remove the pins (default: keep forwarding with the"
              + " installed tables for the next director daemon to take over).")
  boolean detachOnExit;

  @Option(
      names = "--announce-table",
      paramLabel = "TABLE",
      description =
          "Route health injection: put the VIPs this director can forward, as host routes, into"
              + " kernel routing table TABLE (1-252), for the host's BGP speaker to announce"
              + " (default 0: announce nothing).")
  int announceTable;

  @Option(
      names = "--withdraw-wait-ms",
      paramLabel = "MILLIS",
      defaultValue = "3000",
      description =
          "With --detach-on-exit: how long to wait between withdrawing the routes and detaching,"
              + " for the router to stop sending (default ${DEFAULT-VALUE}).")
  long withdrawWaitMillis;

  @Option(
      names = "--speaker-socket",
      paramLabel = "PATH",
      description =
          "The host BGP speaker's (BIRD's) control socket, read for the sessions' state in metrics"
              + " and status (default: not read).")
  Path speakerSocket;

  @Option(
      names = "--bgp-peers",
      paramLabel = "ADDRESS[,ADDRESS]",
      description =
          "For --write-speaker-config: the routers the speaker announces to (an IPv4 peer gets the"
              + " IPv4 VIPs, an IPv6 peer the IPv6 VIPs).")
  String bgpPeers;

  @Option(names = "--bgp-peer-as", paramLabel = "AS", description = "The routers' AS.")
  long bgpPeerAs;

  @Option(names = "--bgp-local-as", paramLabel = "AS", description = "This director's AS.")
  long bgpLocalAs;

  @Option(
      names = "--bgp-router-id",
      paramLabel = "ADDRESS",
      description = "The speaker's router id (default: --source4).")
  String bgpRouterId;

  @Option(
      names = "--bfd-interval-ms",
      paramLabel = "MILLIS",
      defaultValue = "100",
      description =
          "BFD's interval on every session; a dead director is dropped after --bfd-multiplier"
              + " missed intervals (default ${DEFAULT-VALUE}; 0: no BFD).")
  long bfdIntervalMillis;

  @Option(
      names = "--bfd-multiplier",
      paramLabel = "N",
      defaultValue = "3",
      description = "Missed BFD intervals that end a session (default ${DEFAULT-VALUE}).")
  int bfdMultiplier;

  @Option(
      names = "--write-speaker-config",
      paramLabel = "FILE",
      description =
          "Write the BGP speaker's (BIRD 2) configuration for these settings to FILE and exit,"
              + " starting nothing: the speaker's service runs this before BIRD starts.")
  Path writeSpeakerConfig;

  @Option(
      names = "--max-snapshot-mib",
      paramLabel = "MIB",
      defaultValue = "512",
      description =
          "The largest snapshot to take from a coordinator (default ${DEFAULT-VALUE}); a version"
              + " whose snapshot is larger is not sent, and the director's status says why.")
  int maxSnapshotMib;

  @Option(
      names = "--take-out",
      description =
          "Take this director out for good, with no daemon running (stop it first), and exit:"
              + " withdraw its routes from --announce-table, wait --withdraw-wait-ms for the"
              + " router to stop sending, then detach the program the last daemon left attached"
              + " and remove its pins.")
  boolean takeOut;

  public static void main(String[] args) {
    System.exit(ConfigFile.run(new DirectorMain(), args));
  }

  @Override
  public Integer call() throws Exception {
    if (writeSpeakerConfig != null) {
      writeSpeakerConfig(writeSpeakerConfig);
      return 0;
    }
    BpfSystem.requireUsable();
    if (takeOut) {
      takeOut();
      return 0;
    }
    DirectorDaemon.Config.Builder builder =
        DirectorDaemon.Config.builder(
                id != null ? id : InetAddress.getLocalHost().getHostName(),
                coordinators.coordinators())
            .namespace(netns == null ? NetworkNamespace.current() : NetworkNamespace.named(netns))
            .attachTo(ifname, mode)
            .source4(
                Optional.ofNullable(source4)
                    .map(a -> (Inet4Address) address(a, "--source4", Inet4Address.class)))
            .source6(
                Optional.ofNullable(source6)
                    .map(a -> (Inet6Address) address(a, "--source6", Inet6Address.class)))
            .rowBits(rowBits)
            .tls(coordinators.tls())
            .token(coordinators.token())
            .pinDir(pinDir)
            .coLocated(coLocated)
            .rxHash(rxHash)
            .withdrawWait(java.time.Duration.ofMillis(withdrawWaitMillis));
    builder.announceTo(announceTable);
    if (maxSnapshotMib < 1 || maxSnapshotMib > 2047) {
      throw new IllegalArgumentException(
          "--max-snapshot-mib is 1..2047 (a gRPC message is under 2 GiB), not " + maxSnapshotMib);
    }
    builder.maxSnapshotBytes(maxSnapshotMib * 1024 * 1024);
    if (speakerSocket != null) {
      builder.speakerSocket(speakerSocket);
    }
    DirectorDaemon daemon = DirectorDaemon.start(builder.build());
    Optional<MetricsServer> metrics = Daemon.metrics(this.daemon.metricsListen(), daemon::metrics);
    return Daemon.runUntilSignalled(
        "director",
        () -> {
          metrics.ifPresent(MetricsServer::close);
          if (detachOnExit) {
            daemon.close();
          } else {
            daemon.handOver();
          }
        });
  }

  private void takeOut() throws InterruptedException {
    NetworkNamespace ns =
        netns == null ? NetworkNamespace.current() : NetworkNamespace.named(netns);
    if (announceTable != 0) {
      var withdrawn = RouteAnnouncer.withdrawAll(ns, announceTable);
      System.out.printf(
          "withdrew %d routes from table %d; waiting %d ms for the router to stop sending%n",
          withdrawn.size(), announceTable, withdrawWaitMillis);
      if (!withdrawn.isEmpty()) {
        Thread.sleep(withdrawWaitMillis);
      }
    }
    if (!Files.exists(pinDir)) {
      System.out.printf("no director's pins at %s: nothing attached to take out%n", pinDir);
      return;
    }
    byte[] anyKey = new byte[16]; // the pinned configuration's key is kept
    DirectorConfig provisional =
        new DirectorConfig(
            anyKey,
            Optional.ofNullable(source4)
                .map(a -> (Inet4Address) address(a, "--source4", Inet4Address.class)),
            Optional.ofNullable(source6)
                .map(a -> (Inet6Address) address(a, "--source6", Inet6Address.class)),
            VeerAbi.GUE_PORT_DEFAULT);
    DirectorDataplane.attachPinned(ns, ifname, mode, provisional, rowBits, pinDir).close();
    System.out.printf("detached from %s; pins at %s removed%n", ifname, pinDir);
  }

  private void writeSpeakerConfig(Path file) throws java.io.IOException {
    if (announceTable == 0) {
      throw new IllegalArgumentException(
          "--write-speaker-config needs --announce-table: the speaker announces that table");
    }
    if (bgpPeers == null || bgpPeerAs == 0 || bgpLocalAs == 0) {
      throw new IllegalArgumentException(
          "--write-speaker-config needs --bgp-peers, --bgp-peer-as and --bgp-local-as");
    }
    String routerId = bgpRouterId != null ? bgpRouterId : source4;
    if (routerId == null) {
      throw new IllegalArgumentException(
          "--write-speaker-config needs a router id: --bgp-router-id or --source4");
    }
    SpeakerConfig config =
        new SpeakerConfig(
            (Inet4Address) address(routerId, "--bgp-router-id", Inet4Address.class),
            bgpLocalAs,
            Splitter.on(',')
                .trimResults()
                .omitEmptyStrings()
                .splitToStream(bgpPeers)
                .map(
                    a -> {
                      if (!InetAddresses.isInetAddress(a)) {
                        throw new IllegalArgumentException(
                            "--bgp-peers takes IP address literals, got " + a);
                      }
                      return InetAddresses.forString(a);
                    })
                .collect(ImmutableList.toImmutableList()),
            bgpPeerAs,
            announceTable,
            java.time.Duration.ofMillis(bfdIntervalMillis),
            bfdMultiplier);
    Path parent = file.toAbsolutePath().getParent();
    Path temporary = Files.createTempFile(parent, ".speaker", ".conf");
    Files.writeString(temporary, config.bird());
    Files.move(
        temporary, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }

  private static InetAddress address(
      String literal, String option, Class<? extends InetAddress> family) {
    if (!InetAddresses.isInetAddress(literal)
        || !family.isInstance(InetAddresses.forString(literal))) {
      throw new IllegalArgumentException(
          option
              + " needs an "
              + (family == Inet4Address.class ? "IPv4" : "IPv6")
              + " address literal, got "
              + literal);
    }
    return InetAddresses.forString(literal);
  }
}
