package dev.veer.bpf.dataplane;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.io.BaseEncoding;
import com.google.common.net.InetAddresses;
import dev.veer.bpf.dataplane.ServiceOptions.HashFields;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/**
 * The NICs' Toeplitz hash against the RSS specification's verification examples, and the flow hash
 * of RX-hash mode built on it.
 */
class ToeplitzTest {
  static final byte[] KEY =
      BaseEncoding.base16()
          .decode(
              "6D5A56DA255B0EC24167253D43A38FB0D0CA2BCBAE7B30B477CB2DA38030F20C6A42B73BBEAC01FA");
  static final Toeplitz TOEPLITZ = new Toeplitz(KEY);

  static byte[] tuple(String source, int sourcePort, String destination, int destinationPort) {
    byte[] from = InetAddresses.forString(source).getAddress();
    byte[] to = InetAddresses.forString(destination).getAddress();
    ByteBuffer b = ByteBuffer.allocate(2 * from.length + (sourcePort < 0 ? 0 : 4));
    b.put(from).put(to);
    if (sourcePort >= 0) {
      b.putShort((short) sourcePort).putShort((short) destinationPort);
    }
    return b.array();
  }

  @Test
  void ipv4ExamplesOfTheSpecification() {
    assertThat(TOEPLITZ.hash(tuple("66.9.149.187", -1, "161.142.100.80", 0))).isEqualTo(0x323e8fc2);
    assertThat(TOEPLITZ.hash(tuple("66.9.149.187", 2794, "161.142.100.80", 1766)))
        .isEqualTo(0x51ccc178);
    assertThat(TOEPLITZ.hash(tuple("199.92.111.2", 14230, "65.69.140.83", 4739)))
        .isEqualTo(0xc626b0ea);
  }

  @Test
  void ipv6ExamplesOfTheSpecification() {
    assertThat(TOEPLITZ.hash(tuple("3ffe:2501:200:1fff::7", -1, "3ffe:2501:200:3::1", 0)))
        .isEqualTo(0x2cc18cd5);
    assertThat(TOEPLITZ.hash(tuple("3ffe:2501:200:1fff::7", 2794, "3ffe:2501:200:3::1", 1766)))
        .isEqualTo(0x40207d3d);
  }

  @Test
  void rxHashModeHashesTheWholeTupleForServicesThatHashThePort() {
    byte[] sipKey = "0123456789abcdef".getBytes();
    FlowHash nic = FlowHash.of(sipKey, KEY);
    InetAddress client = InetAddresses.forString("66.9.149.187");
    InetAddress vip = InetAddresses.forString("161.142.100.80");
    long h = nic.hash(client, 2794, vip, 1766, HashFields.SOURCE_IP_AND_PORT);
    assertThat(h).isEqualTo(0x51ccc178L << 32 | 0x51ccc178L);
    assertThat(FlowHash.udpSourcePort(h)).isEqualTo(0xc000 | (0x51ccc178 & 0x3fff));
    // A service hashing the address alone has no NIC hash to take: the keyed one, as directors do.
    assertThat(nic.hash(client, 2794, vip, 1766, HashFields.SOURCE_IP))
        .isEqualTo(new FlowHash(sipKey).hash(client, 0, HashFields.SOURCE_IP));
    assertThatThrownBy(() -> nic.hash(client, 2794, HashFields.SOURCE_IP_AND_PORT))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("destination");
  }

  @Test
  void keysOfAnotherLengthAreRefused() {
    assertThatThrownBy(() -> new Toeplitz(new byte[16]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("40 bytes");
  }
}
