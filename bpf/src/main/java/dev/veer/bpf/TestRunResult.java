package dev.veer.bpf;

import java.util.Arrays;
import java.util.HexFormat;
import java.util.Objects;

/**
 * Outcome of {@link BpfProgram#testRun}.
 *
 * @param retval the program's return value (for XDP: 0 ABORTED, 1 DROP, 2 PASS, 3 TX, 4 REDIRECT)
 * @param packetOut the packet as the program left it
 * @param durationNs the kernel's average run time per repetition
 */
public record TestRunResult(int retval, byte[] packetOut, long durationNs) {
  public TestRunResult {
    packetOut = packetOut.clone();
  }

  @Override
  public byte[] packetOut() {
    return packetOut.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TestRunResult r
        && retval == r.retval
        && Arrays.equals(packetOut, r.packetOut)
        && durationNs == r.durationNs;
  }

  @Override
  public int hashCode() {
    return Objects.hash(retval, Arrays.hashCode(packetOut), durationNs);
  }

  @Override
  public String toString() {
    return "TestRunResult[retval="
        + retval
        + ", packetOut="
        + HexFormat.of().formatHex(packetOut)
        + ", durationNs="
        + durationNs
        + "]";
  }
}
