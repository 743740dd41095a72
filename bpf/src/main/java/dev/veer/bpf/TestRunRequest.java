package dev.veer.bpf;

import java.util.Arrays;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Optional;

/**
 * Input of {@link BpfProgram#testRun}: a packet, how often to run the program on it, and optionally
 * the XDP context (receiving interface and queue) the program sees.
 */
public record TestRunRequest(byte[] packet, int repeat, Optional<XdpContext> xdpContext) {

  /**
   * The receive side of an XDP context ({@code struct xdp_md}). A non-zero ifindex must name an
   * interface of the calling thread's network namespace with more than {@code rxQueueIndex} receive
   * queues, so run the test inside {@link NetworkNamespace#call} where needed.
   */
  public record XdpContext(int ingressIfindex, int rxQueueIndex) {}

  public TestRunRequest {
    packet = packet.clone();
    if (repeat < 1) {
      throw new IllegalArgumentException("repeat must be at least 1, got " + repeat);
    }
    Objects.requireNonNull(xdpContext, "xdpContext");
  }

  /** Runs the program once on {@code packet}, without context. */
  public static TestRunRequest of(byte[] packet) {
    return new TestRunRequest(packet, 1, Optional.empty());
  }

  public TestRunRequest withRepeat(int newRepeat) {
    return new TestRunRequest(packet, newRepeat, xdpContext);
  }

  public TestRunRequest withXdpContext(int ingressIfindex, int rxQueueIndex) {
    return new TestRunRequest(
        packet, repeat, Optional.of(new XdpContext(ingressIfindex, rxQueueIndex)));
  }

  @Override
  public byte[] packet() {
    return packet.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TestRunRequest r
        && Arrays.equals(packet, r.packet)
        && repeat == r.repeat
        && xdpContext.equals(r.xdpContext);
  }

  @Override
  public int hashCode() {
    return Objects.hash(Arrays.hashCode(packet), repeat, xdpContext);
  }

  @Override
  public String toString() {
    return "TestRunRequest[packet="
        + HexFormat.of().formatHex(packet)
        + ", repeat="
        + repeat
        + ", xdpContext="
        + xdpContext
        + "]";
  }
}
