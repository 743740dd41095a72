package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;
import static com.google.common.base.Preconditions.checkState;

import dev.veer.bpf.abi.VeerAbi;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * A proxy's data-plane settings (struct veer_proxy_config): the GUE port, the proxy's own addresses
 * (GUE to any other address is dropped, and forwarded packets leave from them), and what the flow
 * table keeps.
 */
public final class ProxyConfig {
  static final int SIZE = 40;

  private final int guePort;
  private final Optional<Inet4Address> address4;
  private final Optional<Inet6Address> address6;
  private final long flowsNetnsCookie;
  private final int openingSeconds;

  private ProxyConfig(Builder b) {
    this.guePort = b.guePort;
    this.address4 = b.address4;
    this.address6 = b.address6;
    this.flowsNetnsCookie = b.flowsNetnsCookie;
    this.openingSeconds = b.openingSeconds;
  }

  public static Builder builder() {
    return new Builder();
  }

  public int guePort() {
    return guePort;
  }

  public Optional<Inet4Address> address4() {
    return address4;
  }

  public Optional<Inet6Address> address6() {
    return address6;
  }

  /** The network namespace whose connections the flow table keeps; 0 keeps none. */
  public long flowsNetnsCookie() {
    return flowsNetnsCookie;
  }

  /**
   * How long a connection being opened stays in the flow table (see {@link
   * ProxyProgram#openingSeconds}).
   */
  public int openingSeconds() {
    return openingSeconds;
  }

  byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    b.put(0, ByteBuffer.allocate(2).putShort((short) guePort).array());
    b.putInt(4, openingSeconds);
    b.putLong(8, flowsNetnsCookie);
    b.put(16, address4.map(Inet4Address::getAddress).orElse(new byte[4]));
    b.put(20, address6.map(Inet6Address::getAddress).orElse(new byte[16]));
    return b.array();
  }

  @Override
  public String toString() {
    return "ProxyConfig{guePort="
        + guePort
        + ", address4="
        + address4.map(InetAddress::getHostAddress).orElse("-")
        + ", address6="
        + address6.map(InetAddress::getHostAddress).orElse("-")
        + ", flowsNetnsCookie="
        + flowsNetnsCookie
        + ", openingSeconds="
        + openingSeconds
        + "}";
  }

  public static final class Builder {
    private int guePort = VeerAbi.GUE_PORT_DEFAULT;
    private Optional<Inet4Address> address4 = Optional.empty();
    private Optional<Inet6Address> address6 = Optional.empty();
    private long flowsNetnsCookie;
    private int openingSeconds = ProxyProgram.openingSeconds(5);

    private Builder() {}

    public Builder guePort(int port) {
      checkArgument(port > 0 && port <= 65535, "GUE port must be 1..65535, got %s", port);
      this.guePort = port;
      return this;
    }

    /** One of the proxy's own addresses; at most one per family. */
    public Builder address(InetAddress address) {
      if (address instanceof Inet4Address a4) {
        checkArgument(
            address4.isEmpty() || address4.get().equals(a4),
            "a proxy has one IPv4 address in its data plane, got %s and %s",
            address4.orElse(null),
            a4);
        checkArgument(!a4.isAnyLocalAddress(), "0.0.0.0 cannot be a proxy's address");
        address4 = Optional.of(a4);
      } else {
        Inet6Address a6 = (Inet6Address) address;
        checkArgument(
            address6.isEmpty() || address6.get().equals(a6),
            "a proxy has one IPv6 address in its data plane, got %s and %s",
            address6.orElse(null),
            a6);
        checkArgument(!a6.isAnyLocalAddress(), ":: cannot be a proxy's address");
        address6 = Optional.of(a6);
      }
      return this;
    }

    public Builder addresses(Iterable<? extends InetAddress> addresses) {
      addresses.forEach(this::address);
      return this;
    }

    public Builder flowsNetnsCookie(long cookie) {
      this.flowsNetnsCookie = cookie;
      return this;
    }

    public Builder openingSeconds(int seconds) {
      checkArgument(seconds > 0, "a handshake must be kept for some seconds, got %s", seconds);
      this.openingSeconds = seconds;
      return this;
    }

    public ProxyConfig build() {
      checkState(
          address4.isPresent() || address6.isPresent(),
          "a proxy needs its own IPv4 or IPv6 address: GUE to any other address is dropped");
      return new ProxyConfig(this);
    }
  }
}
