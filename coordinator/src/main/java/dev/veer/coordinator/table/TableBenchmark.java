package dev.veer.coordinator.table;

import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;

/**
 * Times table builds and prints a markdown report: full builds against a naive GLB-style builder
 * measured in the same run, incremental builds, and the balance of primary rows. Not a test: run it
 * by hand (see docs/tables.md) on an otherwise idle machine.
 *
 * <p>Every figure is the median of several timed repetitions after untimed warm-up ones.
 */
public final class TableBenchmark {
  private static final int ROW_BITS = 16;
  private static final int HOPS = 2;
  private static final int[] SIZES = {16, 64, 256, 1024};
  private static final int INCREMENTAL_SIZE = 256;

  private final Random random = new Random(20_260_101);
  private final byte[] seed = new byte[TableSpec.SEED_BYTES];

  private TableBenchmark() {
    random.nextBytes(seed);
  }

  public static void main(String[] args) {
    new TableBenchmark().run();
  }

  private void run() {
    TableSpec spec = TableSpec.of(seed, ROW_BITS, HOPS);
    System.out.printf(
        "JVM: %s %s; %d cores available%n%n",
        System.getProperty("java.vm.name"),
        Runtime.version(),
        Runtime.getRuntime().availableProcessors());

    System.out.printf("Full build, 2^%d rows, %d hops (median ms)%n%n", ROW_BITS, HOPS);
    System.out.println("| backends | Veer | naive GLB-style (baseline) | x baseline |");
    System.out.println("|---:|---:|---:|---:|");
    double baseline256 = 0;
    for (int n : SIZES) {
      List<Backend> backends = backends(n);
      double fast = median(5, 9, () -> new TableBuilder().build(spec, backends, List.of()));
      int naiveRuns = n >= 1024 ? 3 : 5;
      double naive = median(2, naiveRuns, () -> naiveBuild(spec, backends));
      if (n == INCREMENTAL_SIZE) {
        baseline256 = naive;
      }
      System.out.printf("| %d | %.1f | %.1f | %.3f |%n", n, fast, naive, fast / naive);
    }

    System.out.printf(
        "%nIncremental build at %d backends, by a builder that built the table before (median"
            + " ms)%n%n",
        INCREMENTAL_SIZE);
    System.out.println("| change | Veer | x baseline (naive full build) |");
    System.out.println("|---|---:|---:|");
    for (Change change : Change.values()) {
      double ms = incremental(spec, change);
      System.out.printf("| %s | %.2f | %.4f |%n", change.description, ms, ms / baseline256);
    }

    System.out.printf("%nPrimary rows per backend, max/mean%n%n");
    System.out.println("| backends | rows | max/mean | min/mean |");
    System.out.println("|---:|---:|---:|---:|");
    for (int n : SIZES) {
      balance(TableSpec.of(seed, ROW_BITS, HOPS), n);
    }
    balance(TableSpec.of(seed, TableSpec.MAX_ROW_BITS, HOPS), 1024);
  }

  private enum Change {
    STATE("one backend drained or back to active (previous list retained)"),
    ADD("one backend added (previous list retained)"),
    REMOVE("one backend removed, its last generation dropped");

    final String description;

    Change(String description) {
      this.description = description;
    }
  }

  /** The median time of one build after {@code change}, the builder warm from the one before. */
  private double incremental(TableSpec spec, Change change) {
    List<Backend> pool = backends(INCREMENTAL_SIZE + 1);
    List<Backend> base = pool.subList(0, INCREMENTAL_SIZE);
    TableBuilder builder = new TableBuilder();
    builder.build(spec, base, List.of());
    List<Double> times = new ArrayList<>();
    int warmUp = 20;
    for (int i = 0; i < warmUp + 31; i++) {
      List<Backend> before;
      List<Backend> after;
      List<List<Backend>> previous;
      switch (change) {
        case STATE -> {
          List<Backend> drained = new ArrayList<>(base);
          int b = i / 2 % base.size();
          drained.set(b, base.get(b).withState(BackendState.DRAINING));
          before = i % 2 == 0 ? base : drained;
          after = i % 2 == 0 ? drained : base;
          previous = List.of(before);
        }
        case ADD -> {
          before = base;
          after = pool;
          previous = List.of(before);
        }
        default -> {
          before = pool;
          after = base;
          previous = List.of();
        }
      }
      if (change != Change.STATE) {
        builder.build(spec, before, List.of()); // untimed: the state the change starts from
      }
      long start = System.nanoTime();
      builder.build(spec, after, previous);
      if (i >= warmUp) {
        times.add((System.nanoTime() - start) / 1e6);
      }
    }
    times.sort(null);
    return times.get(times.size() / 2);
  }

  private void balance(TableSpec spec, int n) {
    RendezvousTable table = new TableBuilder().build(spec, backends(n), List.of());
    int max = 0;
    int min = Integer.MAX_VALUE;
    for (int rows : table.primaryRowCounts().values()) {
      max = Math.max(max, rows);
      min = Math.min(min, rows);
    }
    double mean = (double) spec.rowCount() / n;
    System.out.printf("| %d | 2^%d | %.3f | %.3f |%n", n, spec.rowBits(), max / mean, min / mean);
  }

  /**
   * Median milliseconds of {@code timed} runs of {@code build} after {@code warmUp} untimed ones.
   */
  public static double median(int warmUp, int timed, Supplier<Object> build) {
    for (int i = 0; i < warmUp; i++) {
      build.get();
    }
    double[] times = new double[timed];
    for (int i = 0; i < timed; i++) {
      long start = System.nanoTime();
      build.get();
      times[i] = (System.nanoTime() - start) / 1e6;
    }
    Arrays.sort(times);
    return times[timed / 2];
  }

  /** 10.0.0.0, 10.0.0.1, ...: n distinct active backends. */
  public static List<Backend> backends(int n) {
    List<Backend> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      try {
        byte[] address = {10, (byte) (i >> 16), (byte) (i >> 8), (byte) i};
        out.add(Backend.active(InetAddress.getByAddress(address)));
      } catch (UnknownHostException e) {
        throw new AssertionError(e);
      }
    }
    return out;
  }

  /**
   * The baseline: GLB's method written plainly. Guava's SipHash-2-4 over each score message, a full
   * sort of every row, single-threaded; all backends active, so the hops are the first ranked.
   * Returns the cells (stride {@code HOPS}); ties are left to the sort (they do not occur here).
   */
  static char[] naiveBuild(TableSpec spec, List<Backend> backends) {
    ByteBuffer key = ByteBuffer.wrap(spec.seed()).order(ByteOrder.LITTLE_ENDIAN);
    HashFunction sip = Hashing.sipHash24(key.getLong(0), key.getLong(8));
    int n = backends.size();
    byte[][] addresses = new byte[n][];
    for (int b = 0; b < n; b++) {
      addresses[b] = backends.get(b).addressBytes();
    }
    int bits = 32 - Integer.numberOfLeadingZeros(n);
    long indexMask = (1L << bits) - 1;
    char[] cells = new char[spec.rowCount() * HOPS];
    byte[] rowMessage = new byte[4];
    long[] row = new long[n];
    for (int r = 0; r < spec.rowCount(); r++) {
      ByteBuffer.wrap(rowMessage).putInt(r);
      byte[] rowSeed = sip.hashBytes(rowMessage).asBytes();
      for (int b = 0; b < n; b++) {
        byte[] message = Arrays.copyOf(rowSeed, 8 + addresses[b].length);
        System.arraycopy(addresses[b], 0, message, 8, addresses[b].length);
        long rank = Long.reverseBytes(sip.hashBytes(message).asLong());
        // the rank key's top bits, the backend index in the low ones; signed order = unsigned
        row[b] = ((rank & ~indexMask) | b) ^ Long.MIN_VALUE;
      }
      Arrays.sort(row);
      for (int h = 0; h < Math.min(HOPS, n); h++) {
        cells[r * HOPS + h] = (char) ((row[h] & indexMask) + 1);
      }
    }
    return cells;
  }
}
