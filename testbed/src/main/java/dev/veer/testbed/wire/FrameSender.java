package dev.veer.testbed.wire;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.veer.bpf.NetworkNamespace;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Sends Ethernet frames, as given, out of an interface of a namespace the test made (an AF_PACKET
 * socket): for benchmarks that need packets to arrive on a veth's peer through the kernel's real
 * path, where BPF_PROG_TEST_RUN cannot go (device-bound programs).
 */
public final class FrameSender {
  private static final int AF_PACKET = 17;
  private static final int SOCK_RAW = 3;

  /** htons(ETH_P_ALL) on a little-endian host. */
  private static final int ETH_P_ALL_BE = 0x0300;

  private FrameSender() {}

  /** Sends each of {@code frames} {@code rounds} times, in order, out of {@code ifname}. */
  public static void send(NetworkNamespace ns, String ifname, List<byte[]> frames, int rounds) {
    int ifindex = ns.ifindex(ifname);
    RawSockets.in(
        ns,
        "sending frames out of " + ifname,
        () -> {
          int fd = RawSockets.socket(AF_PACKET, SOCK_RAW, ETH_P_ALL_BE);
          try (Arena arena = Arena.ofConfined()) {
            // struct sockaddr_ll: family, protocol (network order), ifindex; the rest unused.
            MemorySegment address = arena.allocate(20);
            address.set(JAVA_SHORT, 0, (short) AF_PACKET);
            address.set(JAVA_SHORT, 2, (short) ETH_P_ALL_BE);
            address.set(JAVA_INT, 4, ifindex);
            RawSockets.bind(fd, address);
            MemorySegment[] segments = new MemorySegment[frames.size()];
            for (int i = 0; i < segments.length; i++) {
              byte[] frame = frames.get(i);
              segments[i] = arena.allocate(frame.length);
              MemorySegment.copy(frame, 0, segments[i], JAVA_BYTE, 0, frame.length);
            }
            for (int r = 0; r < rounds; r++) {
              for (MemorySegment frame : segments) {
                RawSockets.sendTo(fd, frame, MemorySegment.NULL);
              }
            }
          } finally {
            RawSockets.close(fd);
          }
        });
  }
}
