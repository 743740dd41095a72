package dev.veer.testbed.packet;

import static dev.veer.testbed.wire.Packets.ETHERTYPE_IPV4;
import static dev.veer.testbed.wire.Packets.ETHERTYPE_IPV6;

import dev.veer.testbed.lab.PacketLab;
import dev.veer.testbed.wire.MacAddress;
import dev.veer.testbed.wire.Packets;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.util.Arrays;

/** Frames as the lab's router would hand them to a director or proxy. */
final class Frames {
  static final MacAddress ROUTER_MAC = PacketLab.CLIENT_MAC;
  static final int XDP_ABORTED = 0;
  static final int XDP_DROP = 1;
  static final int XDP_PASS = 2;
  static final int XDP_TX = 3;

  private Frames() {}

  static int etherType(InetAddress address) {
    return address instanceof Inet4Address ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
  }

  /** An IP packet in a frame from the router to the lab host. */
  static byte[] frame(byte[] ip) {
    return Packets.ethernet(
        PacketLab.LAB_MAC, ROUTER_MAC, (ip[0] >> 4) == 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6, ip);
  }

  static byte[] tcpPacket(
      InetAddress src, int srcPort, InetAddress dst, int dstPort, int flags, byte[] payload) {
    return Packets.ip(
        src,
        dst,
        Packets.PROTO_TCP,
        Packets.tcp(
            src, dst, srcPort, dstPort, flags, 1000, flags == Packets.TCP_SYN ? 0 : 2000, payload));
  }

  static byte[] syn(InetAddress src, int srcPort, InetAddress dst, int dstPort) {
    return tcpPacket(src, srcPort, dst, dstPort, Packets.TCP_SYN, new byte[0]);
  }

  static byte[] ack(InetAddress src, int srcPort, InetAddress dst, int dstPort, String payload) {
    return tcpPacket(
        src, srcPort, dst, dstPort, Packets.TCP_ACK | Packets.TCP_PSH, payload.getBytes());
  }

  static byte[] l3(byte[] frame) {
    return Arrays.copyOfRange(frame, 14, frame.length);
  }
}
