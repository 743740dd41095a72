package dev.veer.testbed.wire;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.primitives.Bytes;
import dev.veer.bpf.abi.VeerAbi;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * Builds packets byte by byte, layer by layer, from the inside out: each method takes the payload
 * and returns the layer with its header in front. Used by the packet tests, the benchmarks and
 * probes that must look exactly like a director's output. All multi-byte fields are written in
 * network byte order.
 */
public final class Packets {
  public static final int ETHERTYPE_IPV4 = 0x0800;
  public static final int ETHERTYPE_IPV6 = 0x86dd;
  public static final int ETHERTYPE_ARP = 0x0806;
  public static final int ETHERTYPE_VLAN = 0x8100;
  public static final int PROTO_ICMP = 1;
  public static final int PROTO_IPIP = 4;
  public static final int PROTO_TCP = 6;
  public static final int PROTO_UDP = 17;
  public static final int PROTO_IPV6 = 41;
  public static final int PROTO_ICMPV6 = 58;
  public static final int TCP_FIN = 0x01;
  public static final int TCP_SYN = 0x02;
  public static final int TCP_RST = 0x04;
  public static final int TCP_PSH = 0x08;
  public static final int TCP_ACK = 0x10;
  public static final int IPV4_DF = 0x4000;
  public static final int IPV4_MF = 0x2000;

  private Packets() {}

  /** An Ethernet frame; {@code vlanTci} below zero means untagged. */
  public static byte[] ethernet(
      MacAddress dst, MacAddress src, int vlanTci, int etherType, byte[] payload) {
    boolean tagged = vlanTci >= 0;
    ByteBuffer b = ByteBuffer.allocate(14 + (tagged ? 4 : 0) + payload.length);
    b.put(dst.bytes()).put(src.bytes());
    if (tagged) {
      b.putShort((short) ETHERTYPE_VLAN).putShort((short) vlanTci);
    }
    b.putShort((short) etherType).put(payload);
    return b.array();
  }

  public static byte[] ethernet(MacAddress dst, MacAddress src, int etherType, byte[] payload) {
    return ethernet(dst, src, -1, etherType, payload);
  }

  /** An IPv4 packet with a correct header checksum. */
  public static byte[] ipv4(Ipv4Header h, byte[] payload) {
    checkArgument(h.options().length % 4 == 0, "IPv4 options must be padded to 4 bytes");
    int ihl = 20 + h.options().length;
    ByteBuffer b = ByteBuffer.allocate(ihl + payload.length);
    b.put((byte) (0x40 | (ihl / 4))).put((byte) h.tos()).putShort((short) (ihl + payload.length));
    b.putShort((short) h.id()).putShort((short) h.flagsAndOffset());
    b.put((byte) h.ttl()).put((byte) h.protocol()).putShort((short) 0);
    b.put(h.source().getAddress()).put(h.destination().getAddress()).put(h.options());
    b.putShort(10, (short) checksum(b.array(), 0, ihl, 0));
    b.put(payload);
    return b.array();
  }

  public static byte[] ipv4(Inet4Address src, Inet4Address dst, int protocol, byte[] payload) {
    return ipv4(Ipv4Header.of(src, dst, protocol), payload);
  }

  /** An IPv6 packet; {@code nextHeader} names the first header of the payload. */
  public static byte[] ipv6(
      Inet6Address src,
      Inet6Address dst,
      int nextHeader,
      int hopLimit,
      int flowLabel,
      byte[] payload) {
    ByteBuffer b = ByteBuffer.allocate(40 + payload.length);
    b.putInt(0x60000000 | (flowLabel & 0xfffff)).putShort((short) payload.length);
    b.put((byte) nextHeader)
        .put((byte) hopLimit)
        .put(src.getAddress())
        .put(dst.getAddress())
        .put(payload);
    return b.array();
  }

  public static byte[] ipv6(Inet6Address src, Inet6Address dst, int nextHeader, byte[] payload) {
    return ipv6(src, dst, nextHeader, 64, 0, payload);
  }

  /** An IPv6 extension header (hop-by-hop, routing, destination options) padded to 8 bytes. */
  public static byte[] ipv6Extension(int nextHeader, byte[] payload) {
    int len = 8 * Math.max(1, (payload.length + 2 + 7) / 8);
    ByteBuffer b = ByteBuffer.allocate(len);
    b.put((byte) nextHeader).put((byte) (len / 8 - 1));
    b.put(new byte[] {1, (byte) (len - 4)}); // PadN option covering the rest
    return Bytes.concat(b.array(), payload);
  }

  /** An IP packet of the family of {@code src}. */
  public static byte[] ip(InetAddress src, InetAddress dst, int protocol, byte[] payload) {
    if (src instanceof Inet4Address s4 && dst instanceof Inet4Address d4) {
      return ipv4(s4, d4, protocol, payload);
    }
    checkArgument(
        src instanceof Inet6Address && dst instanceof Inet6Address, "mixed address families");
    return ipv6((Inet6Address) src, (Inet6Address) dst, protocol, payload);
  }

  /** A TCP segment (20-byte header) with a correct checksum for the given addresses. */
  public static byte[] tcp(
      InetAddress src,
      InetAddress dst,
      int srcPort,
      int dstPort,
      int flags,
      long seq,
      long ack,
      byte[] payload) {
    ByteBuffer b = ByteBuffer.allocate(20 + payload.length);
    b.putShort((short) srcPort).putShort((short) dstPort).putInt((int) seq).putInt((int) ack);
    b.put((byte) 0x50)
        .put((byte) flags)
        .putShort((short) 65535)
        .putShort((short) 0)
        .putShort((short) 0);
    b.put(payload);
    b.putShort(16, (short) l4Checksum(src, dst, PROTO_TCP, b.array()));
    return b.array();
  }

  /**
   * A UDP datagram; the checksum is left zero when {@code withChecksum} is false (GUE does that).
   */
  public static byte[] udp(
      InetAddress src,
      InetAddress dst,
      int srcPort,
      int dstPort,
      byte[] payload,
      boolean withChecksum) {
    ByteBuffer b = ByteBuffer.allocate(8 + payload.length);
    b.putShort((short) srcPort).putShort((short) dstPort).putShort((short) (8 + payload.length));
    b.putShort((short) 0).put(payload);
    if (withChecksum) {
      int sum = l4Checksum(src, dst, PROTO_UDP, b.array());
      b.putShort(6, (short) (sum == 0 ? 0xffff : sum));
    }
    return b.array();
  }

  /** ICMP or ICMPv6 message with the given type, code, 4 rest-of-header bytes and quoted data. */
  public static byte[] icmp(
      InetAddress src, InetAddress dst, int type, int code, int rest, byte[] quoted) {
    ByteBuffer b = ByteBuffer.allocate(8 + quoted.length);
    b.put((byte) type).put((byte) code).putShort((short) 0).putInt(rest).put(quoted);
    int sum =
        src instanceof Inet4Address
            ? checksum(b.array(), 0, b.capacity(), 0)
            : l4Checksum(src, dst, PROTO_ICMPV6, b.array());
    b.putShort(2, (short) sum);
    return b.array();
  }

  /**
   * A GUE header with Veer's (GLB's) private data: type, next hop index, hop count and the hops
   * that follow the primary. IPv4 hops use GLB's type 0, IPv6 hops Veer's type {@link
   * VeerAbi#GUE_TYPE_IPV6_HOPS}.
   */
  public static byte[] gue(
      int innerProtocol, int nextHop, List<? extends InetAddress> hops, byte[] inner) {
    return gue(
        innerProtocol,
        nextHop,
        hops,
        !hops.isEmpty() && hops.getFirst() instanceof Inet6Address,
        inner);
  }

  /** As above, for an empty hop list too: the hop type follows the outer header's family. */
  public static byte[] gue(
      int innerProtocol,
      int nextHop,
      List<? extends InetAddress> hops,
      boolean ipv6Hops,
      byte[] inner) {
    int hopLen = ipv6Hops ? 16 : 4;
    int type = hopLen == 4 ? VeerAbi.GUE_TYPE_IPV4_HOPS : VeerAbi.GUE_TYPE_IPV6_HOPS;
    int privLen = VeerAbi.GUE_PRIV_LEN + hops.size() * hopLen;
    ByteBuffer b = ByteBuffer.allocate(VeerAbi.GUE_HEADER_LEN + privLen + inner.length);
    b.put((byte) (privLen / 4)).put((byte) innerProtocol).putShort((short) 0);
    b.putShort((short) type).put((byte) nextHop).put((byte) hops.size());
    for (InetAddress hop : hops) {
      checkArgument(hop.getAddress().length == hopLen, "all hops must share one address family");
      b.put(hop.getAddress());
    }
    b.put(inner);
    return b.array();
  }

  /** GUE's inner protocol number for an inner IP packet. */
  public static int gueProtocol(byte[] innerIp) {
    return (innerIp[0] >> 4) == 4 ? PROTO_IPIP : PROTO_IPV6;
  }

  /** The Internet checksum (RFC 1071) of {@code len} bytes, folded, complemented. */
  public static int checksum(byte[] data, int offset, int len, long initial) {
    long sum = initial;
    for (int i = 0; i + 1 < len; i += 2) {
      sum += ((data[offset + i] & 0xff) << 8) | (data[offset + i + 1] & 0xff);
    }
    if ((len & 1) != 0) {
      sum += (data[offset + len - 1] & 0xff) << 8;
    }
    while ((sum >> 16) != 0) {
      sum = (sum & 0xffff) + (sum >> 16);
    }
    return (int) (~sum & 0xffff);
  }

  private static int l4Checksum(InetAddress src, InetAddress dst, int protocol, byte[] segment) {
    long pseudo =
        sumWords(src.getAddress()) + sumWords(dst.getAddress()) + protocol + segment.length;
    return checksum(segment, 0, segment.length, pseudo);
  }

  private static long sumWords(byte[] bytes) {
    long sum = 0;
    for (int i = 0; i < bytes.length; i += 2) {
      sum += ((bytes[i] & 0xff) << 8) | (bytes[i + 1] & 0xff);
    }
    return sum;
  }
}
