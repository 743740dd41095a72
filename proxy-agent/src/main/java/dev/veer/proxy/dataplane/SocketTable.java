package dev.veer.proxy.dataplane;

import dev.veer.bpf.NetworkNamespace;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** The TCP sockets of a network namespace, as the kernel lists them in /proc/net/tcp{,6}. */
public final class SocketTable {
  /** The kernel's TCP states, as /proc prints them. */
  public static final int ESTABLISHED = 0x01;

  public static final int TIME_WAIT = 0x06;
  public static final int CLOSE = 0x07;
  public static final int LISTEN = 0x0a;

  private SocketTable() {}

  /**
   * One socket. An IPv4 peer of a dual-stack socket ({@code ::ffff:a.b.c.d}) is given as IPv4, the
   * way its packets carry it.
   *
   * @param receiveQueue a listener's connections not yet accepted; another socket's bytes received
   *     and not yet read by the application
   */
  public record Entry(
      InetAddress local,
      int localPort,
      InetAddress remote,
      int remotePort,
      int state,
      long receiveQueue) {}

  /** Every TCP socket of {@code ns}, listeners and request sockets included. */
  public static List<Entry> read(NetworkNamespace ns) {
    return ns.call(
        () -> {
          List<Entry> out = new ArrayList<>();
          // thread-self: the socket table of the namespace this thread has entered.
          for (String file : List.of("tcp", "tcp6")) {
            Path table = Path.of("/proc/thread-self/net", file);
            if (!Files.exists(table)) {
              continue;
            }
            List<String> lines = Files.readAllLines(table);
            for (String line : lines.subList(1, lines.size())) {
              String[] f = line.trim().split("\\s+");
              if (f.length > 4) {
                int localColon = f[1].indexOf(':');
                int remoteColon = f[2].indexOf(':');
                out.add(
                    new Entry(
                        address(f[1].substring(0, localColon)),
                        Integer.parseInt(f[1].substring(localColon + 1), 16),
                        address(f[2].substring(0, remoteColon)),
                        Integer.parseInt(f[2].substring(remoteColon + 1), 16),
                        Integer.parseInt(f[3], 16),
                        Long.parseLong(f[4].substring(f[4].indexOf(':') + 1), 16)));
              }
            }
          }
          return out;
        });
  }

  /** A /proc address: hex, 32-bit words each printed as a host-order (little-endian) integer. */
  static InetAddress address(String hex) throws UnknownHostException {
    byte[] raw = new byte[hex.length() / 2];
    for (int word = 0; word < raw.length / 4; word++) {
      for (int i = 0; i < 4; i++) {
        int at = word * 8 + (3 - i) * 2;
        raw[word * 4 + i] = (byte) Integer.parseInt(hex.substring(at, at + 2), 16);
      }
    }
    if (raw.length == 16
        && Arrays.equals(Arrays.copyOf(raw, 10), new byte[10])
        && raw[10] == (byte) 0xff
        && raw[11] == (byte) 0xff) {
      return InetAddress.getByAddress(Arrays.copyOfRange(raw, 12, 16));
    }
    return InetAddress.getByAddress(raw);
  }
}
