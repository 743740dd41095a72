package dev.veer.testbed;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.common.collect.ImmutableList;
import com.google.common.net.InetAddresses;
import dev.veer.bpf.BpfObject;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.director.DirectorDaemon;
import dev.veer.proxy.ProxyAgent;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.net.Namespace;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.security.SecureRandom;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Veer on one machine: network namespaces joined by veth pairs, routed like a
 * small data centre.
 *
 * <pre>
 *   client ── router ──┬── director 1..D   (router spreads the VIP over them: ECMP, L4 hash)
 *                      └── proxy 1..P      (VIP on loopback, TCP server, proxy XDP program)
 * </pre>
 *
 * Every link is a routed /30 (and /64) to the router, so director → proxy and
 * proxy → proxy (second chance) traffic crosses the router like it would cross
 * a fabric. Directors and proxies run Veer's XDP programs natively on their
 * veth; the router side of those links runs an XDP_PASS program so that it
 * accepts their XDP_TX frames. Closing the bed deletes every namespace it made, which removes all
 * interfaces and detaches all programs.
 */
public final class TestBed implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(TestBed.class);

  public static final Inet4Address VIP4 = (Inet4Address) InetAddresses.forString("203.0.113.10");
  public static final Inet6Address VIP6 = (Inet6Address) InetAddresses.forString("2001:db8:100::10");
  public static final int SERVICE_PORT = 80;
  public static final Inet4Address CLIENT4 = (Inet4Address) InetAddresses.forString("198.51.100.2");
  public static final Inet6Address CLIENT6 = (Inet6Address) InetAddresses.forString("2001:db8:c::2");

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

  /**
   * A director host: its namespace, addresses and data plane, and the daemon that runs it when
   * the bed follows coordinators (else the bed installs tables itself).
   */
  public record Director(int id, Namespace ns, Inet4Address address4, Inet6Address address6,
      DirectorDataplane dataplane, Optional<DirectorDaemon> daemon) {
    public String name() {
      return "director-" + id;
    }

    /** What to close: the daemon if there is one (it owns the data plane), else the data plane. */
    AutoCloseable owner() {
      return daemon.<AutoCloseable>map(d -> d).orElse(dataplane);
    }
  }

  /**
   * A proxy host: its namespace, addresses, data plane and TCP server, and the agent that runs
   * the data plane when the bed has agents (else the bed sets the allow-list itself).
   */
  public record Proxy(int id, Namespace ns, Inet4Address address4, Inet6Address address6,
      ProxyDataplane dataplane, EchoServer server, Optional<ProxyAgent> agent) {
    public String name() {
      return "proxy-" + id;
    }

    AutoCloseable owner() {
      return agent.<AutoCloseable>map(a -> a).orElse(dataplane);
    }
  }

  private TestBed(String prefix, BpfObject passProgram, List<String> coordinators, boolean agents) {
    this.prefix = prefix;
    this.passProgram = passProgram;
    this.coordinators = List.copyOf(coordinators);
    this.agents = agents;
    new SecureRandom().nextBytes(hashKey);
  }

  /**
   * Builds the bed: {@code directorCount} directors in the router's ECMP set and
   * {@code proxyCount} proxies, each serving TCP port 80 on the VIPs. No service
   * is installed yet: call {@link #installTables}.
   */
  public static TestBed create(String runId, int directorCount, int proxyCount) {
    return create(runId, directorCount, proxyCount, List.of());
  }

  /**
   * Builds the bed with director daemons that follow {@code coordinators} (host:port, reached
   * from this process) for their tables, as real directors do; with none, the bed's own
   * {@link #installTables} feeds them.
   */
  public static TestBed create(String runId, int directorCount, int proxyCount, List<String> coordinators) {
    return create(runId, directorCount, proxyCount, coordinators, false);
  }

  /**
   * Builds the bed with director daemons following {@code coordinators} and, with {@code agents},
   * a proxy agent on every proxy host that takes its allow-list from them and reports health.
   */
  public static TestBed create(String runId, int directorCount, int proxyCount, List<String> coordinators,
      boolean agents) {
    checkArgument(directorCount >= 1 && directorCount <= 8, "1..8 directors");
    checkArgument(proxyCount >= 1 && proxyCount <= 16, "1..16 proxies");
    checkArgument(!agents || !coordinators.isEmpty(), "agents need coordinators");
    TestBed bed = new TestBed(runId + "-", BpfObject.load("/bpf/pass.o", LoadOptions.DEFAULT), coordinators,
        agents);
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
    client.exec("ip", "-6", "addr", "add", CLIENT6.getHostAddress() + "/64", "dev", "eth0", "nodad");
    router.exec("ip", "addr", "add", "198.51.100.1/24", "dev", "c0");
    router.exec("ip", "-6", "addr", "add", "2001:db8:c::1/64", "dev", "c0", "nodad");
    client.exec("ip", "route", "add", "default", "via", "198.51.100.1");
    client.exec("ip", "-6", "route", "add", "default", "via", "2001:db8:c::1");
    // Checksums must be in the packet before it reaches XDP on a director.
    client.exec("ethtool", "-K", "eth0", "tx", "off");

    for (int d = 1; d <= directorCount; d++) {
      directors.add(buildDirector(d));
    }
    for (int p = 1; p <= proxyCount; p++) {
      proxies.add(buildProxy(p));
    }
    Set<InetAddress> peers = new HashSet<>();
    directors.forEach(d -> peers.addAll(List.of(d.address4(), d.address6())));
    proxies.forEach(p -> peers.addAll(List.of(p.address4(), p.address6())));
    for (Proxy p : proxies) {
      if (p.agent().isEmpty()) {
        p.dataplane().setPeers(peers);
      }
    }
    setEcmp(directors);
    log.info("test bed {} up: {} directors, {} proxies", router.name().replace("router", "*"), directorCount,
        proxyCount);
  }

  private Director buildDirector(int d) {
    Namespace ns = namespace("dir" + d);
    Inet4Address self4 = hostOf("192.0.2." + (4 * d + 2));
    Inet6Address self6 = hostOf("2001:db8:d" + d + "::2");
    hostLink(ns, "d" + d, "192.0.2." + (4 * d + 1), self4, "2001:db8:d" + d + "::1", self6);
    // bpf_fib_lookup answers only for interfaces that forward.
    ns.sysctl("net.ipv4.ip_forward", "1");
    ns.sysctl("net.ipv6.conf.all.forwarding", "1");
    if (!coordinators.isEmpty()) {
      return startDaemon(d, ns, self4, self6);
    }
    DirectorDataplane dataplane = DirectorDataplane.attach(ns.handle(), "eth0", XdpMode.NATIVE,
        DirectorConfig.of(hashKey, self4, self6), VeerAbi.DEFAULT_ROW_BITS);
    return new Director(d, ns, self4, self6, dataplane, Optional.empty());
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
    ProxyDataplane dataplane;
    if (agents) {
      try {
        agent = Optional.of(ProxyAgent.start(new ProxyAgent.Config("proxy-" + p, coordinators, ns.handle(), "eth0",
            XdpMode.NATIVE, List.of(self4, self6), VeerAbi.GUE_PORT_DEFAULT, Optional.empty(), Optional.empty())));
      } catch (Exception e) {
        throw new IllegalStateException("proxy agent " + p + " did not start: " + e.getMessage(), e);
      }
      dataplane = agent.get().dataplane();
    } else {
      dataplane = ProxyDataplane.attach(ns.handle(), "eth0", XdpMode.NATIVE, VeerAbi.GUE_PORT_DEFAULT);
    }
    EchoServer server;
    try {
      server = EchoServer.start(ns.handle(), SERVICE_PORT, "proxy-" + p);
    } catch (RuntimeException e) {
      closeQuietly(agent.<AutoCloseable>map(a -> a).orElse(dataplane));
      throw e;
    }
    return new Proxy(p, ns, self4, self6, dataplane, server, agent);
  }

  /** A director daemon following the coordinators, its maps pinned under the namespace's name. */
  private Director startDaemon(int d, Namespace ns, Inet4Address self4, Inet6Address self6) {
    try {
      DirectorDaemon daemon = DirectorDaemon.start(new DirectorDaemon.Config("director-" + d, coordinators,
          ns.handle(), Optional.of("eth0"), XdpMode.NATIVE, Optional.of(self4), Optional.of(self6),
          VeerAbi.DEFAULT_ROW_BITS, Optional.empty(), Optional.empty(), Optional.of(pinDir(ns))));
      return new Director(d, ns, self4, self6, daemon.dataplane(), Optional.of(daemon));
    } catch (Exception e) {
      throw new IllegalStateException("director " + d + " did not start: " + e.getMessage(), e);
    }
  }

  /** Where a director's maps are pinned: named after its namespace, so a stale run's are found. */
  public static Path pinDir(Namespace ns) {
    return Path.of("/sys/fs/bpf", ns.name());
  }

  /**
   * Lets a director's daemon go without stopping forwarding (program attached, maps pinned), so
   * that another process can take its place; {@link #adoptDirector} brings one back here.
   */
  public void handOverDirector(int id) {
    Director old = directors.get(id - 1);
    checkState(old.daemon().isPresent(), "only a bed with coordinators runs director daemons");
    old.daemon().get().handOver();
  }

  /** Starts a director daemon here that takes over whatever the director's pins hold now. */
  public Director adoptDirector(int id) {
    Director old = directors.get(id - 1);
    Director fresh = startDaemon(id, old.ns(), old.address4(), old.address6());
    directors.set(id - 1, fresh);
    return fresh;
  }

  /** The coordinators the bed's daemons follow. */
  public List<String> coordinators() {
    return coordinators;
  }

  /**
   * Restarts a director daemon the way an operator upgrades one: the running daemon hands over
   * (its program stays attached, its maps pinned), a new daemon takes the pins over, replaces
   * the program in one step and follows the coordinators. Forwarding never stops.
   */
  public Director restartDirector(int id) {
    Director old = directors.get(id - 1);
    checkState(old.daemon().isPresent(), "only a bed with coordinators runs director daemons");
    old.daemon().get().handOver();
    Director fresh = startDaemon(id, old.ns(), old.address4(), old.address6());
    directors.set(id - 1, fresh);
    return fresh;
  }

  /** A host with one veth to the router, default routes through it and a resolved router neighbour. */
  private void hostLink(Namespace ns, String routerIf, String router4, Inet4Address self4, String router6,
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
    routerAttachments.add(XdpAttachment.attach(passProgram.program("veer_pass"), router.handle(), routerIf,
        XdpMode.NATIVE));
  }

  private void link(Namespace host, String hostIf, String routerIf) {
    router.exec("ip", "link", "add", routerIf, "type", "veth", "peer", "name", hostIf, "netns", host.name());
    router.exec("ip", "link", "set", routerIf, "up");
    host.exec("ip", "link", "set", hostIf, "up");
  }

  /** Makes the router spread the VIPs over exactly these directors. */
  public void setEcmp(List<Director> members) {
    checkArgument(!members.isEmpty(), "ECMP needs at least one director");
    List<String> v4 = new ArrayList<>(List.of("ip", "route", "replace", VIP4.getHostAddress() + "/32"));
    List<String> v6 = new ArrayList<>(List.of("ip", "-6", "route", "replace", VIP6.getHostAddress() + "/128"));
    for (Director d : members) {
      v4.addAll(List.of("nexthop", "via", d.address4().getHostAddress()));
      v6.addAll(List.of("nexthop", "via", d.address6().getHostAddress()));
    }
    router.exec(v4.toArray(String[]::new));
    router.exec(v6.toArray(String[]::new));
  }

  /** Installs the same table for a service on every director (a bed without coordinators only). */
  public void installTables(ServiceKey service, HopTable table) {
    checkState(coordinators.isEmpty(), "this bed's directors take their tables from coordinators");
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
   * Tears everything down; safe to call more than once and after a failed
   * build. Every step runs even if an earlier one fails; the first failure is
   * rethrown with the others suppressed.
   */
  @Override
  public void close() {
    List<AutoCloseable> steps = new ArrayList<>();
    for (Proxy p : proxies) {
      steps.add(p.server());
      steps.add(p.owner());
    }
    directors.forEach(d -> steps.add(d.owner()));
    steps.addAll(routerAttachments);
    steps.addAll(namespaces.reversed());
    steps.add(passProgram);
    proxies.clear();
    directors.clear();
    routerAttachments.clear();
    namespaces.clear();
    RuntimeException failure = null;
    for (AutoCloseable step : steps) {
      try {
        step.close();
      } catch (Exception e) {
        if (failure == null) {
          failure = new IllegalStateException("tearing down the test bed failed", e);
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
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
    Proxy fresh = new Proxy(old.id(), old.ns(), old.address4(), old.address6(), old.dataplane(),
        EchoServer.start(old.ns().handle(), SERVICE_PORT, old.name()), old.agent());
    proxies.set(id - 1, fresh);
    return fresh;
  }

  @SuppressWarnings("unchecked")
  private static <T extends InetAddress> T hostOf(String literal) {
    return (T) InetAddresses.forString(literal);
  }
}
