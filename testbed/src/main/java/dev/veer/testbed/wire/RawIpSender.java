package dev.veer.testbed.wire;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.veer.bpf.NetworkNamespace;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.net.Inet4Address;

/**
 * Sends a whole IPv4 packet, headers as given (a raw socket of protocol IPPROTO_RAW), from a
 * namespace the test made: for packets a host's stack would not send, such as a router's ICMP
 * "fragmentation needed" about another host's connection.
 */
public final class RawIpSender {
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle SOCKET =
      downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle SENDTO =
      downcall(
          "sendto",
          FunctionDescriptor.of(
              JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle CLOSE =
      downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
  private static final int AF_INET = 2;
  private static final int SOCK_RAW = 3;
  private static final int IPPROTO_RAW = 255;

  private RawIpSender() {}

  private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
  }

  /** Sends {@code packet} (an IPv4 packet, header included) once, from {@code ns}. */
  public static void send(NetworkNamespace ns, Inet4Address destination, byte[] packet) {
    ns.call(
        () -> {
          try {
            sendHere(destination, packet);
          } catch (RuntimeException | Error e) {
            throw e;
          } catch (Throwable t) {
            throw new IllegalStateException("raw send to " + destination + " failed", t);
          }
          return null;
        });
  }

  private static void sendHere(Inet4Address destination, byte[] packet) throws Throwable {
    int fd = (int) SOCKET.invokeExact(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (fd < 0) {
      throw new IllegalStateException("socket(AF_INET, SOCK_RAW, IPPROTO_RAW) failed");
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment data = arena.allocate(packet.length);
      MemorySegment.copy(packet, 0, data, JAVA_BYTE, 0, packet.length);
      MemorySegment to = arena.allocate(16);
      to.set(JAVA_BYTE, 0, (byte) AF_INET); // sin_family, a little-endian short
      MemorySegment.copy(destination.getAddress(), 0, to, JAVA_BYTE, 4, 4);
      long sent = (long) SENDTO.invokeExact(fd, data, (long) packet.length, 0, to, 16);
      if (sent != packet.length) {
        throw new IllegalStateException("sendto sent " + sent + " of " + packet.length);
      }
    } finally {
      int ignored = (int) CLOSE.invokeExact(fd);
    }
  }
}
