package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.hash.Hashing;
import org.junit.jupiter.api.Test;

/** Pins the SipHash-2-4 key byte order against the SipHash paper's test vector. */
class SipHashVectorTest {
  /** SipHash paper, Appendix A: key 00..0f, message 00..0e (15 bytes). */
  private static final long PAPER_VECTOR = 0xa129ca6149be45e5L;

  private static byte[] sequence(int length) {
    byte[] out = new byte[length];
    for (int i = 0; i < length; i++) {
      out[i] = (byte) i;
    }
    return out;
  }

  @Test
  void guavaSipHashWithLittleEndianKeyWordsMatchesThePaper() {
    long k0 = 0x0706050403020100L; // key bytes 0..7, little-endian
    long k1 = 0x0f0e0d0c0b0a0908L; // key bytes 8..15, little-endian
    assertThat(Hashing.sipHash24(k0, k1).hashBytes(sequence(15)).asLong()).isEqualTo(PAPER_VECTOR);
  }

  @Test
  void rowHasherKeysSipHashFromTheSeedBytesTheSameWay() {
    RowHasher hasher = new RowHasher(sequence(16));
    assertThat(hasher.function().hashBytes(sequence(15)).asLong()).isEqualTo(PAPER_VECTOR);
    // The paper's output bytes are the little-endian encoding of the value, as Guava's asBytes().
    assertThat(hasher.function().hashBytes(sequence(15)).toString()).isEqualTo("e545be4961ca29a1");
  }
}
