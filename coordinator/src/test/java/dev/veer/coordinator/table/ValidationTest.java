package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ValidationTest {
  private static final byte[] SEED = new byte[16];

  @ParameterizedTest
  @ValueSource(ints = {-1, 0, 3, 21, 32})
  void rowBitsOutOfRange(int rowBits) {
    assertThatThrownBy(() -> TableSpec.of(SEED, rowBits, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("row bits must be 4..20")
        .hasMessageContaining("got " + rowBits);
  }

  @ParameterizedTest
  @ValueSource(ints = {-1, 0, 5})
  void hopCountOutOfRange(int hops) {
    assertThatThrownBy(() -> TableSpec.builder().seed(SEED).hopCount(hops).build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("hopCount must be in [1, 4]")
        .hasMessageContaining("got " + hops);
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 8, 15, 17, 32})
  void seedNotSixteenBytes(int length) {
    assertThatThrownBy(() -> TableSpec.of(new byte[length]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("exactly 16 bytes")
        .hasMessageContaining("got " + length + " bytes");
    assertThatThrownBy(() -> new RowHasher(new byte[length]))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("exactly 16 bytes");
  }

  @Test
  void seedMissing() {
    assertThatThrownBy(() -> TableSpec.builder().build())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("seed not set");
  }

  @Test
  void mixedFamilies() {
    List<Backend> mixed =
        List.of(
            Backend.of("10.0.0.1", BackendState.ACTIVE),
            Backend.of("10.0.0.2", BackendState.ACTIVE),
            Backend.of("2001:db8::1", BackendState.ACTIVE));
    assertThatThrownBy(() -> RendezvousTableBuilder.build(TableSpec.of(SEED), mixed))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("same address family")
        .hasMessageContaining("backend #0 is IPv4 (10.0.0.1)")
        .hasMessageContaining("backend #2 is IPv6 (2001:db8::1)");
  }

  @Test
  void duplicateAddressesEvenWithDifferentStates() {
    List<Backend> dup =
        List.of(
            Backend.of("2001:db8::1", BackendState.ACTIVE),
            Backend.of("2001:db8::2", BackendState.ACTIVE),
            Backend.of("2001:db8:0::1", BackendState.DRAINING));
    assertThatThrownBy(() -> RendezvousTableBuilder.build(TableSpec.of(SEED), dup))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("duplicate backend address 2001:db8::1 (backends #0 and #2)");
  }

  @Test
  void notAnAddressLiteral() {
    assertThatThrownBy(() -> Backend.of("proxy1.example", BackendState.ACTIVE))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("proxy1.example");
  }
}
