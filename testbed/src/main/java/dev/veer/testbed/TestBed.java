package dev.veer.testbed;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.common.collect.ImmutableList;
import com.google.common.net.InetAddresses;
import dev.veer.bpf.BpfObject;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.director.DirectorDaemon;
import dev.veer.director.DirectorMain;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.director.routes.SpeakerConfig;
import dev.veer.lifecycle.CloseStack;
import dev.veer.proxy.ProxyAgent;
import dev.veer.proxy.ProxyAgentMain;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.bgp.Bird;
import dev.veer.testbed.cluster.InstalledTree;
import dev.veer.testbed.cluster.JavaProcess;
import dev.veer.testbed.net.Namespace;
import dev.veer.testbed.net.RssNic;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Veer on one machine: network namespaces joined by veth pairs, routed like a small data centre.
 *
 * <pre>
 *   client ── router ──┬── director 1..D   (router spreads the VIP over them: ECMP, L4 hash)
 *                      └── proxy 1..P      (VIP on loopback, TCP server, proxy XDP program)
 * </pre>
 *
 * Every link is a routed /30 (and /64) to the router, so director → proxy and proxy → proxy (second
 * chance) traffic crosses the router like it would cross a fabric. Directors and proxies run Veer's
 * XDP programs natively on their veth; the router side of those links runs an XDP_PASS program so
 * that it accepts their XDP_TX frames. Closing the bed deletes every namespace it made, which
 * removes all interfaces and detaches all programs.
 */
public final class TestBed implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(TestBed.class);

  public static final Inet4Address VIP4 = (Inet4Address) InetAddresses.forString("203.0.113.10");
  public static final Inet6Address VIP6 =
      (Inet6Address) InetAddresses.forString("2001:db8:100::10");
  public static final int SERVICE_PORT = 80;
  public static final Inet4Address CLIENT4 = (Inet4Address) InetAddresses.forString("198.51.100.2");
  public static final Inet6Address CLIENT6 =
      (Inet6Address) InetAddresses.forString("2001:db8:c::2");

  private final String prefix;
  private final List<Namespace> namespaces = new ArrayList<>();
  private Namespace router;
  private Namespace client;
  private final List<Director> directors = new ArrayList<>();
  private final List<Proxy> proxies = new ArrayList<>();
  private final byte[] hashKey = new byte[16];
  private final BpfObject passProgram;
  private final List<XdpAttachment> routerAttachments = new ArrayList<>();
  private final List<String> coordinators;
  private final boolean agents;

  /** Whether the router learns the VIPs from the directors over BGP (else: static ECMP). */
  /** The directors the router should spread the VIPs over: all, until {@link #setEcmp}. */
  private final List<Director> ecmpMembers = new ArrayList<>();

  /** The BGP speakers: the router's first, then one per director, in director order. */
  /** A coordinator from the installed tree (a bed built with {@link Builder#installed}). */
  private Optional<JavaProcess> installedCoordinator = Optional.empty();

  /** Where the installed coordinator listens: on the client's host, which routes to every host. */
  public static final String INSTALLED_COORDINATOR = "198.51.100.2:7400";

  private final List<Bird> speakers = new ArrayList<>();

  /** Where the daemons' logs go when they run as processes of their own. */
  private final Optional<Path> processLogs;

  private final Optional<InstalledTree> installed;

  private final boolean flowTables;

  /** Whether every host is director and proxy at once (co-located mode). */
  private final boolean coLocated;

  /** Whether the directors take the flow hash from their NICs' RX hash. */
  private final boolean rxHash;

  /**
   * What proxies without agents deliver: the bed's TCP server on both VIPs, and installed services.
   */
  private final Set<ServiceKey> served =
      new HashSet<>(Set.of(ServiceKey.tcp(VIP4, SERVICE_PORT), ServiceKey.tcp(VIP6, SERVICE_PORT)));

  /**
   * A director host: its namespace and addresses, and what runs its data plane: this JVM (the bed
   * installs tables itself), a daemon in this JVM that follows coordinators, or a daemon in a
   * process of its own.
   */
  public record Director(
      int id,
      Namespace ns,
      Inet4Address address4,
      Inet6Address address6,
      Optional<DirectorDataplane> local,
      Optional<DirectorDaemon> daemon,
      Optional<JavaProcess> process) {
    public String name() {
      return "director-" + id;
    }

    /** The data plane, when this JVM runs it. */
    public DirectorDataplane dataplane() {
      return local.orElseThrow(
          () -> new IllegalStateException(name() + " runs in a process of its own"));
    }

    /** What to close: the process, the daemon (it owns the data plane), or the data plane. */
    AutoCloseable owner() {
      if (process.isPresent()) {
        // SIGTERM hands over: the pins stay for a successor, and this bed has none.
        return () -> {
          process.get().close();
          BpfSystem.removePins(ns.pinDirectory());
        };
      }
      return daemon.<AutoCloseable>map(d -> d).orElseGet(this::dataplane);
    }
  }

  /**
   * A proxy host: its namespace, addresses and TCP server, and what runs its data plane: this JVM
   * (the bed sets the allow-list itself), an agent in this JVM, or an agent in a process of its
   * own.
   */
  public record Proxy(
      int id,
      Namespace ns,
      Inet4Address address4,
      Inet6Address address6,
      Optional<ProxyDataplane> local,
      EchoServer server,
      Optional<ProxyAgent> agent,
      Optional<JavaProcess> agentProcess) {
    /** "proxy-N", or "host-N" on a co-located bed: the name its server answers with. */
    public String name() {
      return server.name();
    }

    /** The data plane, when this JVM runs it. */
    public ProxyDataplane dataplane() {
      return local.orElseThrow(
          () -> new IllegalStateException(name() + "'s agent runs in a process of its own"));
    }

    AutoCloseable owner() {
      if (agentProcess.isPresent()) {
        return () -> {
          agentProcess.get().close(); // SIGTERM: the agent detaches
          BpfSystem.removePins(ns.pinDirectory()); // after a SIGKILL, if it came to that
        };
      }
      return agent.<AutoCloseable>map(a -> a).orElseGet(this::dataplane);
    }
  }

  private TestBed(
      String prefix,
      BpfObject passProgram,
      List<String> coordinators,
      boolean agents,
      Optional<Path> processLogs,
      Optional<InstalledTree> installed,
      boolean flowTables,
      boolean coLocated,
      boolean rxHash) {
    this.flowTables = flowTables;
    this.coLocated = coLocated;
    this.rxHash = rxHash;
    this.installed = installed;
    this.prefix = prefix;
    this.passProgram = passProgram;
    this.coordinators =
        installed.isPresent() ? List.of(INSTALLED_COORDINATOR) : List.copyOf(coordinators);
    this.agents = agents || installed.isPresent();
    this.processLogs = processLogs;
    new SecureRandom().nextBytes(hashKey);
  }

  /**
   * A bed named after {@code runId}: by default two directors in the router's ECMP set fed by the
   * bed's own {@link #installTables}, and four proxies, each serving TCP port 80 on the VIPs with
   * its data plane in this JVM and a flow table.
   */
  public static Builder builder(String runId) {
    return new Builder(runId);
  }

  /** How a bed is built; {@link #build()} returns it up and running. */
  public static final class Builder {
    private final String runId;
    private int directors = 2;
    private int proxies = 4;
    private List<String> coordinators = List.of();
    private boolean agents;
    private Optional<Path> processLogs = Optional.empty();
    private Optional<InstalledTree> installed = Optional.empty();
    private boolean flowTables = true;
    private int coLocated;
    private boolean rxHash;

    private Builder(String runId) {
      this.runId = runId;
    }

    public Builder directors(int count) {
      this.directors = count;
      return this;
    }

    public Builder proxies(int count) {
      this.proxies = count;
      return this;
    }

    /**
     * Director daemons that follow these coordinators (host:port, reached from this process) for
     * their tables, as real directors do.
     */
    public Builder coordinators(List<String> targets) {
      this.coordinators = List.copyOf(targets);
      return this;
    }

    /**
     * A proxy agent on every proxy host that takes its allow-list from the coordinators and reports
     * health.
     */
    public Builder agents() {
      this.agents = true;
      return this;
    }

    /**
     * Every director daemon and proxy agent in a JVM of its own, as hosts run Veer, logging to
     * files in {@code logs}; {@link #build()} returns once each has connected or taken its
     * allow-list.
     */
    public Builder processes(Path logs) {
      this.agents = true;
      this.processLogs = Optional.of(logs);
      return this;
    }

    /**
     * Proxies that keep no flow table: the kernel's socket lookup decides every packet but a SYN.
     */
    public Builder withoutFlowTables() {
      this.flowTables = false;
      return this;
    }

    /**
     * Veer as its packages install it, each daemon with the capabilities its unit grants: a
     * coordinator on the client's host ({@link #INSTALLED_COORDINATOR}, administered with {@link
     * #ctl}), director daemons and proxy agents in processes of their own ({@link #processes}),
     * each inside its host's namespace.
     */
    public Builder installed(InstalledTree tree) {
      this.installed = Optional.of(tree);
      return this;
    }

    /**
     * Co-located hosts instead of directors and proxies: {@code hosts} hosts in the router's ECMP
     * set, each running a director daemon and a proxy agent in co-located mode on its one interface
     * and the TCP server on the VIPs ("be the load balancer yourself"). Each host is both {@code
     * directors().get(i)} and {@code proxies().get(i)}, with the same namespace and addresses.
     * Needs coordinators.
     */
    public Builder coLocated(int hosts) {
      this.coLocated = hosts;
      this.directors = hosts;
      this.proxies = hosts;
      this.agents = true;
      return this;
    }

    /**
     * Directors in RX-hash mode, behind a router whose links to them stand in for NICs that hash
     * with Toeplitz and {@link RssNic#KEY}: the cluster must be created with that key. Needs
     * coordinators.
     */
    public Builder rxHash() {
      this.rxHash = true;
      return this;
    }

    public TestBed build() {
      checkArgument(
          coLocated == 0 || (!coordinators.isEmpty() && installed.isEmpty()),
          "co-located hosts run daemons that follow the bed's coordinators");
      checkArgument(
          !rxHash || (!coordinators.isEmpty() && coLocated == 0),
          "RX-hash directors are daemons that follow the bed's coordinators, not co-located");
      checkArgument(
          installed.isEmpty() || (processLogs.isPresent() && coordinators.isEmpty()),
          "installed daemons are processes, following the bed's installed coordinator");
      return create(
          runId,
          directors,
          proxies,
          coordinators,
          agents,
          processLogs,
          installed,
          flowTables,
          coLocated > 0,
          rxHash);
    }
  }

  private static TestBed create(
      String runId,
      int directorCount,
      int proxyCount,
      List<String> coordinators,
      boolean agents,
      Optional<Path> processLogs,
      Optional<InstalledTree> installed,
      boolean flowTables,
      boolean coLocated,
      boolean rxHash) {
    checkArgument(directorCount >= 1 && directorCount <= 8, "1..8 directors");
    checkArgument(proxyCount >= 1 && proxyCount <= 16, "1..16 proxies");
    checkArgument(
        !agents || !coordinators.isEmpty() || installed.isPresent(), "agents need coordinators");
    TestBed bed =
        new TestBed(
            runId + "-",
            BpfObject.load("/bpf/pass.o", LoadOptions.DEFAULT),
            coordinators,
            agents,
            processLogs,
            installed,
            flowTables,
            coLocated,
            rxHash);
    try {
      bed.build(directorCount, proxyCount);
      return bed;
    } catch (RuntimeException | Error e) {
      bed.close();
      throw e;
    }
  }

  private Namespace namespace(String role) {
    Namespace ns = Namespace.create(prefix + role);
    namespaces.add(ns);
    return ns;
  }

  private void build(int directorCount, int proxyCount) {
    router = namespace("router");
    client = namespace("client");
    router.sysctl("net.ipv4.ip_forward", "1");
    router.sysctl("net.ipv6.conf.all.forwarding", "1");
    router.sysctl("net.ipv4.fib_multipath_hash_policy", "1");
    router.sysctl("net.ipv6.fib_multipath_hash_policy", "1");

    link(client, "eth0", "c0");
    client.exec("ip", "addr", "add", CLIENT4.getHostAddress() + "/24", "dev", "eth0");
    client.exec(
        "ip", "-6", "addr", "add", CLIENT6.getHostAddress() + "/64", "dev", "eth0", "nodad");
    router.exec("ip", "addr", "add", "198.51.100.1/24", "dev", "c0");
    router.exec("ip", "-6", "addr", "add", "2001:db8:c::1/64", "dev", "c0", "nodad");
    client.exec("ip", "route", "add", "default", "via", "198.51.100.1");
    client.exec("ip", "-6", "route", "add", "default", "via", "2001:db8:c::1");
    // Checksums must be in the packet before it reaches XDP on a director.
    client.exec("ethtool", "-K", "eth0", "tx", "off");

    if (installed.isPresent()) {
      startInstalledCoordinator();
    }
    if (coLocated) {
      for (int h = 1; h <= directorCount; h++) {
        buildHost(h);
      }
    } else {
      for (int d = 1; d <= directorCount; d++) {
        directors.add(buildDirector(d));
      }
      for (int p = 1; p <= proxyCount; p++) {
        proxies.add(buildProxy(p));
      }
    }
    Set<InetAddress> peers = new HashSet<>();
    directors.forEach(d -> peers.addAll(List.of(d.address4(), d.address6())));
    proxies.forEach(p -> peers.addAll(List.of(p.address4(), p.address6())));
    for (Proxy p : proxies) {
      if (!agents) {
        p.dataplane().setPeers(peers);
        p.dataplane().setServed(served);
      }
    }
    // The router learns its ECMP routes to the VIPs over BGP from a speaker on every director.
    speakers.add(
        Bird.router(
            router,
            (Inet4Address) InetAddresses.forString("198.51.100.1"),
            directors.stream().map(Director::address4).toList(),
            directors.stream().map(Director::address6).toList()));
    for (Director d : directors) {
      speakers.add(Bird.director(d.ns(), d.address4(), routerSide4(d.id()), routerSide6(d.id())));
    }
    ecmpMembers.addAll(directors);
    if (coordinators.isEmpty()) {
      // No daemon decides what a director announces: the bed announces both VIPs for every
      // director, as a host's static configuration would.
      for (Director d : directors) {
        for (InetAddress vip : List.of(VIP4, VIP6)) {
          d.ns()
              .exec(
                  "ip",
                  vip instanceof Inet6Address ? "-6" : "-4",
                  "route",
                  "replace",
                  InetAddresses.toAddrString(vip) + (vip instanceof Inet6Address ? "/128" : "/32"),
                  "dev",
                  "lo",
                  "table",
                  Integer.toString(Bird.ANNOUNCE_TABLE),
                  "proto",
                  "static");
        }
      }
      awaitEcmp(VIP4);
      awaitEcmp(VIP6);
    }
    for (Director d : directors) {
      awaitReady(d);
    }
    for (Proxy p : proxies) {
      if (p.agentProcess().isPresent()) {
        awaitReady(p.agentProcess().get(), "allow-list of");
      }
    }
    log.info(
        "test bed {} up: {} directors, {} proxies",
        router.name().replace("router", "*"),
        directorCount,
        proxyCount);
  }

  private Director buildDirector(int d) {
    Namespace ns = namespace("dir" + d);
    Inet4Address self4 = hostOf("192.0.2." + (4 * d + 2));
    Inet6Address self6 = hostOf("2001:db8:d" + d + "::2");
    hostLink(ns, "d" + d, "192.0.2." + (4 * d + 1), self4, "2001:db8:d" + d + "::1", self6);
    if (rxHash) {
      RssNic.hashOnEgress(router, "d" + d);
    }
    // bpf_fib_lookup answers only for interfaces that forward.
    ns.sysctl("net.ipv4.ip_forward", "1");
    // The announced VIPs are host routes via loopback, as on any host.
    ns.exec("ip", "link", "set", "lo", "up");
    ns.sysctl("net.ipv6.conf.all.forwarding", "1");
    if (!coordinators.isEmpty()) {
      return startDaemon(d, ns, self4, self6);
    }
    DirectorDataplane dataplane =
        DirectorDataplane.attach(
            ns.handle(),
            "eth0",
            XdpMode.NATIVE,
            DirectorConfig.of(hashKey, self4, self6),
            VeerAbi.DEFAULT_ROW_BITS);
    return new Director(
        d, ns, self4, self6, Optional.of(dataplane), Optional.empty(), Optional.empty());
  }

  /**
   * A co-located host: a director's link and addresses, the VIPs on loopback, a director daemon and
   * a proxy agent in co-located mode, and the TCP server. The agent shares the director's maps
   * through its pin directory and keeps its own pins (the flow table's link) beneath it.
   */
  private void buildHost(int h) {
    Namespace ns = namespace("host" + h);
    Inet4Address self4 = hostOf("192.0.2." + (4 * h + 2));
    Inet6Address self6 = hostOf("2001:db8:d" + h + "::2");
    hostLink(ns, "d" + h, "192.0.2." + (4 * h + 1), self4, "2001:db8:d" + h + "::1", self6);
    ns.sysctl("net.ipv4.ip_forward", "1");
    ns.sysctl("net.ipv6.conf.all.forwarding", "1");
    ns.exec("ip", "link", "set", "lo", "up");
    ns.exec("ip", "addr", "add", VIP4.getHostAddress() + "/32", "dev", "lo");
    ns.exec("ip", "-6", "addr", "add", VIP6.getHostAddress() + "/128", "dev", "lo", "nodad");
    Director director = startDaemon(h, ns, self4, self6);
    directors.add(director);
    String name = "host-" + h;
    ProxyAgent agent;
    try {
      agent =
          ProxyAgent.start(
              ProxyAgent.Config.builder(name, coordinators, "eth0", List.of(self4, self6))
                  .namespace(ns.handle())
                  .coLocatedWith(ns.pinDirectory())
                  .pinDir(ns.pinDirectory().resolve("agent"))
                  .build());
    } catch (Exception e) {
      throw new IllegalStateException("proxy agent of host " + h + " did not start: " + e, e);
    }
    EchoServer server;
    try {
      server = EchoServer.start(ns.handle(), SERVICE_PORT, name);
    } catch (RuntimeException e) {
      closeQuietly(agent);
      throw e;
    }
    proxies.add(
        new Proxy(
            h,
            ns,
            self4,
            self6,
            Optional.of(agent.dataplane()),
            server,
            Optional.of(agent),
            Optional.empty()));
  }

  private Proxy buildProxy(int p) {
    Namespace ns = namespace("proxy" + p);
    Inet4Address self4 = hostOf("192.0.2." + (128 + 4 * p + 2));
    Inet6Address self6 = hostOf("2001:db8:e" + p + "::2");
    hostLink(ns, "p" + p, "192.0.2." + (128 + 4 * p + 1), self4, "2001:db8:e" + p + "::1", self6);
    ns.sysctl("net.ipv4.ip_forward", "1");
    ns.sysctl("net.ipv6.conf.all.forwarding", "1");
    ns.exec("ip", "addr", "add", VIP4.getHostAddress() + "/32", "dev", "lo");
    ns.exec("ip", "-6", "addr", "add", VIP6.getHostAddress() + "/128", "dev", "lo", "nodad");
    Optional<ProxyAgent> agent = Optional.empty();
    Optional<JavaProcess> agentProcess = Optional.empty();
    Optional<ProxyDataplane> dataplane = Optional.empty();
    String name = "proxy-" + p;
    if (processLogs.isPresent()) {
      agentProcess = Optional.of(startAgentProcess(name, ns, self4, self6));
    } else if (agents) {
      try {
        agent =
            Optional.of(
                ProxyAgent.start(
                    ProxyAgent.Config.builder(name, coordinators, "eth0", List.of(self4, self6))
                        .namespace(ns.handle())
                        .build()));
      } catch (Exception e) {
        throw new IllegalStateException(
            "proxy agent " + p + " did not start: " + e.getMessage(), e);
      }
      dataplane = Optional.of(agent.get().dataplane());
    } else {
      dataplane =
          Optional.of(
              flowTables
                  ? ProxyDataplane.attach(
                      ns.handle(),
                      "eth0",
                      XdpMode.NATIVE,
                      VeerAbi.GUE_PORT_DEFAULT,
                      List.of(self4, self6))
                  : ProxyDataplane.attachWithoutFlowTable(
                      ns.handle(),
                      "eth0",
                      XdpMode.NATIVE,
                      VeerAbi.GUE_PORT_DEFAULT,
                      List.of(self4, self6)));
    }
    EchoServer server;
    try {
      server = EchoServer.start(ns.handle(), SERVICE_PORT, name);
    } catch (RuntimeException e) {
      closeQuietly(
          agentProcess.isPresent()
              ? agentProcess.get()
              : agent.isPresent() ? agent.get() : dataplane.orElseThrow());
      throw e;
    }
    return new Proxy(p, ns, self4, self6, dataplane, server, agent, agentProcess);
  }

  /**
   * A daemon in a JVM of its own, appending to {@code <logs>/<name>.log}: from this JVM's
   * classpath, or from the installed tree inside {@code ns} (its role from {@code main}).
   */
  private JavaProcess startProcess(String name, Namespace ns, Class<?> main, List<String> args) {
    Path log = processLogs.orElseThrow().resolve(name + ".log");
    try {
      if (installed.isPresent()) {
        List<String> command = new ArrayList<>(List.of("nsenter", "--net=/run/netns/" + ns.name()));
        command.addAll(
            installed.get().command(main == DirectorMain.class ? "director" : "proxy-agent"));
        for (int i = 0; i < args.size(); i++) {
          if (args.get(i).equals("--netns")) {
            i++; // entered already; the unit's capabilities do not include entering namespaces
          } else {
            command.add(args.get(i));
          }
        }
        return JavaProcess.start(name, command, log);
      }
      return JavaProcess.start(name, main, args, log);
    } catch (IOException e) {
      throw new IllegalStateException(name + " did not start: " + e.getMessage(), e);
    }
  }

  private void startInstalledCoordinator() {
    Path logs = processLogs.orElseThrow();
    List<String> command = new ArrayList<>(List.of("nsenter", "--net=/run/netns/" + client.name()));
    command.addAll(installed.orElseThrow().command("coordinator"));
    command.addAll(
        List.of(
            "--id",
            "c1",
            "--listen",
            INSTALLED_COORDINATOR,
            "--data-dir",
            logs.resolve("coordinator-data").toString(),
            "--check-interval-ms",
            "200",
            "--check-timeout-ms",
            "100"));
    try {
      installedCoordinator =
          Optional.of(JavaProcess.start("coordinator", command, logs.resolve("coordinator.log")));
      Await.until(
          "the installed coordinator answering veer ctl",
          () -> ctlExit("status") == 0,
          Duration.ofSeconds(60));
    } catch (IOException e) {
      throw new IllegalStateException("the installed coordinator did not start", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  /**
   * Runs the installed {@code veer ctl} against the bed's installed coordinator, on the client's
   * host; its output, or an exception with it when it fails.
   */
  public String ctl(String... args) {
    return client.exec(ctlCommand(args).toArray(String[]::new));
  }

  private int ctlExit(String... args) {
    return client.tryExec(ctlCommand(args).toArray(String[]::new)).exitCode();
  }

  private List<String> ctlCommand(String... args) {
    checkState(installed.isPresent(), "only a bed built with installed() runs the installed ctl");
    List<String> command =
        new ArrayList<>(
            List.of(
                installed.get().root().resolve("usr/bin/veer").toString(),
                "ctl",
                "--coordinator",
                INSTALLED_COORDINATOR));
    command.addAll(List.of(args));
    return command;
  }

  /** Waits for a director in a process of its own to follow a coordinator; the others are ready. */
  private static void awaitReady(Director d) {
    if (d.process().isPresent()) {
      awaitReady(d.process().get(), "connected to coordinator");
    }
  }

  private static void awaitReady(JavaProcess process, String logged) {
    try {
      process.awaitLog(logged, Duration.ofSeconds(60));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while " + process.name() + " started", e);
    }
  }

  /**
   * A director daemon following the coordinators, its maps pinned under the namespace's name, in
   * this JVM or (a bed of processes) in a process of its own.
   */
  private Director startDaemon(int d, Namespace ns, Inet4Address self4, Inet6Address self6) {
    String name = "director-" + d;
    if (processLogs.isPresent()) {
      List<String> args =
          new ArrayList<>(
              List.of(
                  "--id",
                  name,
                  "--coordinators",
                  String.join(",", coordinators),
                  "--netns",
                  ns.name(),
                  "--interface",
                  "eth0",
                  "--source4",
                  self4.getHostAddress(),
                  "--source6",
                  self6.getHostAddress(),
                  "--pin-dir",
                  ns.pinDirectory().toString(),
                  "--announce-table",
                  Integer.toString(Bird.ANNOUNCE_TABLE),
                  "--speaker-socket",
                  Bird.controlSocket(ns).toString()));
      if (coLocated) {
        args.add("--co-located");
      }
      if (rxHash) {
        args.add("--rx-hash");
      }
      JavaProcess process = startProcess(name, ns, DirectorMain.class, args);
      return new Director(
          d, ns, self4, self6, Optional.empty(), Optional.empty(), Optional.of(process));
    }
    try {
      DirectorDaemon daemon =
          DirectorDaemon.start(
              DirectorDaemon.Config.builder(name, coordinators)
                  .namespace(ns.handle())
                  .attachTo("eth0", XdpMode.NATIVE)
                  .source4(Optional.of(self4))
                  .source6(Optional.of(self6))
                  .pinDir(ns.pinDirectory())
                  .coLocated(coLocated)
                  .rxHash(rxHash)
                  .announceTo(Bird.ANNOUNCE_TABLE)
                  .speakerSocket(Bird.controlSocket(ns))
                  .withdrawWait(Duration.ofMillis(300))
                  .build());
      return new Director(
          d,
          ns,
          self4,
          self6,
          Optional.of(daemon.dataplane()),
          Optional.of(daemon),
          Optional.empty());
    } catch (Exception e) {
      throw new IllegalStateException("director " + d + " did not start: " + e.getMessage(), e);
    }
  }

  /**
   * Kills a director daemon that runs in a process of its own with SIGKILL, as a crash does: its
   * program stays attached with its tables, and a new daemon process takes the pins over.
   */
  public Director killDirector(int id) throws InterruptedException {
    Director old = directors.get(id - 1);
    checkState(old.process().isPresent(), "only a director in a process of its own can be killed");
    old.process().get().kill();
    return replaceDirector(old);
  }

  /**
   * Kills a proxy agent that runs in a process of its own with SIGKILL and starts a new one. The
   * dead agent's program stays attached, its flow table kept by the sockops link it pinned; the new
   * agent replaces the program in one step and detaches that link.
   */
  public Proxy killAgent(int id) throws InterruptedException {
    Proxy old = proxies.get(id - 1);
    checkState(
        old.agentProcess().isPresent(), "only an agent in a process of its own can be killed");
    old.agentProcess().get().kill();
    JavaProcess fresh = startAgentProcess(old.name(), old.ns(), old.address4(), old.address6());
    awaitReady(fresh, "allow-list of");
    Proxy restarted =
        new Proxy(
            old.id(),
            old.ns(),
            old.address4(),
            old.address6(),
            old.local(),
            old.server(),
            old.agent(),
            Optional.of(fresh));
    proxies.set(id - 1, restarted);
    return restarted;
  }

  private JavaProcess startAgentProcess(
      String name, Namespace ns, Inet4Address self4, Inet6Address self6) {
    return startProcess(
        name,
        ns,
        ProxyAgentMain.class,
        List.of(
            "--id",
            name,
            "--coordinators",
            String.join(",", coordinators),
            "--netns",
            ns.name(),
            "--interface",
            "eth0",
            "--address",
            self4.getHostAddress() + "," + self6.getHostAddress(),
            "--pin-dir",
            ns.pinDirectory().toString()));
  }

  /**
   * Starts a director daemon that takes over what an earlier one, stopped outside the bed (for
   * instance by {@link DirectorDaemon#handOver}), left attached and pinned.
   */
  public Director takeOverDirector(int id) {
    return replaceDirector(directors.get(id - 1));
  }

  private Director replaceDirector(Director old) {
    Director fresh = startDaemon(old.id(), old.ns(), old.address4(), old.address6());
    directors.set(old.id() - 1, fresh);
    awaitReady(fresh);
    return fresh;
  }

  /** The coordinators the bed's daemons follow. */
  public List<String> coordinators() {
    return coordinators;
  }

  /**
   * Restarts a director daemon the way an operator upgrades one: the running daemon hands over (its
   * program stays attached, its maps pinned), a new daemon takes the pins over, replaces the
   * program in one step and follows the coordinators. Forwarding never stops.
   */
  public Director restartDirector(int id) throws InterruptedException {
    Director old = directors.get(id - 1);
    if (old.process().isPresent()) {
      old.process().get().close(); // SIGTERM: the daemon hands over
    } else {
      checkState(old.daemon().isPresent(), "only a bed with coordinators runs director daemons");
      old.daemon().get().handOver();
    }
    return replaceDirector(old);
  }

  /**
   * A host with one veth to the router, default routes through it and a resolved router neighbour.
   */
  private void hostLink(
      Namespace ns,
      String routerIf,
      String router4,
      Inet4Address self4,
      String router6,
      Inet6Address self6) {
    link(ns, "eth0", routerIf);
    ns.exec("ip", "addr", "add", self4.getHostAddress() + "/30", "dev", "eth0");
    ns.exec("ip", "-6", "addr", "add", self6.getHostAddress() + "/64", "dev", "eth0", "nodad");
    router.exec("ip", "addr", "add", router4 + "/30", "dev", routerIf);
    router.exec("ip", "-6", "addr", "add", router6 + "/64", "dev", routerIf, "nodad");
    ns.exec("ip", "route", "add", "default", "via", router4);
    ns.exec("ip", "-6", "route", "add", "default", "via", router6);
    ns.sysctl("net.ipv4.conf.all.rp_filter", "0");
    ns.sysctl("net.ipv4.conf.eth0.rp_filter", "0");
    // A veth leaves checksums to be filled in later, which XDP on the far end cannot do: what a
    // host sends (a proxy's answers, a director's probes) must carry its checksum, as on a wire.
    ns.exec("ethtool", "-K", "eth0", "tx", "off");
    // A veth hands XDP_TX frames only to a peer that runs XDP itself.
    routerAttachments.add(
        XdpAttachment.attach(
            passProgram.program("veer_pass"), router.handle(), routerIf, XdpMode.NATIVE));
  }

  /**
   * Takes director {@code id}'s link down or brings it up again; up, it also restores the IPv6
   * address and the default routes the kernel removed with the link, as a host's network manager
   * does.
   */
  public void setDirectorLink(int id, boolean up) throws InterruptedException {
    Director d = directors.get(id - 1);
    d.ns().exec("ip", "link", "set", "dev", "eth0", up ? "up" : "down");
    if (up) {
      // IPv6 addresses go with the link (keep_addr_on_down is off), and the default routes too.
      d.ns()
          .exec(
              "ip",
              "-6",
              "addr",
              "replace",
              d.address6().getHostAddress() + "/64",
              "dev",
              "eth0",
              "nodad");
      Await.until(
          d.name() + "'s default routes restored",
          () ->
              d.ns()
                          .tryExec(
                              "ip", "route", "replace", "default", "via", "192.0.2." + (4 * id + 1))
                          .exitCode()
                      == 0
                  && d.ns()
                          .tryExec(
                              "ip",
                              "-6",
                              "route",
                              "replace",
                              "default",
                              "via",
                              "2001:db8:d" + id + "::1")
                          .exitCode()
                      == 0,
          Duration.ofSeconds(5));
    }
  }

  /**
   * Cuts director {@code id} off (true): everything it sends is lost at the router, while its link
   * stays up, as from a host that died silently; or (false) lets it through again.
   */
  public void cutOffDirector(int id, boolean cut) {
    cutOff("d" + id, cut);
  }

  /**
   * Cuts proxy {@code id} off (true): everything it sends (its answers to clients, to the
   * directors' probes) is lost at the router, while its host and its checks of itself are fine; or
   * (false) lets it through again.
   */
  public void cutOffProxy(int id, boolean cut) {
    cutOff("p" + id, cut);
  }

  private void cutOff(String routerIf, boolean cut) {
    routerAttachments.removeIf(a -> a.ifname().equals(routerIf));
    XdpAttachment.detachAll(router.handle(), routerIf);
    routerAttachments.add(
        XdpAttachment.attach(
            passProgram.program(cut ? "veer_drop" : "veer_pass"),
            router.handle(),
            routerIf,
            XdpMode.NATIVE));
  }

  /**
   * Deletes director {@code id}'s link to the router and creates it again under the same names and
   * addresses, as when a NIC's driver is reloaded: the director's program goes with the old
   * interface.
   */
  public void recreateDirectorLink(int id) {
    Director d = directors.get(id - 1);
    router.exec("ip", "link", "delete", "d" + id);
    hostLink(
        d.ns(),
        "d" + id,
        "192.0.2." + (4 * id + 1),
        d.address4(),
        "2001:db8:d" + id + "::1",
        d.address6());
  }

  private void link(Namespace host, String hostIf, String routerIf) {
    router.exec(
        "ip",
        "link",
        "add",
        routerIf,
        "type",
        "veth",
        "peer",
        "name",
        hostIf,
        "netns",
        host.name());
    router.exec("ip", "link", "set", routerIf, "up");
    host.exec("ip", "link", "set", hostIf, "up");
  }

  /** The next hops of the router's BGP route to the IPv4 VIP, sorted (none: no route). */
  public List<String> routerNextHops4() {
    return routerNextHops(VIP4);
  }

  /** The next hops of the router's BGP route to {@code vip}, sorted (none: no route). */
  public List<String> routerNextHops(InetAddress vip) {
    boolean v6 = vip instanceof Inet6Address;
    String route = router.exec("ip", v6 ? "-6" : "-4", "route", "show", vip.getHostAddress());
    if (!route.contains("proto bird")) {
      return List.of();
    }
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile(
                v6 ? "via (2001:db8:[0-9a-f:]+)" : "via (192\\.0\\.2\\.\\d+)")
            .matcher(route);
    List<String> out = new ArrayList<>();
    while (m.find()) {
      out.add(InetAddresses.toAddrString(InetAddresses.forString(m.group(1))));
    }
    out.sort(null);
    return out;
  }

  /** The router's address on director {@code d}'s link. */
  private static Inet4Address routerSide4(int d) {
    return (Inet4Address) InetAddresses.forString("192.0.2." + (4 * d + 1));
  }

  private static Inet6Address routerSide6(int d) {
    return (Inet6Address) InetAddresses.forString("2001:db8:d" + d + "::1");
  }

  /** The router's BGP speaker. */
  public Bird routerSpeaker() {
    return speakers.getFirst();
  }

  /** Starts director {@code id}'s BGP speaker again (after it was killed). */
  public Bird restartSpeaker(int id) {
    Director d = directors.get(id - 1);
    speakers.get(id).close();
    Bird fresh = Bird.director(d.ns(), d.address4(), routerSide4(id), routerSide6(id));
    speakers.set(id, fresh);
    return fresh;
  }

  /** Director {@code id}'s BGP speaker. */
  public Bird speaker(int id) {
    return speakers.get(id);
  }

  /**
   * Makes the router spread the VIPs over exactly these directors: the other directors' BGP
   * sessions disabled through their speakers' control sockets (and the members' enabled), waiting
   * until the router's route to the IPv4 VIP says so.
   */
  public void setEcmp(List<Director> members) {
    checkArgument(!members.isEmpty(), "ECMP needs at least one director");
    for (Director d : directors) {
      for (int session = 1; session <= 2; session++) {
        speaker(d.id())
            .show(
                members.stream().anyMatch(m -> m.id() == d.id()) ? "enable" : "disable",
                SpeakerConfig.sessionName(session));
      }
    }
    ecmpMembers.clear();
    ecmpMembers.addAll(members);
    awaitEcmp(VIP4);
  }

  /**
   * Waits until the router's route to {@code vip} (learnt over BGP) goes via exactly the directors
   * in the ECMP set: after a service on it is created, or a change of the set.
   */
  public void awaitEcmp(InetAddress vip) {
    List<String> wanted =
        ecmpMembers.stream()
            .map(
                d ->
                    InetAddresses.toAddrString(
                        vip instanceof Inet4Address ? d.address4() : d.address6()))
            .sorted()
            .toList();
    try {
      Await.until(
          "the router's route to " + vip.getHostAddress() + " via " + wanted,
          () -> routerNextHops(vip).equals(wanted),
          Duration.ofSeconds(20));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  /** Installs the same table for a service on every director (a bed without coordinators only). */
  public void installTables(ServiceKey service, HopTable table) {
    checkState(coordinators.isEmpty(), "this bed's directors take their tables from coordinators");
    if (served.add(service)) {
      proxies.forEach(p -> p.dataplane().setServed(served));
    }
    for (Director d : directors) {
      d.dataplane().apply(service, ServiceOptions.DEFAULT, table);
    }
  }

  public ImmutableList<Director> directors() {
    return ImmutableList.copyOf(directors);
  }

  public ImmutableList<Proxy> proxies() {
    return ImmutableList.copyOf(proxies);
  }

  public Namespace client() {
    return client;
  }

  public Namespace router() {
    return router;
  }

  public byte[] hashKey() {
    return hashKey.clone();
  }

  /**
   * Tears everything down; safe to call more than once and after a failed build. Every step runs
   * even if an earlier one fails; the first failure is rethrown with the others suppressed.
   */
  @Override
  public void close() {
    // Closed last to first: servers and daemons, then the router's programs, then the namespaces.
    CloseStack stack = new CloseStack();
    stack.push(passProgram);
    installedCoordinator.ifPresent(stack::push);
    namespaces.forEach(stack::push);
    speakers.forEach(stack::push);
    speakers.clear();
    routerAttachments.forEach(stack::push);
    directors.forEach(d -> stack.push(d.owner()));
    for (Proxy p : proxies) {
      stack.push(p.owner());
      stack.push(p.server());
    }
    proxies.clear();
    directors.clear();
    routerAttachments.clear();
    namespaces.clear();
    try {
      stack.close();
    } catch (Exception e) {
      throw new IllegalStateException("tearing down the test bed failed", e);
    }
  }

  private static void closeQuietly(AutoCloseable resource) {
    try {
      resource.close();
    } catch (Exception e) {
      log.warn("closing {} after a failed start: {}", resource, e.toString());
    }
  }

  /** Replaces a proxy's TCP server, after a test stopped it (the service "comes back"). */
  public Proxy restartServer(int id) {
    Proxy old = proxies.get(id - 1);
    old.server().close();
    Proxy fresh =
        new Proxy(
            old.id(),
            old.ns(),
            old.address4(),
            old.address6(),
            old.local(),
            EchoServer.start(old.ns().handle(), SERVICE_PORT, old.name()),
            old.agent(),
            old.agentProcess());
    proxies.set(id - 1, fresh);
    return fresh;
  }

  @SuppressWarnings("unchecked")
  private static <T extends InetAddress> T hostOf(String literal) {
    return (T) InetAddresses.forString(literal);
  }
}
