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
import java.net.SocketException;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * Checks one service on this host the way a client would find it: the VIP must be on an
 * interface (loopback, usually), and for TCP something must accept a connection on VIP:port
 * within the timeout. Also counts the service's live connections from the kernel's socket
 * table. Runs inside the host's network namespace.
 */
public final class ServiceCheck {
  private ServiceCheck() {}

  /** A check's outcome and, when unhealthy, what the operator should look at. */
  public record Result(Health health, String detail) {}

  public static Result check(NetworkNamespace ns, ServiceTarget target, int timeoutMillis) {
    return ns.call(() -> {
      InetAddress vip = InetAddress.getByAddress(target.getVip().toByteArray());
      if (!hasAddress(vip)) {
        return new Result(Health.UNHEALTHY, "VIP " + vip.getHostAddress() + " is on no interface of this host: "
            + "ip addr add " + vip.getHostAddress() + (vip instanceof Inet6Address ? "/128" : "/32") + " dev lo");
      }
      if (target.getProtocol() != Protocol.TCP) {
        return new Result(Health.HEALTHY, "VIP present (UDP is not probed)");
      }
      try (Socket probe = new Socket()) {
        probe.connect(new InetSocketAddress(vip, target.getPort()), timeoutMillis);
        return new Result(Health.HEALTHY, "accepting on " + vip.getHostAddress() + ":" + target.getPort());
      } catch (IOException e) {
        return new Result(Health.UNHEALTHY, "nothing accepts connections on " + vip.getHostAddress() + ":"
            + target.getPort() + " (" + e.getMessage() + ")");
      }
    });
  }

  private static boolean hasAddress(InetAddress address) throws SocketException {
    for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      for (InetAddress a : Collections.list(nic.getInetAddresses())) {
        if (java.util.Arrays.equals(a.getAddress(), address.getAddress())) {
          return true;
        }
      }
    }
    return false;
  }

  /** Established TCP connections to VIP:port in {@code ns} (IPv4-mapped ones on dual-stack sockets too). */
  public static long liveConnections(NetworkNamespace ns, ServiceTarget target) {
    return ns.call(() -> {
      InetAddress vip = InetAddress.getByAddress(target.getVip().toByteArray());
      String port = String.format(Locale.ROOT, "%04X", target.getPort());
      long count = 0;
      // thread-self: the socket table of the namespace this thread has entered.
      for (String file : List.of("tcp", "tcp6")) {
        Path table = Path.of("/proc/thread-self/net", file);
        if (!Files.exists(table)) {
          continue;
        }
        List<String> lines = Files.readAllLines(table);
        for (String line : lines.subList(1, lines.size())) {
          String[] f = line.trim().split("\\s+");
          if (f.length > 3 && f[3].equals("01") && f[1].endsWith(":" + port)
              && isAddress(f[1].substring(0, f[1].indexOf(':')), vip)) {
            count++;
          }
        }
      }
      return count;
    });
  }

  /** Whether a /proc/net/tcp{,6} address (hex, 32-bit words in host order) is {@code vip}. */
  static boolean isAddress(String hex, InetAddress vip) throws UnknownHostException {
    byte[] raw = new byte[hex.length() / 2];
    for (int word = 0; word < raw.length / 4; word++) {
      for (int i = 0; i < 4; i++) {
        // Each 32-bit word is printed as a host-order (little-endian) integer.
        raw[word * 4 + i] = (byte) Integer.parseInt(hex.substring(word * 8 + (3 - i) * 2, word * 8 + (3 - i) * 2 + 2),
            16);
      }
    }
    byte[] want = vip.getAddress();
    if (raw.length == want.length) {
      return java.util.Arrays.equals(raw, want);
    }
    // ::ffff:a.b.c.d on a dual-stack socket.
    if (raw.length == 16 && want.length == 4) {
      for (int i = 0; i < 10; i++) {
        if (raw[i] != 0) {
          return false;
        }
      }
      return raw[10] == (byte) 0xff && raw[11] == (byte) 0xff
          && java.util.Arrays.equals(java.util.Arrays.copyOfRange(raw, 12, 16), want);
    }
    return false;
  }
}
