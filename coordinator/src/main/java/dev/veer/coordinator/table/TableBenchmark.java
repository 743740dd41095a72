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

  /** {@code --movement-only}: only the balance and movement by mode. */
  public static void main(String[] args) {
    new TableBenchmark().run(List.of(args).contains("--movement-only"));
  }

  private void run(boolean movementOnly) {
    TableSpec spec = TableSpec.of(seed, ROW_BITS, HOPS);
    if (movementOnly) {
      movementByMode(spec);
      return;
    }
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
    movementByMode(spec);
  }

  private void movementByMode(TableSpec spec) {
    slackCurve(spec);
    System.out.printf(
        "%nBalance and movement by mode, 2^%d rows: primary rows against the weighted share, and"
            + " rows whose primary one change moves, x the minimum (mean of %d changes)%n%n",
        ROW_BITS, MOVES_TRIALS);
    System.out.println(
        "| mode | weights | backends | max/share | min/share | add: moved x min | remove: moved x"
            + " min | moved rows without their previous primary | full build ms | drain ms |");
    System.out.println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (TableSpec.Balance mode : TableSpec.Balance.values()) {
      for (boolean mixed : new boolean[] {false, true}) {
        for (int n : new int[] {16, 256, 1024}) {
          movement(spec.toBuilder().balance(mode).build(), n, mixed);
        }
      }
    }
  }

  private static final int MOVES_TRIALS = 5;

  /**
   * The trade-off bounded balance makes, at 1,024 equal backends: its slack against the busiest
   * backend's share and the rows one change moves. Slack 0 is Maglev's construction.
   */
  private void slackCurve(TableSpec spec) {
    int n = 1024;
    System.out.printf(
        "%nBounded balance's slack, 1,024 equal backends, 2^%d rows: busiest backend x the mean"
            + " against rows moved x the minimum (mean of %d additions and %d removals)%n%n",
        spec.rowBits(), MOVES_TRIALS, MOVES_TRIALS);
    System.out.println("| slack | max/mean | min/mean | add: moved x min | remove: moved x min |");
    System.out.println("|---:|---:|---:|---:|---:|");
    RowHasher hasher = RowHasher.of(spec);
    List<Backend> all = backends(n + MOVES_TRIALS);
    byte[][] pool = new byte[all.size()][];
    for (int i = 0; i < pool.length; i++) {
      pool[i] = all.get(i).addressBytes();
    }
    for (double slack : new double[] {0, 0.01, 0.02, TableSpec.BOUNDED_SLACK, 0.1, 0.25}) {
      byte[][] base = Arrays.copyOf(pool, n);
      char[] before = BoundedAssignment.assign(hasher, spec.rowBits(), base, equal(n), slack);
      int[] held = new int[n];
      for (char owner : before) {
        held[owner]++;
      }
      double mean = (double) spec.rowCount() / n;
      double added = 0;
      double removed = 0;
      for (int t = 0; t < MOVES_TRIALS; t++) {
        byte[][] grown = Arrays.copyOf(base, n + 1);
        grown[n] = pool[n + t];
        char[] after = BoundedAssignment.assign(hasher, spec.rowBits(), grown, equal(n + 1), slack);
        added += movedRows(base, before, grown, after) / (spec.rowCount() / (n + 1.0));
        int gone = t * (n / MOVES_TRIALS);
        byte[][] shrunk = new byte[n - 1][];
        for (int i = 0, j = 0; i < n; i++) {
          if (i != gone) {
            shrunk[j++] = base[i];
          }
        }
        after = BoundedAssignment.assign(hasher, spec.rowBits(), shrunk, equal(n - 1), slack);
        removed += movedRows(base, before, shrunk, after) / (double) held[gone];
      }
      System.out.printf(
          "| %.2f | %.3f | %.3f | %.2f | %.2f |%n",
          slack,
          Arrays.stream(held).max().orElseThrow() / mean,
          Arrays.stream(held).min().orElseThrow() / mean,
          added / MOVES_TRIALS,
          removed / MOVES_TRIALS);
    }
  }

  private static int[] equal(int n) {
    int[] weights = new int[n];
    Arrays.fill(weights, Backend.DEFAULT_WEIGHT);
    return weights;
  }

  /** Rows whose owner's address differs between two assignments. */
  private static int movedRows(byte[][] fromBackends, char[] from, byte[][] toBackends, char[] to) {
    int moved = 0;
    for (int row = 0; row < from.length; row++) {
      if (!Arrays.equals(fromBackends[from[row]], toBackends[to[row]])) {
        moved++;
      }
    }
    return moved;
  }

  /** 10.0.0.0, ...: n active backends, of equal weight or of weights 50, 100, 200 and 400. */
  private static List<Backend> weighted(int n, boolean mixed) {
    List<Backend> out = new ArrayList<>();
    int[] weights = {50, 100, 200, 400};
    for (Backend b : backends(n)) {
      out.add(mixed ? b.withWeight(weights[out.size() % weights.length]) : b);
    }
    return out;
  }

  /** One row of the balance and movement table. */
  private void movement(TableSpec spec, int n, boolean mixed) {
    List<Backend> pool = weighted(n + MOVES_TRIALS, mixed);
    List<Backend> base = pool.subList(0, n);
    RendezvousTable before = new TableBuilder().build(spec, base, List.of());
    double[] extremes = shareExtremes(before);
    double addRatio = 0;
    double removeRatio = 0;
    long unkept = 0;
    for (int t = 0; t < MOVES_TRIALS; t++) {
      List<Backend> grown = new ArrayList<>(base);
      Backend added = pool.get(n + t);
      grown.add(added);
      RendezvousTable after = new TableBuilder().build(spec, grown, List.of(base));
      double share = spec.rowCount() * added.weight() / (double) totalWeight(grown);
      addRatio += moved(before, after) / share;
      unkept += unkept(before, after);

      List<Backend> shrunk = new ArrayList<>(base);
      Backend removed = shrunk.remove(t * (n / MOVES_TRIALS));
      after = new TableBuilder().build(spec, shrunk, List.of(base));
      removeRatio +=
          moved(before, after) / (double) before.primaryRowCounts().getOrDefault(removed, 1);
      unkept += unkept(before, after);
    }
    double full = median(2, 5, () -> new TableBuilder().build(spec, base, List.of()));
    TableBuilder warm = new TableBuilder();
    warm.build(spec, base, List.of());
    // A different backend each time, drained and then back: each drain's list is new to the
    // builder.
    int[] build = {0};
    double drain =
        median(
            10,
            21,
            () -> {
              int i = build[0]++;
              List<Backend> drained = new ArrayList<>(base);
              int b = i / 2 % base.size();
              drained.set(b, base.get(b).withState(BackendState.DRAINING));
              return i % 2 == 0
                  ? warm.build(spec, drained, List.of(base))
                  : warm.build(spec, base, List.of(drained));
            });
    System.out.printf(
        "| %s | %s | %d | %.3f | %.3f | %.2f | %.2f | %d | %.1f | %.2f |%n",
        spec.balance().name().toLowerCase(),
        mixed ? "50-400" : "equal",
        n,
        extremes[0],
        extremes[1],
        addRatio / MOVES_TRIALS,
        removeRatio / MOVES_TRIALS,
        unkept,
        full,
        drain);
  }

  private static long totalWeight(List<Backend> backends) {
    return backends.stream().mapToLong(Backend::weight).sum();
  }

  /** The largest and smallest ratio of a backend's primary rows to its weighted share. */
  private static double[] shareExtremes(RendezvousTable table) {
    long total = totalWeight(table.backends());
    double max = 0;
    double min = Double.MAX_VALUE;
    var counts = table.primaryRowCounts();
    for (Backend b : table.backends()) {
      double share = table.rowCount() * b.weight() / (double) total;
      double ratio = counts.getOrDefault(b, 0) / share;
      max = Math.max(max, ratio);
      min = Math.min(min, ratio);
    }
    return new double[] {max, min};
  }

  /** Rows whose primary differs between the tables. */
  private static int moved(RendezvousTable before, RendezvousTable after) {
    int moved = 0;
    for (int row = 0; row < before.rowCount(); row++) {
      if (!before
          .backends()
          .get(before.primary(row))
          .address()
          .equals(after.backends().get(after.primary(row)).address())) {
        moved++;
      }
    }
    return moved;
  }

  /** Rows that moved and do not list their previous primary, if it is still a backend. */
  private static int unkept(RendezvousTable before, RendezvousTable after) {
    int unkept = 0;
    java.util.Set<InetAddress> present = new java.util.HashSet<>();
    after.backends().forEach(b -> present.add(b.address()));
    for (int row = 0; row < before.rowCount(); row++) {
      InetAddress was = before.backends().get(before.primary(row)).address();
      boolean listed = false;
      for (int hop : after.hops(row)) {
        listed |= after.backends().get(hop).address().equals(was);
      }
      if (present.contains(was) && !listed) {
        unkept++;
      }
    }
    return unkept;
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
