package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.primitives.Longs;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.ServiceOptions.HashFields;
import java.net.InetAddress;
import java.nio.ByteBuffer;

/**
 * The director's keyed flow hash, computed in Java: SipHash-1-3 over the client's address (and
 * port, big-endian, when the service hashes it). Lets user space predict the row, outer source port
 * and flow label of any flow.
 */
public final class FlowHash {
  private final SipHash siphash;

  public FlowHash(byte[] key) {
    checkArgument(key.length == 16, "the flow hash key has 16 bytes, got %s", key.length);
    siphash = new SipHash(littleEndianLong(key, 0), littleEndianLong(key, 8), 1, 3);
  }

  public long hash(InetAddress source, int sourcePort, HashFields fields) {
    byte[] address = source.getAddress();
    if (fields == HashFields.SOURCE_IP) {
      return siphash.hash(address);
    }
    return siphash.hash(
        ByteBuffer.allocate(address.length + 2).put(address).putShort((short) sourcePort).array());
  }

  public static int row(long hash, int rowBits) {
    return (int) hash & ((1 << rowBits) - 1);
  }

  /** The outer UDP source port the director writes for this hash. */
  public static int udpSourcePort(long hash) {
    return VeerAbi.UDP_SPORT_BASE | (int) ((hash >>> 32) & VeerAbi.UDP_SPORT_MASK);
  }

  /** The outer IPv6 flow label the director writes for this hash. */
  public static int flowLabel(long hash) {
    return (int) ((hash >>> 44) & 0xfffff);
  }

  static long littleEndianLong(byte[] b, int offset) {
    return Longs.fromBytes(
        b[offset + 7],
        b[offset + 6],
        b[offset + 5],
        b[offset + 4],
        b[offset + 3],
        b[offset + 2],
        b[offset + 1],
        b[offset]);
  }
}
