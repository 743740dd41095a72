package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import dev.veer.bpf.abi.VeerAbi;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Optional;

/**
 * A director's data-plane settings (struct veer_director_config): the secret 16-byte SipHash key
 * for flow hashing and the outer source addresses.
 */
public record DirectorConfig(
    byte[] hashKey, Optional<Inet4Address> source4, Optional<Inet6Address> source6, int guePort) {
  static final int SIZE = 40;

  public DirectorConfig {
    checkArgument(hashKey.length == 16, "the flow hash key has 16 bytes, got %s", hashKey.length);
    checkArgument(
        source4.isPresent() || source6.isPresent(),
        "a director needs an IPv4 or IPv6 source address");
    checkArgument(guePort > 0 && guePort <= 65535, "GUE port must be 1..65535, got %s", guePort);
    hashKey = hashKey.clone();
  }

  public static DirectorConfig of(byte[] hashKey, Inet4Address source4, Inet6Address source6) {
    return new DirectorConfig(
        hashKey,
        Optional.ofNullable(source4),
        Optional.ofNullable(source6),
        VeerAbi.GUE_PORT_DEFAULT);
  }

  @Override
  public byte[] hashKey() {
    return hashKey.clone();
  }

  /** A configuration as {@link #encode()} writes it; empty if none was written (zero key). */
  static Optional<DirectorConfig> decode(byte[] value) {
    ByteBuffer b = ByteBuffer.wrap(value);
    byte[] key = new byte[16];
    b.get(key);
    if (Arrays.equals(key, new byte[16])) {
      return Optional.empty();
    }
    byte[] a4 = new byte[4];
    byte[] a6 = new byte[16];
    b.get(a4).get(a6);
    int port = b.order(ByteOrder.BIG_ENDIAN).getShort() & 0xffff;
    try {
      Optional<Inet4Address> source4 =
          Arrays.equals(a4, new byte[4])
              ? Optional.empty()
              : Optional.of((Inet4Address) InetAddress.getByAddress(a4));
      Optional<Inet6Address> source6 =
          Arrays.equals(a6, new byte[16])
              ? Optional.empty()
              : Optional.of((Inet6Address) InetAddress.getByAddress(a6));
      return Optional.of(new DirectorConfig(key, source4, source6, port));
    } catch (java.net.UnknownHostException e) {
      throw new IllegalStateException(e);
    }
  }

  byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE);
    b.put(hashKey); // two little-endian u64 halves: the key bytes in order
    b.put(source4.map(Inet4Address::getAddress).orElse(new byte[4]));
    b.put(source6.map(Inet6Address::getAddress).orElse(new byte[16]));
    b.order(ByteOrder.BIG_ENDIAN).putShort((short) guePort);
    return b.array();
  }
}
