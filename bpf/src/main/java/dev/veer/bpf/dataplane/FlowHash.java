package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import com.google.common.primitives.Longs;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.ServiceOptions.HashFields;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.util.Optional;

/**
 * The directors' flow hash, computed in Java: SipHash-1-3 under the cluster's key over the client's
 * address (and port, big-endian, when the service hashes it); or, in RX-hash mode, for services
 * that hash the port, the NICs' Toeplitz hash of the flow's addresses and ports in both halves.
 * Lets user space predict the row, outer source port and flow label of any flow.
 */
public final class FlowHash {
  private final SipHash siphash;
  private final Optional<Toeplitz> nic;

  /** The keyed hash under the cluster's 16-byte key. */
  public FlowHash(byte[] key) {
    this(key, Optional.empty());
  }

  private FlowHash(byte[] key, Optional<Toeplitz> nic) {
    checkArgument(key.length == 16, "the flow hash key has 16 bytes, got %s", key.length);
    siphash = new SipHash(littleEndianLong(key, 0), littleEndianLong(key, 8), 1, 3);
    this.nic = nic;
  }

  /**
   * The cluster's flow hash: keyed under {@code key}, or with {@code nicKey} (40 bytes; empty for
   * none) the NICs' hash wherever the directors take it (RX-hash mode).
   */
  public static FlowHash of(byte[] key, byte[] nicKey) {
    return new FlowHash(
        key, nicKey.length == 0 ? Optional.empty() : Optional.of(new Toeplitz(nicKey)));
  }

  /**
   * The flow hash of a flow from {@code source} to the service at {@code destination} as every
   * director computes it.
   */
  public long hash(
      InetAddress source,
      int sourcePort,
      InetAddress destination,
      int destinationPort,
      HashFields fields) {
    if (nic.isEmpty() || fields == HashFields.SOURCE_IP) {
      return keyed(source, sourcePort, fields);
    }
    byte[] from = source.getAddress();
    byte[] to = destination.getAddress();
    checkArgument(
        from.length == to.length, "%s and %s are of different families", source, destination);
    int h =
        nic.get()
            .hash(
                ByteBuffer.allocate(2 * from.length + 4)
                    .put(from)
                    .put(to)
                    .putShort((short) sourcePort)
                    .putShort((short) destinationPort)
                    .array());
    return (long) h << 32 | (h & 0xffffffffL);
  }

  /** The keyed hash, which does not depend on the destination; not for RX-hash mode. */
  public long hash(InetAddress source, int sourcePort, HashFields fields) {
    checkState(
        nic.isEmpty() || fields == HashFields.SOURCE_IP,
        "in RX-hash mode a flow's hash depends on its destination too");
    return keyed(source, sourcePort, fields);
  }

  private long keyed(InetAddress source, int sourcePort, HashFields fields) {
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
