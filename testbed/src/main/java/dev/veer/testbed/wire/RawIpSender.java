package dev.veer.testbed.wire;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.veer.bpf.NetworkNamespace;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.Inet4Address;

/**
 * Sends a whole IPv4 packet, headers as given (a raw socket of protocol IPPROTO_RAW), from a
 * namespace the test made: for packets a host's stack would not send, such as a router's ICMP
 * "fragmentation needed" about another host's connection.
 */
public final class RawIpSender {
  private static final int AF_INET = 2;
  private static final int SOCK_RAW = 3;
  private static final int IPPROTO_RAW = 255;

  private RawIpSender() {}

  /** Sends {@code packet} (an IPv4 packet, header included) once, from {@code ns}. */
  public static void send(NetworkNamespace ns, Inet4Address destination, byte[] packet) {
    RawSockets.in(
        ns,
        "a raw send to " + destination.getHostAddress(),
        () -> {
          int fd = RawSockets.socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
          try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(packet.length);
            MemorySegment.copy(packet, 0, data, JAVA_BYTE, 0, packet.length);
            // struct sockaddr_in: family, port (unused), address.
            MemorySegment to = arena.allocate(16);
            to.set(JAVA_SHORT, 0, (short) AF_INET);
            MemorySegment.copy(destination.getAddress(), 0, to, JAVA_BYTE, 4, 4);
            RawSockets.sendTo(fd, data, to);
          } finally {
            RawSockets.close(fd);
          }
        });
  }
}
