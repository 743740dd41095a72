package dev.veer.bpf.dataplane;

import dev.veer.bpf.abi.VeerAbi;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Arrays;

/** Address family and the 16-byte address form the maps use (IPv4 in the first 4 bytes). */
public enum IpFamily {
  IPV4(VeerAbi.FAMILY_IPV4, 4),
  IPV6(VeerAbi.FAMILY_IPV6, 16);

  private final int code;
  private final int length;

  IpFamily(int code, int length) {
    this.code = code;
    this.length = length;
  }

  /** The family code stored in map keys and values. */
  public int code() {
    return code;
  }

  /** Address length in bytes. */
  public int length() {
    return length;
  }

  public static IpFamily of(InetAddress address) {
    return address instanceof Inet4Address ? IPV4 : IPV6;
  }

  public static IpFamily ofCode(int code) {
    for (IpFamily f : values()) {
      if (f.code == code) {
        return f;
      }
    }
    throw new IllegalArgumentException("unknown address family code " + code);
  }

  /** The 16-byte map form of an address. */
  public static byte[] toMapBytes(InetAddress address) {
    return Arrays.copyOf(address.getAddress(), 16);
  }

  /** Reads a 16-byte map address of this family. */
  public InetAddress fromMapBytes(byte[] bytes, int offset) {
    try {
      return InetAddress.getByAddress(Arrays.copyOfRange(bytes, offset, offset + length));
    } catch (UnknownHostException e) {
      throw new AssertionError("a 4- or 16-byte address is always valid", e);
    }
  }
}
