package dev.veer.coordinator.admin;

import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** IP address literals as the admin API takes them and the stored state keeps them (bytes). */
public final class Addresses {
  private Addresses() {}

  /**
   * Parses an IPv4 or IPv6 literal that can be a VIP or a backend: unicast, not loopback,
   * link-local or unspecified. {@code what} names the field in the error.
   */
  public static InetAddress parseUnicast(String literal, String what) {
    if (literal.isEmpty()) {
      throw AdminException.invalid("%s is required (an IPv4 or IPv6 address)", what);
    }
    if (!InetAddresses.isInetAddress(literal)) {
      throw AdminException.invalid(
          "%s '%s' is not an IPv4 or IPv6 address literal (host names are not" + " accepted)",
          what, literal);
    }
    InetAddress address = InetAddresses.forString(literal);
    if (address.isAnyLocalAddress()
        || address.isLoopbackAddress()
        || address.isMulticastAddress()
        || address.isLinkLocalAddress()) {
      throw AdminException.invalid(
          "%s %s is not a usable unicast address (unspecified, loopback, multicast"
              + " and link-local addresses are refused)",
          what, literal);
    }
    return address;
  }

  /** Whether {@code literal} is an IPv4 or IPv6 address literal. */
  public static boolean isLiteral(String literal) {
    return InetAddresses.isInetAddress(literal);
  }

  public static ByteString bytes(InetAddress address) {
    return ByteString.copyFrom(address.getAddress());
  }

  public static InetAddress fromBytes(ByteString bytes) {
    try {
      return InetAddress.getByAddress(bytes.toByteArray());
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException(
          "an address must be 4 or 16 bytes, got " + bytes.size(), e);
    }
  }

  /** The canonical literal (RFC 5952 for IPv6). */
  public static String literal(ByteString bytes) {
    return InetAddresses.toAddrString(fromBytes(bytes));
  }
}
