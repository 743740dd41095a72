package dev.veer.testbed.wire;

import java.net.Inet4Address;

/** The fields of an IPv4 header that tests vary; the rest is computed. */
public record Ipv4Header(
    Inet4Address source,
    Inet4Address destination,
    int protocol,
    int ttl,
    int tos,
    int id,
    int flagsAndOffset,
    byte[] options) {

  public Ipv4Header {
    options = options.clone();
  }

  public static Ipv4Header of(Inet4Address source, Inet4Address destination, int protocol) {
    return new Ipv4Header(source, destination, protocol, 64, 0, 0, Packets.IPV4_DF, new byte[0]);
  }

  public Ipv4Header withFlagsAndOffset(int value) {
    return new Ipv4Header(source, destination, protocol, ttl, tos, id, value, options);
  }

  public Ipv4Header withOptions(byte[] value) {
    return new Ipv4Header(source, destination, protocol, ttl, tos, id, flagsAndOffset, value);
  }

  @Override
  public byte[] options() {
    return options.clone();
  }
}
