package dev.veer.proxy.dataplane;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.net.InetAddresses;
import org.junit.jupiter.api.Test;

/** Addresses as /proc/net/tcp{,6} print them: 32-bit words in host (little-endian) order. */
class SocketTableTest {
  @Test
  void readsIpv4Ipv6AndV4MappedAddresses() throws Exception {
    assertThat(SocketTable.address("0A7100CB")).isEqualTo(InetAddresses.forString("203.0.113.10"));
    assertThat(SocketTable.address("B80D0120000000000000000010000000"))
        .isEqualTo(InetAddresses.forString("2001:db8::10"));
    // ::ffff:198.51.100.2 on a dual-stack socket: given as IPv4, as its packets carry it.
    assertThat(SocketTable.address("0000000000000000FFFF0000026433C6"))
        .isEqualTo(InetAddresses.forString("198.51.100.2"));
  }
}
