package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import dev.veer.bpf.abi.VeerAbi;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * A director's data-plane settings (struct veer_director_config): the secret
 * 16-byte SipHash key for flow hashing and the outer source addresses.
 */
public record DirectorConfig(byte[] hashKey, Optional<Inet4Address> source4, Optional<Inet6Address> source6,
    int guePort) {
  static final int SIZE = 40;

  public DirectorConfig {
    checkArgument(hashKey.length == 16, "the flow hash key has 16 bytes, got %s", hashKey.length);
    checkArgument(source4.isPresent() || source6.isPresent(), "a director needs an IPv4 or IPv6 source address");
    checkArgument(guePort > 0 && guePort <= 65535, "GUE port must be 1..65535, got %s", guePort);
    hashKey = hashKey.clone();
  }

  public static DirectorConfig of(byte[] hashKey, Inet4Address source4, Inet6Address source6) {
    return new DirectorConfig(hashKey, Optional.ofNullable(source4), Optional.ofNullable(source6),
        VeerAbi.GUE_PORT_DEFAULT);
  }

  @Override
  public byte[] hashKey() {
    return hashKey.clone();
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
