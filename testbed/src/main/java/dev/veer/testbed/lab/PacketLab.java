package dev.veer.testbed.lab;

import com.google.common.net.InetAddresses;
import dev.veer.bpf.BpfProgram;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.TestRunRequest;
import dev.veer.bpf.TestRunResult;
import dev.veer.testbed.net.Namespace;
import dev.veer.testbed.wire.MacAddress;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * A namespace in which BPF_PROG_TEST_RUN sees a real kernel routing and neighbour state: interface
 * {@code lab0} (MTU 1500) with on-link peers whose MACs are known, one on-link address without a
 * neighbour entry and one address without a route. Programs are test-run with {@code lab0} as their
 * ingress interface, so their FIB lookups resolve against this state.
 */
public final class PacketLab implements AutoCloseable {
  public static final String IFNAME = "lab0";
  public static final int MTU = 1500;
  public static final MacAddress LAB_MAC = MacAddress.parse("02:00:5e:00:00:01");
  public static final MacAddress CLIENT_MAC = MacAddress.parse("02:00:5e:00:00:fe");
  public static final Inet4Address SELF4 = v4("192.0.2.1");
  public static final Inet6Address SELF6 = v6("2001:db8:1::1");
  public static final List<Inet4Address> PEERS4 =
      List.of(v4("192.0.2.10"), v4("192.0.2.11"), v4("192.0.2.12"), v4("192.0.2.13"));
  public static final List<Inet6Address> PEERS6 =
      List.of(
          v6("2001:db8:1::10"), v6("2001:db8:1::11"), v6("2001:db8:1::12"), v6("2001:db8:1::13"));

  /** On-link with a known MAC, and named by no table but the one a test makes for it. */
  public static final Inet4Address SPARE4 = v4("192.0.2.20");

  /** On-link, but the kernel has no neighbour entry for it. */
  public static final Inet4Address UNRESOLVED4 = v4("192.0.2.99");

  public static final Inet6Address UNRESOLVED6 = v6("2001:db8:1::99");

  /** No route at all. */
  public static final Inet4Address UNROUTABLE4 = v4("198.51.100.99");

  public static final Inet6Address UNROUTABLE6 = v6("2001:db8:ffff::99");
  public static final Inet4Address VIP4 = v4("203.0.113.10");
  public static final Inet6Address VIP6 = v6("2001:db8:100::10");
  public static final Inet4Address CLIENT4 = v4("198.51.100.7");
  public static final Inet6Address CLIENT6 = v6("2001:db8:c::7");

  private final Namespace ns;
  private final int ifindex;

  private PacketLab(Namespace ns) {
    this.ns = ns;
    this.ifindex = ns.handle().ifindex(IFNAME);
  }

  /** Creates the lab in namespace {@code veer-<pid>-<role>}. */
  public static PacketLab create(String role) {
    Namespace ns = Namespace.create(role);
    try {
      ns.exec("ip", "link", "add", IFNAME, "type", "veth", "peer", "name", "lab1");
      ns.exec(
          "ip",
          "link",
          "set",
          IFNAME,
          "address",
          LAB_MAC.toString(),
          "mtu",
          String.valueOf(MTU),
          "up");
      ns.exec("ip", "link", "set", "lab1", "up");
      ns.exec("ip", "addr", "add", SELF4.getHostAddress() + "/24", "dev", IFNAME);
      ns.exec("ip", "-6", "addr", "add", SELF6.getHostAddress() + "/64", "dev", IFNAME, "nodad");
      ns.exec("ip", "addr", "add", VIP4.getHostAddress() + "/32", "dev", "lo");
      ns.exec("ip", "-6", "addr", "add", VIP6.getHostAddress() + "/128", "dev", "lo", "nodad");
      ns.sysctl("net.ipv4.ip_forward", "1");
      ns.sysctl("net.ipv6.conf.all.forwarding", "1");
      for (int i = 0; i < PEERS4.size(); i++) {
        neighbour(ns, PEERS4.get(i), peerMac(i));
        neighbour(ns, PEERS6.get(i), peerMac(i));
      }
      neighbour(ns, SPARE4, macOf(SPARE4));
      return new PacketLab(ns);
    } catch (RuntimeException e) {
      ns.close();
      throw e;
    }
  }

  /** The MAC the lab's kernel knows for peer {@code i}. */
  public static MacAddress peerMac(int i) {
    return MacAddress.parse(String.format("02:00:5e:00:01:%02x", i));
  }

  public static MacAddress macOf(InetAddress peer) {
    if (peer.equals(SPARE4)) {
      return peerMac(0x20);
    }
    int i = peer instanceof Inet4Address ? PEERS4.indexOf(peer) : PEERS6.indexOf(peer);
    if (i < 0) {
      throw new IllegalArgumentException(peer + " is not a lab peer");
    }
    return peerMac(i);
  }

  public int ifindex() {
    return ifindex;
  }

  public NetworkNamespace handle() {
    return ns.handle();
  }

  public Namespace namespace() {
    return ns;
  }

  /** Runs a frame through a program once, with {@code lab0} as the ingress interface. */
  public TestRunResult run(BpfProgram program, byte[] frame) {
    return call(() -> program.testRun(request(frame)));
  }

  /** A test-run request for a frame arriving on {@code lab0}; run it inside {@link #call}. */
  public TestRunRequest request(byte[] frame) {
    return TestRunRequest.of(frame).withXdpContext(ifindex, 0);
  }

  /** Runs work inside the lab's namespace (test runs, sockets). */
  public <T> T call(Callable<T> work) {
    return ns.handle().call(work);
  }

  @Override
  public void close() {
    ns.close();
  }

  private static void neighbour(Namespace ns, InetAddress address, MacAddress mac) {
    ns.exec(
        "ip",
        "neigh",
        "replace",
        address.getHostAddress(),
        "lladdr",
        mac.toString(),
        "dev",
        IFNAME,
        "nud",
        "permanent");
  }

  private static Inet4Address v4(String s) {
    return (Inet4Address) InetAddresses.forString(s);
  }

  private static Inet6Address v6(String s) {
    return (Inet6Address) InetAddresses.forString(s);
  }
}
