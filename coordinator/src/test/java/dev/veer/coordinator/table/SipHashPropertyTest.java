package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The hand-written SipHash-2-4 of {@link RowHasher} against Guava's, over GLB's byte layouts, for
 * random keys, rows and addresses of both families. The seed is printed; {@code
 * -Dveer.table.seed=N} replays it.
 */
class SipHashPropertyTest {
  private static final long SEED = Long.getLong("veer.table.seed", System.nanoTime());

  @Test
  void specialisedHashEqualsGuava() {
    System.out.println("SipHashPropertyTest seed: " + SEED);
    Random random = new Random(SEED);
    for (int trial = 0; trial < 500; trial++) {
      byte[] key = TestBackends.seed(random);
      ByteBuffer keyWords = ByteBuffer.wrap(key).order(ByteOrder.LITTLE_ENDIAN);
      HashFunction guava = Hashing.sipHash24(keyWords.getLong(0), keyWords.getLong(8));
      RowHasher hasher = new RowHasher(key);

      int row = trial < 2 ? trial * -1 : random.nextInt();
      long rowSeed = guava.hashBytes(ByteBuffer.allocate(4).putInt(row).array()).asLong();
      assertThat(hasher.rowSeed(row)).as("seed %s, row %s", SEED, row).isEqualTo(rowSeed);

      long[] state = new long[4];
      hasher.absorbRowSeed(rowSeed, state);
      for (int i = 0; i < 20; i++) {
        byte[] address = new byte[random.nextBoolean() ? 4 : 16];
        random.nextBytes(address);
        byte[] message =
            ByteBuffer.allocate(8 + address.length)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putLong(rowSeed)
                .put(address)
                .array();
        long expected = guava.hashBytes(message).asLong();

        assertThat(hasher.score(rowSeed, address)).as("seed %s", SEED).isEqualTo(expected);
        long fast =
            address.length == 4
                ? RowHasher.finalBlock(
                    state[0], state[1], state[2], state[3], RowHasher.lastBlockV4(address))
                : RowHasher.scoreV6(
                    state[0],
                    state[1],
                    state[2],
                    state[3],
                    RowHasher.littleEndianLong(address, 0),
                    RowHasher.littleEndianLong(address, 8));
        assertThat(fast).as("seed %s", SEED).isEqualTo(expected);
      }
    }
  }
}
