package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A service as the director matches it: VIP, destination port and IP protocol (struct
 * veer_service_key). Port 0 with protocol 0 is the marker entry that says "this address is a VIP".
 */
public record ServiceKey(InetAddress vip, int port, int protocol) {
  public static final int SIZE = 20;
  public static final int TCP = 6;
  public static final int UDP = 17;

  public ServiceKey {
    checkArgument(port >= 0 && port <= 65535, "port must be 0..65535, got %s", port);
    checkArgument(
        protocol == TCP || protocol == UDP || (protocol == 0 && port == 0),
        "protocol must be TCP (6) or UDP (17), got %s",
        protocol);
  }

  public static ServiceKey tcp(InetAddress vip, int port) {
    return new ServiceKey(vip, port, TCP);
  }

  static ServiceKey vipMarker(InetAddress vip) {
    return new ServiceKey(vip, 0, 0);
  }

  public IpFamily family() {
    return IpFamily.of(vip);
  }

  /** A key as {@link #encode()} writes it. */
  static ServiceKey decode(byte[] bytes, int offset) {
    IpFamily family = IpFamily.ofCode(bytes[offset + 19]);
    int port = ((bytes[offset + 16] & 0xff) << 8) | (bytes[offset + 17] & 0xff);
    return new ServiceKey(family.fromMapBytes(bytes, offset), port, bytes[offset + 18] & 0xff);
  }

  byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE);
    b.put(IpFamily.toMapBytes(vip));
    b.order(ByteOrder.BIG_ENDIAN).putShort((short) port);
    b.put((byte) protocol).put((byte) family().code());
    return b.array();
  }

  @Override
  public String toString() {
    String proto = protocol == TCP ? "tcp" : protocol == UDP ? "udp" : "vip";
    String host = vip.getHostAddress();
    return (vip instanceof java.net.Inet6Address ? "[" + host + "]" : host)
        + ":"
        + port
        + "/"
        + proto;
  }
}
