package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import com.google.common.primitives.UnsignedBytes;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Compares every row of the builder's tables with a straightforward, independent rendering of GLB's
 * rendezvous hashing: hash byte strings as GLB lays them out, read each score as the hexadecimal of
 * its output bytes (GLB's sort key, as in its Python reference), fully sort, then apply the state
 * rules literally.
 */
class KnownAnswerTest {
  private static final int ROW_BITS = 12;

  static Stream<Arguments> configurations() {
    List<Arguments> out = new ArrayList<>();
    for (boolean ipv6 : new boolean[] {false, true}) {
      for (int hops = 1; hops <= 4; hops++) {
        out.add(Arguments.of(ipv6, hops, false));
        out.add(Arguments.of(ipv6, hops, true));
      }
    }
    return out.stream();
  }

  @ParameterizedTest(name = "ipv6={0} hops={1} mixedStates={2}")
  @MethodSource("configurations")
  void everyRowMatchesTheReference(boolean ipv6, int hopCount, boolean mixedStates) {
    Random random = new Random(ipv6 ? 6_000 + hopCount : 4_000 + hopCount);
    byte[] seed = TestBackends.seed(random);
    List<Backend> backends = ipv6 ? TestBackends.ipv6(random, 10) : TestBackends.ipv4(random, 10);
    if (mixedStates) {
      BackendState[] states = BackendState.values();
      backends = new ArrayList<>(backends);
      for (int i = 0; i < backends.size(); i++) {
        backends.set(i, backends.get(i).withState(states[random.nextInt(states.length)]));
      }
    }
    TableSpec spec = TableSpec.builder().seed(seed).rowBits(ROW_BITS).hopCount(hopCount).build();

    RendezvousTable table = RendezvousTableBuilder.build(spec, backends);

    int[][] expected = reference(seed, 1 << ROW_BITS, hopCount, backends);
    assertThat(table.rowCount()).isEqualTo(1 << ROW_BITS);
    assertThat(table.hopCount()).isEqualTo(hopCount);
    for (int row = 0; row < table.rowCount(); row++) {
      assertThat(table.hops(row)).as("row %s", row).containsExactly(expected[row]);
      assertThat(table.primary(row)).isEqualTo(expected[row][0]);
    }
  }

  @ParameterizedTest(name = "ipv6={0}")
  @MethodSource("families")
  void rowHasherMatchesTheReferenceByteLayout(boolean ipv6) {
    Random random = new Random(ipv6 ? 66 : 44);
    byte[] seed = TestBackends.seed(random);
    HashFunction sip = referenceSipHash(seed);
    RowHasher hasher = new RowHasher(seed);
    List<Backend> backends = ipv6 ? TestBackends.ipv6(random, 5) : TestBackends.ipv4(random, 5);
    for (int row : new int[] {0, 1, 255, 256, 65_535, (1 << 20) - 1}) {
      byte[] rowSeed = referenceRowSeed(sip, row);
      assertThat(hasher.rowSeed(row))
          .isEqualTo(ByteBuffer.wrap(rowSeed).order(ByteOrder.LITTLE_ENDIAN).getLong());
      for (Backend b : backends) {
        long score = hasher.score(row, b.address());
        assertThat(score).isEqualTo(hasher.score(hasher.rowSeed(row), b.addressBytes()));
        assertThat(new BigInteger(Long.toUnsignedString(RowHasher.rankKey(score))))
            .isEqualTo(referenceKey(sip, rowSeed, b.addressBytes()));
      }
    }
  }

  static Stream<Boolean> families() {
    return Stream.of(false, true);
  }

  // ---- the independent reference ----

  private static HashFunction referenceSipHash(byte[] seed) {
    ByteBuffer key = ByteBuffer.wrap(seed).order(ByteOrder.LITTLE_ENDIAN);
    return Hashing.sipHash24(key.getLong(0), key.getLong(8));
  }

  /** GLB's row_hash: SipHash output bytes of the big-endian row index. */
  private static byte[] referenceRowSeed(HashFunction sip, int row) {
    return sip.hashBytes(ByteBuffer.allocate(4).order(ByteOrder.BIG_ENDIAN).putInt(row).array())
        .asBytes();
  }

  /** GLB's sort key: the score's output bytes read as one big-endian unsigned number. */
  private static BigInteger referenceKey(HashFunction sip, byte[] rowSeed, byte[] address) {
    byte[] message = new byte[rowSeed.length + address.length];
    System.arraycopy(rowSeed, 0, message, 0, rowSeed.length);
    System.arraycopy(address, 0, message, rowSeed.length, address.length);
    return new BigInteger(sip.hashBytes(message).toString(), 16);
  }

  private static int tier(BackendState state) {
    return switch (state) {
      case ACTIVE, FILLING -> 0;
      case DRAINING -> 1;
      case INACTIVE -> 2;
    };
  }

  static int[][] reference(byte[] seed, int rows, int hopCount, List<Backend> backends) {
    HashFunction sip = referenceSipHash(seed);
    int n = backends.size();
    int k = Math.min(hopCount, n);
    Comparator<byte[]> lex = UnsignedBytes.lexicographicalComparator();
    int[][] out = new int[rows][];
    for (int row = 0; row < rows; row++) {
      byte[] rowSeed = referenceRowSeed(sip, row);
      BigInteger[] keys = new BigInteger[n];
      List<Integer> ranking = new ArrayList<>();
      for (int b = 0; b < n; b++) {
        keys[b] = referenceKey(sip, rowSeed, backends.get(b).addressBytes());
        ranking.add(b);
      }
      ranking.sort(
          Comparator.<Integer, BigInteger>comparing(b -> keys[b])
              .thenComparing(b -> backends.get(b).addressBytes(), lex));
      List<Integer> hops = new ArrayList<>(ranking.subList(0, k));
      hops.sort(Comparator.comparingInt(b -> tier(backends.get(b).state()))); // List.sort is stable
      if (!hops.isEmpty() && tier(backends.get(hops.get(0)).state()) != 0) {
        ranking.stream()
            .filter(b -> tier(backends.get(b).state()) == 0)
            .findFirst()
            .ifPresent(
                eligible -> {
                  hops.remove(hops.size() - 1);
                  hops.add(0, eligible);
                });
      }
      out[row] = hops.stream().mapToInt(Integer::intValue).toArray();
    }
    return out;
  }
}
