package dev.veer.bpf.dataplane;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.hash.Hashing;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SipHashTest {
  @Test
  void withTwoAndFourRoundsItIsSipHash24AsGuavaComputesIt() {
    Random random = new Random(7);
    for (int i = 0; i < 2000; i++) {
      long k0 = random.nextLong();
      long k1 = random.nextLong();
      byte[] message = new byte[random.nextInt(40)];
      random.nextBytes(message);
      assertThat(new SipHash(k0, k1, 2, 4).hash(message))
          .isEqualTo(Hashing.sipHash24(k0, k1).hashBytes(message).asLong());
    }
  }

  @Test
  void matchesThePapersTestVector() {
    // SipHash-2-4, key 00..0f, message 00..0e (Aumasson and Bernstein, appendix A).
    byte[] key = HexFormat.of().parseHex("000102030405060708090a0b0c0d0e0f");
    byte[] message = HexFormat.of().parseHex("000102030405060708090a0b0c0d0e");
    SipHash h =
        new SipHash(FlowHash.littleEndianLong(key, 0), FlowHash.littleEndianLong(key, 8), 2, 4);
    assertThat(h.hash(message)).isEqualTo(0xa129ca6149be45e5L);
  }

  @Test
  void flowHashIsSipHash13AndDiffersFromSipHash24() {
    byte[] key = "0123456789abcdef".getBytes();
    long k0 = FlowHash.littleEndianLong(key, 0);
    long k1 = FlowHash.littleEndianLong(key, 8);
    byte[] message = {(byte) 198, 51, 100, 7, (byte) 0x9c, 0x40};
    long flow =
        new FlowHash(key)
            .hash(
                com.google.common.net.InetAddresses.forString("198.51.100.7"),
                40000,
                ServiceOptions.HashFields.SOURCE_IP_AND_PORT);
    assertThat(flow).isEqualTo(new SipHash(k0, k1, 1, 3).hash(message));
    assertThat(flow).isNotEqualTo(new SipHash(k0, k1, 2, 4).hash(message));
  }
}
