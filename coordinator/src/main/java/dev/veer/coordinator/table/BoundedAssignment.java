package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.math.IntMath;
import java.util.Arrays;

/**
 * The primaries of one backend list under {@link TableSpec.Balance#BOUNDED}: every row gets one
 * eligible backend, and no backend more than {@code floor(rows x weight / total x 1.05)} rows.
 *
 * <p><b>Method.</b> Each backend walks the rows in an order of its own, a permutation of the rows
 * keyed by the table seed and its address ({@code row = (t - offset) x multiplier^-1 mod rows} at
 * step {@code t}, with an odd multiplier: Maglev's offset and skip, on a power-of-two table). The
 * backends take turns in the order of {@code (t + tie) / weight}, where {@code tie} in [0, 1) is a
 * keyed hash of the address (32 bits, so {@code t + tie} is exact) and the weights are divided by
 * their greatest common divisor, so a backend of twice the weight walks twice as fast; at its turn
 * a backend takes the row at its step if that row is free. The order is exact: a turn is compared
 * as its round {@code t / weight} and its phase {@code (t % weight + tie) / weight} within the
 * round, then by address. The phases repeat every round, so one round's turns are sorted once and
 * replayed (with equal weights: the backends in the order of their ties, round after round). A
 * backend stops at its cap. With no slack this is Maglev's construction (perfect balance, several
 * times the minimal disruption); with 5% slack most backends never reach their cap, so a backend
 * added or removed mostly takes or frees its own rows and the others' walks go on as before.
 *
 * <p>Measured at 2^16 rows (equal weights): busiest 1.047x the mean at 256 and 1,024 backends; a
 * backend added or removed moves 1.1-1.2x the minimum of rows at 256 backends, 1.4-1.5x at 1,024.
 *
 * <p>A pure function of the seed, the row count and the list's (address, weight) pairs: every
 * coordinator computes the same rows. Deterministic to the bit: phases are compared in IEEE double
 * arithmetic (strict in Java), ties by address.
 */
final class BoundedAssignment {
  /** Row-seed stand-ins for the per-backend hashes, apart from any row's use of the same key. */
  static final long WALK_DOMAIN = 0x7761_6c6b_6f72_6465L;

  /** The longest round schedule (the weights' sum after their gcd) worth sorting. */
  private static final long MAX_SCHEDULE = 1 << 16;

  static final long TIE_DOMAIN = 0x7469_6562_7265_616bL;

  private BoundedAssignment() {}

  /**
   * Assigns every row of a {@code 2^rowBits} table to one of the backends.
   *
   * @param addresses the backends' address bytes, in ascending unsigned order (the tie-breaker)
   * @param weights the backends' weights, in the same order
   * @param slack how far above its weighted share a backend's rows may go ({@link
   *     TableSpec#BOUNDED_SLACK}; other values for the benchmark's trade-off curve)
   * @return per row, the index of its backend in {@code addresses}
   */
  static char[] assign(
      RowHasher hasher, int rowBits, byte[][] addresses, int[] weights, double slack) {
    int n = addresses.length;
    checkArgument(n > 0 && n == weights.length, "need one weight per backend, and a backend");
    int rows = 1 << rowBits;
    int mask = rows - 1;
    int[] caps = caps(rows, weights, slack);
    long[] offset = new long[n];
    long[] inverse = new long[n];
    double[] tie = new double[n];
    for (int i = 0; i < n; i++) {
      long walk = hasher.score(WALK_DOMAIN, addresses[i]);
      long multiplier = walk | 1;
      offset[i] = (walk >>> 32) & mask;
      inverse[i] = inverse(multiplier);
      tie[i] = tie(hasher.score(TIE_DOMAIN, addresses[i]));
    }
    int[] weight = reduced(weights);
    Walks walks = new Walks(rows, caps, offset, inverse);
    if (Arrays.stream(weight).asLongStream().sum() <= MAX_SCHEDULE) {
      bySchedule(walks, tie, weight);
    } else {
      byQueue(walks, tie, weight);
    }
    if (walks.free > 0) {
      throw new IllegalStateException("the caps left " + walks.free + " rows without a backend");
    }
    return walks.owner;
  }

  /** The backends' walks over the rows, and the rows they have taken. */
  private static final class Walks {
    final int rows;
    final int[] caps;
    final long[] offset;
    final long[] inverse;
    final char[] owner;
    final boolean[] taken;
    final int[] load;
    int free;

    Walks(int rows, int[] caps, long[] offset, long[] inverse) {
      this.rows = rows;
      this.caps = caps;
      this.offset = offset;
      this.inverse = inverse;
      this.owner = new char[rows];
      this.taken = new boolean[rows];
      this.load = new int[caps.length];
      this.free = rows;
    }

    boolean full(int b) {
      return load[b] == caps[b];
    }

    /** Backend {@code b}'s turn at step {@code t}: it takes the row there if that row is free. */
    void turn(int b, long t) {
      int row = (int) ((t - offset[b]) * inverse[b]) & (rows - 1);
      if (!taken[row]) {
        taken[row] = true;
        owner[row] = (char) b;
        load[b]++;
        free--;
      }
    }
  }

  /** A keyed hash's top 32 bits as a fraction in [0, 1): exact when added to a step. */
  static double tie(long hash) {
    return (hash >>> 32) * 0x1.0p-32;
  }

  /** The weights divided by their greatest common divisor. */
  static int[] reduced(int[] weights) {
    int gcd = 0;
    for (int w : weights) {
      gcd = IntMath.gcd(gcd, w);
    }
    int[] out = new int[weights.length];
    for (int i = 0; i < weights.length; i++) {
      out[i] = weights[i] / gcd;
    }
    return out;
  }

  /**
   * Backend {@code b}'s turn at step {@code t} comes in round {@code t / w}, at phase {@code (t % w
   * + tie) / w} within the round: {@code (t + tie) / w} split into its whole and fractional parts,
   * so that the order is exact. Turns are taken in the order of (round, phase, index).
   */
  private static double phase(int t, int w, double tie) {
    return (t % w + tie) / w;
  }

  /**
   * The turns taken in order from a schedule: one round's (backend, step-in-round) pairs sorted by
   * phase, replayed round after round. Costs a sort of the weights' sum (after their gcd) and then
   * constant work a turn; used unless that sum is large.
   */
  private static void bySchedule(Walks walks, double[] tie, int[] weights) {
    int[] caps = walks.caps;
    int n = caps.length;
    int length = 0;
    for (int b = 0; b < n; b++) {
      length += caps[b] > 0 ? weights[b] : 0;
    }
    long[] keyed = new long[length];
    double[] phases = new double[length];
    int at = 0;
    for (int b = 0; b < n; b++) {
      for (int j = 0; caps[b] > 0 && j < weights[b]; j++) {
        phases[at] = phase(j, weights[b], tie[b]);
        keyed[at] = ((long) b << 32) | j;
        at++;
      }
    }
    Integer[] order = new Integer[length];
    for (int i = 0; i < length; i++) {
      order[i] = i;
    }
    Arrays.sort(
        order,
        (x, y) ->
            phases[x] != phases[y]
                ? Double.compare(phases[x], phases[y])
                : Long.compare(keyed[x] >>> 32, keyed[y] >>> 32));
    int[] backend = new int[length];
    int[] phaseStep = new int[length];
    for (int i = 0; i < length; i++) {
      backend[i] = (int) (keyed[order[i]] >>> 32);
      phaseStep[i] = (int) keyed[order[i]];
    }
    for (long round = 0; walks.free > 0 && length > 0; round++) {
      int kept = 0;
      for (int i = 0; i < length && walks.free > 0; i++) {
        int b = backend[i];
        long t = round * weights[b] + phaseStep[i];
        if (walks.full(b) || t >= walks.rows) {
          continue; // done: full, or every row proposed; dropped from the next round
        }
        walks.turn(b, t);
        backend[kept] = b;
        phaseStep[kept] = phaseStep[i];
        kept++;
      }
      length = kept;
    }
  }

  /**
   * The turns taken in order from a priority queue of the backends by their next turn: for weights
   * whose sum (after their gcd) would make the schedule large.
   */
  private static void byQueue(Walks walks, double[] tie, int[] weights) {
    int n = walks.caps.length;
    int[] step = new int[n];
    int[] heap = new int[n];
    int size = 0;
    for (int i = 0; i < n; i++) {
      if (walks.caps[i] > 0) {
        heap[size++] = i;
      }
    }
    Turns turns = new Turns(step, weights, tie);
    for (int i = size / 2 - 1; i >= 0; i--) {
      siftDown(heap, size, i, turns);
    }
    while (walks.free > 0 && size > 0) {
      int b = heap[0];
      walks.turn(b, step[b]);
      step[b]++;
      if (walks.full(b) || step[b] == walks.rows) {
        heap[0] = heap[--size];
      }
      siftDown(heap, size, 0, turns);
    }
  }

  /** The order of the backends' next turns: (round, phase, index). */
  private record Turns(int[] step, int[] weights, double[] tie) {
    boolean before(int a, int b) {
      int roundA = step[a] / weights[a];
      int roundB = step[b] / weights[b];
      if (roundA != roundB) {
        return roundA < roundB;
      }
      double phaseA = phase(step[a], weights[a], tie[a]);
      double phaseB = phase(step[b], weights[b], tie[b]);
      return phaseA < phaseB || (phaseA == phaseB && a < b);
    }
  }

  /**
   * Per backend, the most rows it may be primary of: its weighted share with the slack, rounded
   * down; raised one by one, in address order, while they would not cover every row (only when
   * there are nearly as many backends as rows).
   */
  static int[] caps(int rows, int[] weights, double slack) {
    long total = 0;
    for (int w : weights) {
      total += w;
    }
    int[] caps = new int[weights.length];
    long sum = 0;
    for (int i = 0; i < weights.length; i++) {
      caps[i] = (int) Math.floor(rows * (double) weights[i] / total * (1 + slack));
      sum += caps[i];
    }
    for (int i = 0; sum < rows; i = (i + 1) % caps.length) {
      if (caps[i] < rows) {
        caps[i]++;
        sum++;
      }
    }
    return caps;
  }

  /** The inverse of an odd number modulo 2^64 (Newton's iteration doubles the correct bits). */
  static long inverse(long odd) {
    long x = odd; // correct to 3 bits: odd * odd = 1 mod 8
    for (int i = 0; i < 5; i++) {
      x *= 2 - odd * x;
    }
    return x;
  }

  private static void siftDown(int[] heap, int size, int i, Turns turns) {
    if (size == 0) {
      return;
    }
    int b = heap[i];
    while (true) {
      int child = 2 * i + 1;
      if (child >= size) {
        break;
      }
      int c = heap[child];
      if (child + 1 < size && turns.before(heap[child + 1], c)) {
        c = heap[++child];
      }
      if (!turns.before(c, b)) {
        break;
      }
      heap[i] = c;
      i = child;
    }
    heap[i] = b;
  }
}
