package dev.veer.testbed.wire;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.veer.bpf.NetworkNamespace;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;

/**
 * Sends Ethernet frames, as given, out of an interface of a namespace the test made (an AF_PACKET
 * socket): for benchmarks that need packets to arrive on a veth's peer through the kernel's real
 * path, where BPF_PROG_TEST_RUN cannot go (device-bound programs).
 */
public final class FrameSender {
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle SOCKET =
      downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle BIND =
      downcall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle SEND =
      downcall("send", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
  private static final MethodHandle CLOSE =
      downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
  private static final int AF_PACKET = 17;
  private static final int SOCK_RAW = 3;

  /** htons(ETH_P_ALL) on a little-endian host. */
  private static final int ETH_P_ALL_BE = 0x0300;

  private FrameSender() {}

  private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
  }

  /** Sends each of {@code frames} {@code rounds} times, in order, out of {@code ifname}. */
  public static void send(NetworkNamespace ns, String ifname, List<byte[]> frames, int rounds) {
    int ifindex = ns.ifindex(ifname);
    ns.call(
        () -> {
          try {
            sendHere(ifindex, frames, rounds);
          } catch (RuntimeException | Error e) {
            throw e;
          } catch (Throwable t) {
            throw new IllegalStateException("sending frames out of " + ifname + " failed", t);
          }
          return null;
        });
  }

  private static void sendHere(int ifindex, List<byte[]> frames, int rounds) throws Throwable {
    int fd = (int) SOCKET.invokeExact(AF_PACKET, SOCK_RAW, ETH_P_ALL_BE);
    if (fd < 0) {
      throw new IllegalStateException("socket(AF_PACKET, SOCK_RAW) failed");
    }
    try (Arena arena = Arena.ofConfined()) {
      // struct sockaddr_ll: family, protocol (network order), ifindex, then unused here.
      MemorySegment address = arena.allocate(20);
      address.set(JAVA_SHORT, 0, (short) AF_PACKET);
      address.set(JAVA_SHORT, 2, (short) ETH_P_ALL_BE);
      address.set(JAVA_INT, 4, ifindex);
      if ((int) BIND.invokeExact(fd, address, 20) != 0) {
        throw new IllegalStateException("bind(AF_PACKET) to interface " + ifindex + " failed");
      }
      MemorySegment[] segments = new MemorySegment[frames.size()];
      for (int i = 0; i < segments.length; i++) {
        byte[] frame = frames.get(i);
        segments[i] = arena.allocate(frame.length);
        MemorySegment.copy(frame, 0, segments[i], JAVA_BYTE, 0, frame.length);
      }
      for (int r = 0; r < rounds; r++) {
        for (MemorySegment frame : segments) {
          long sent = (long) SEND.invokeExact(fd, frame, frame.byteSize(), 0);
          if (sent != frame.byteSize()) {
            throw new IllegalStateException("send sent " + sent + " of " + frame.byteSize());
          }
        }
      }
    } finally {
      int ignored = (int) CLOSE.invokeExact(fd);
    }
  }
}
