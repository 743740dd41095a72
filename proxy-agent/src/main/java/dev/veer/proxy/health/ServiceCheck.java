package dev.veer.proxy.health;

import dev.veer.bpf.NetworkNamespace;
import dev.veer.proto.proxy.v1.ServiceTarget;
import dev.veer.proto.types.v1.Health;
import dev.veer.proto.types.v1.Protocol;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Checks one service on this host the way a client would find it: the VIP must be on an interface
 * (loopback, usually), and for TCP something must accept a connection on VIP:port within the
 * timeout. Runs inside the host's network namespace.
 */
public final class ServiceCheck {
  private ServiceCheck() {}

  /** A check's outcome and, when unhealthy, what the operator should look at. */
  public record Result(Health health, String detail) {}

  /**
   * Checks every target in one pass: the host's addresses are read once, not once a service (a host
   * of a thousand services would otherwise list its interfaces a thousand times a round).
   */
  public static List<Result> checkAll(
      NetworkNamespace ns, List<ServiceTarget> targets, int timeoutMillis) {
    return ns.call(
        () -> {
          Set<InetAddress> local = addresses();
          List<Result> out = new ArrayList<>(targets.size());
          for (ServiceTarget target : targets) {
            out.add(check(target, local, timeoutMillis));
          }
          return out;
        });
  }

  private static Result check(ServiceTarget target, Set<InetAddress> local, int timeoutMillis)
      throws IOException {
    InetAddress vip = InetAddress.getByAddress(target.getVip().toByteArray());
    if (!local.contains(vip)) {
      return new Result(
          Health.UNHEALTHY,
          "VIP "
              + vip.getHostAddress()
              + " is on no interface of this host: "
              + "ip addr add "
              + vip.getHostAddress()
              + (vip instanceof Inet6Address ? "/128" : "/32")
              + " dev lo");
    }
    if (target.getProtocol() != Protocol.TCP) {
      return new Result(Health.HEALTHY, "VIP present (UDP is not probed)");
    }
    try (Socket probe = new Socket()) {
      probe.connect(new InetSocketAddress(vip, target.getPort()), timeoutMillis);
      return new Result(
          Health.HEALTHY, "accepting on " + vip.getHostAddress() + ":" + target.getPort());
    } catch (IOException e) {
      return new Result(
          Health.UNHEALTHY,
          "nothing accepts connections on "
              + vip.getHostAddress()
              + ":"
              + target.getPort()
              + " ("
              + e.getMessage()
              + ")");
    }
  }

  /** Every address on an interface of this host, without scope (an IPv6 VIP has none). */
  private static Set<InetAddress> addresses() throws IOException {
    Set<InetAddress> out = new HashSet<>();
    for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      for (InetAddress a : Collections.list(nic.getInetAddresses())) {
        out.add(InetAddress.getByAddress(a.getAddress()));
      }
    }
    return out;
  }
}
