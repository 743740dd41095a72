package dev.veer.proxy.dataplane;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.CgroupAttachment;
import dev.veer.bpf.KeptAttachment;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.DataplaneObject;
import dev.veer.bpf.dataplane.NeighbourKeeper;
import dev.veer.bpf.dataplane.ProxyConfig;
import dev.veer.bpf.dataplane.ProxyProgram;
import dev.veer.bpf.dataplane.ServiceKey;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A proxy's data plane: the GUE decapsulation / second-chance program, optionally attached to an
 * interface, its allow-list of directors and proxies, and the sockops program that keeps its table
 * of accepted connections (attached to a cgroup v2 directory the services run under).
 */
public final class ProxyDataplane implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ProxyDataplane.class);

  /** The flow table's sockops link, pinned in the pin directory. */
  static final String FLOWS_LINK = "flows-link";

  /** The attached program, for the next agent to replace without opening it by id. */
  static final String PROGRAM = "program";

  private final ProxyProgram program;
  private final Optional<KeptAttachment> attachment;
  private final Optional<NeighbourKeeper> neighbours;
  private final Optional<CgroupAttachment> flows;
  private final Optional<FlowKeeper> flowKeeper;
  private final Optional<Path> pinDir;

  private ProxyDataplane(
      ProxyProgram program,
      Optional<KeptAttachment> attachment,
      Optional<NeighbourKeeper> neighbours,
      Optional<CgroupAttachment> flows,
      Optional<FlowKeeper> flowKeeper,
      Optional<Path> pinDir) {
    this.program = program;
    this.attachment = attachment;
    this.neighbours = neighbours;
    this.flows = flows;
    this.flowKeeper = flowKeeper;
    this.pinDir = pinDir;
  }

  /** The attachment kept on the interface, if this data plane is attached to one. */
  public Optional<KeptAttachment> attachment() {
    return attachment;
  }

  /**
   * Loads and configures the proxy program without attaching it (for BPF_PROG_TEST_RUN), for a
   * proxy whose own addresses are {@code addresses} (one per family at most). With {@code flows},
   * the flow table keeps the connections {@code flows.namespace()} accepts.
   */
  public static ProxyDataplane detached(
      int guePort, List<? extends InetAddress> addresses, Optional<FlowTracking> flows) {
    return create(
        settings(guePort, addresses), Optional.empty(), null, null, flows, Optional.empty());
  }

  public static ProxyDataplane detached(int guePort, List<? extends InetAddress> addresses) {
    return detached(guePort, addresses, Optional.empty());
  }

  /**
   * Loads and configures the proxy program and attaches it to an interface in a namespace, with the
   * flow table kept for that namespace under the cgroup v2 root, if one is mounted.
   */
  public static ProxyDataplane attach(
      NetworkNamespace ns,
      String ifname,
      XdpMode mode,
      int guePort,
      List<? extends InetAddress> addresses) {
    return attach(ns, ifname, mode, guePort, addresses, Optional.empty(), VeerAbi.FLOWS_DEFAULT);
  }

  /**
   * Like {@link #attach}, without a flow table: every packet but a SYN takes the kernel's socket
   * lookup, as when no cgroup v2 hierarchy is mounted.
   */
  public static ProxyDataplane attachWithoutFlowTable(
      NetworkNamespace ns,
      String ifname,
      XdpMode mode,
      int guePort,
      List<? extends InetAddress> addresses) {
    return create(
        settings(guePort, addresses),
        Optional.of(ns),
        ifname,
        mode,
        Optional.empty(),
        Optional.empty());
  }

  /**
   * Like {@link #attach}; with {@code pinDir}, the flow table's sockops link is pinned there so
   * that it outlives a crash of this process. The XDP program stays attached after a crash too, and
   * both must keep the flow table true: a closed connection left in it would claim packets of a
   * later connection with the same addresses and ports. A proxy program that a crashed process left
   * on the interface is replaced in one step, and the link it pinned detached. The flow table holds
   * {@code flowEntries} connections per address family; with more, packets it does not know take
   * the socket lookup.
   */
  public static ProxyDataplane attach(
      NetworkNamespace ns,
      String ifname,
      XdpMode mode,
      int guePort,
      List<? extends InetAddress> addresses,
      Optional<Path> pinDir,
      int flowEntries) {
    Optional<FlowTracking> flows =
        BpfSystem.cgroupV2Root().map(root -> new FlowTracking(root, ns, flowEntries));
    if (flows.isEmpty()) {
      log.warn(
          "no cgroup v2 hierarchy is mounted: the proxy's flow table stays off and every"
              + " established packet takes a socket lookup (mount one: mount -t cgroup2 none /sys/fs/cgroup)");
    }
    return create(settings(guePort, addresses), Optional.of(ns), ifname, mode, flows, pinDir);
  }

  /** How long a co-located agent waits for its director to create the maps they share. */
  private static final java.time.Duration SHARED_MAPS_WAIT = java.time.Duration.ofSeconds(60);

  /**
   * The proxy half of a co-located host: the maps of the co-located program that the director
   * daemon on this host loaded and attached, pinned in its {@code directorPinDir}, are shared (the
   * director owns the interface, and this program is never attached); the allow-list, what is
   * served and the flow table are kept here as on a proxy. Waits up to a minute for the director to
   * create the maps. The flow table starts empty and untrusted: connections already open are found
   * by socket lookup until they end.
   */
  public static ProxyDataplane sharing(
      NetworkNamespace ns,
      Path directorPinDir,
      int guePort,
      List<? extends InetAddress> addresses,
      Optional<Path> pinDir) {
    awaitSharedMaps(directorPinDir);
    Optional<FlowTracking> flows = BpfSystem.cgroupV2Root().map(root -> new FlowTracking(root, ns));
    ProxyProgram program =
        ProxyProgram.load(
            LoadOptions.DEFAULT.withPinRoot(directorPinDir), DataplaneObject.CO_LOCATED);
    program.distrustFlows();
    program.clearFlows();
    return start(program, settings(guePort, addresses), ns, flows, Optional.empty(), pinDir);
  }

  private static void awaitSharedMaps(Path directorPinDir) {
    Path marker = directorPinDir.resolve(ProxyProgram.CONFIG_MAP);
    long deadline = System.nanoTime() + SHARED_MAPS_WAIT.toNanos();
    boolean logged = false;
    while (!java.nio.file.Files.exists(marker)) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "co-located: no maps of a co-located director in "
                + directorPinDir
                + " after "
                + SHARED_MAPS_WAIT.toSeconds()
                + " s; start the director daemon with --co-located and this --pin-dir first");
      }
      if (!logged) {
        log.info("waiting for the co-located director's maps in {}", directorPinDir);
        logged = true;
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for " + marker, e);
      }
    }
  }

  private static ProxyConfig.Builder settings(int guePort, List<? extends InetAddress> addresses) {
    return ProxyConfig.builder().guePort(guePort).addresses(addresses);
  }

  private static ProxyDataplane create(
      ProxyConfig.Builder settings,
      Optional<NetworkNamespace> ns,
      String ifname,
      XdpMode mode,
      Optional<FlowTracking> flows,
      Optional<Path> pinDir) {
    // With a pin directory the allow-list and the served table are pinned there, and a
    // predecessor's are taken over: no gap before the first update from a coordinator.
    LoadOptions pinned = pinDir.map(LoadOptions.DEFAULT::withPinRoot).orElse(LoadOptions.DEFAULT);
    ProxyProgram program =
        ProxyProgram.load(
            flows
                .map(
                    f ->
                        pinned
                            .withMaxEntries("flows4", f.entries())
                            .withMaxEntries("flows6", f.entries()))
                .orElse(pinned));
    return start(
        program,
        settings,
        ns.orElse(null),
        flows,
        ns.map(n -> new Interface(ifname, mode)),
        pinDir);
  }

  /** The interface a proxy program is attached to, by its own data plane. */
  private record Interface(String name, XdpMode mode) {}

  /**
   * Configures a loaded program, keeps its flow table and attaches it to {@code attachTo} in {@code
   * ns}, if given; closes the program on failure.
   */
  private static ProxyDataplane start(
      ProxyProgram program,
      ProxyConfig.Builder settings,
      NetworkNamespace ns,
      Optional<FlowTracking> flows,
      Optional<Interface> attachTo,
      Optional<Path> pinDir) {
    Optional<CgroupAttachment> flowAttachment = Optional.empty();
    Optional<FlowKeeper> keeper = Optional.empty();
    try {
      int openingSeconds =
          ProxyProgram.openingSeconds(flows.map(f -> synAckRetries(f.namespace())).orElse(5));
      program.configure(
          settings
              .flowsNetnsCookie(flows.map(f -> f.namespace().cookie()).orElse(0L))
              .openingSeconds(openingSeconds)
              .build());
      // Connections opened from here on enter the table; older ones are found by socket lookup.
      flowAttachment = flows.map(f -> CgroupAttachment.attach(program.flowsProgram(), f.cgroup()));
      keeper = flows.map(f -> FlowKeeper.start(program, f.namespace(), openingSeconds));
      Optional<KeptAttachment> attachment =
          attachTo.map(
              i ->
                  KeptAttachment.keep(
                      XdpAttachment.attachOrReplace(
                          program.program(),
                          ns,
                          i.name(),
                          i.mode(),
                          pinDir.map(d -> d.resolve(PROGRAM))),
                      program.program(),
                      java.time.Duration.ofSeconds(1)));
      // Only now is the old program, and with it the old flow table, out of use.
      if (pinDir.isPresent() && flowAttachment.isPresent()) {
        flowAttachment.get().pinReplacing(pinDir.get().resolve(FLOWS_LINK));
      }
      attachTo.ifPresent(
          i -> log.info("proxy program attached to {} ({} mode)", i.name(), i.mode()));
      return new ProxyDataplane(
          program,
          attachment,
          Optional.ofNullable(ns).map(NeighbourKeeper::new),
          flowAttachment,
          keeper,
          pinDir);
    } catch (RuntimeException e) {
      keeper.ifPresent(FlowKeeper::close);
      flowAttachment.ifPresent(CgroupAttachment::close);
      program.close();
      throw e;
    }
  }

  /**
   * Where the flow table's sockops program runs: a cgroup v2 directory that the proxied services'
   * processes are in (or under), and the network namespace of their sockets.
   */
  public record FlowTracking(Path cgroup, NetworkNamespace namespace, int entries) {
    /** The most connections a flow table can hold, per address family. */
    public static final int MAX_ENTRIES = 1 << 24;

    public FlowTracking {
      Objects.requireNonNull(cgroup, "cgroup");
      Objects.requireNonNull(namespace, "namespace");
      if (entries < 1 || entries > MAX_ENTRIES) {
        throw new IllegalArgumentException(
            "a flow table holds 1 to "
                + MAX_ENTRIES
                + " connections per address"
                + " family, not "
                + entries);
      }
    }

    /** With the default size, {@value VeerAbi#FLOWS_DEFAULT} connections per family. */
    public FlowTracking(Path cgroup, NetworkNamespace namespace) {
      this(cgroup, namespace, VeerAbi.FLOWS_DEFAULT);
    }
  }

  public ProxyProgram program() {
    return program;
  }

  /**
   * Makes the allow-list exactly {@code peers}, in one atomic swap, and keeps the next hops towards
   * them resolved for second-chance forwarding.
   */
  public void setPeers(Set<InetAddress> peers) {
    program.setAllowed(peers);
    neighbours.ifPresent(n -> peers.forEach(n::keep));
  }

  /**
   * Makes what the proxy delivers exactly {@code services} (VIP, port, protocol) and ICMP to their
   * VIPs; inner packets to anything else are dropped, in one atomic swap.
   */
  public void setServed(Set<ServiceKey> services) {
    program.setServed(services);
  }

  /**
   * How many times the kernel of {@code ns} sends a SYN-ACK again (net.ipv4.tcp_synack_retries).
   */
  private static int synAckRetries(NetworkNamespace ns) {
    return ns.call(
        () ->
            Integer.parseInt(
                java.nio.file.Files.readString(Path.of("/proc/sys/net/ipv4/tcp_synack_retries"))
                    .trim()));
  }

  /**
   * Whether the flow table holds every connection of the namespace, so that packets it does not
   * know are forwarded without the kernel's socket lookup (see {@link FlowKeeper}).
   */
  public boolean flowTableComplete() {
    return program.flowsTrusted();
  }

  /**
   * Tells the flow table which endpoints (VIP and port) tunnelled packets are for, so that sockets
   * elsewhere (an SSH server, ...) that were there before it do not keep it from being trusted.
   * Endpoints are only ever added.
   */
  public void serveEndpoints(Set<java.net.InetSocketAddress> endpoints) {
    flowKeeper.ifPresent(k -> k.serve(endpoints));
  }

  /** Makes every packet the flow table does not know take the socket lookup for a while. */
  public void distrustFlowTable(java.time.Duration duration) {
    flowKeeper
        .orElseThrow(() -> new IllegalStateException("this proxy keeps no flow table"))
        .distrustFor(duration);
  }

  /** Connections in the flow table now, handshakes included (0 without flow tracking). */
  public int flowCount() {
    return program.flowCount();
  }

  public EnumMap<ProxyVerdict, Long> verdicts() {
    return program.verdicts();
  }

  /**
   * Detaches and unloads everything, and removes the pins: a proxy taken out of service leaves no
   * allow-list behind for a later agent to start with. (An agent that crashes calls nothing, and
   * its successor takes the pins over.)
   */
  @Override
  public synchronized void close() {
    flowKeeper.ifPresent(FlowKeeper::close);
    try {
      attachment.ifPresent(KeptAttachment::close);
    } finally {
      try {
        flows.ifPresent(CgroupAttachment::close);
      } finally {
        program.close();
        pinDir.ifPresent(BpfSystem::removePins);
      }
    }
  }
}
