package dev.veer.coordinator.table;

import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import com.google.common.primitives.UnsignedBytes;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A slow, literal rendering of the table rules to hold the builder to: Guava's SipHash over GLB's
 * byte layout, every score of a row compared as GLB compares them (output bytes, unsigned,
 * lexicographically; ties by address bytes), a full sort, then the state and retention rules word
 * for word as docs/tables.md gives them. Rows are answered one at a time, as addresses.
 *
 * <p>Weighted rendezvous primaries come from every eligible backend's weighted score; bounded
 * primaries from every (step, backend) proposal of the whole table, sorted and taken in order.
 */
final class ReferenceRows {
  private static final Comparator<byte[]> BYTES = UnsignedBytes.lexicographicalComparator();

  private final HashFunction sip;
  private final int hopCount;
  private final int rowBits;
  private final TableSpec.Balance balance;

  /** Bounded primaries by the generation's eligible (address, weight) pairs. */
  private final Map<List<List<Object>>, Map<Integer, InetAddress>> assignments = new HashMap<>();

  ReferenceRows(TableSpec spec) {
    ByteBuffer key = ByteBuffer.wrap(spec.seed()).order(ByteOrder.LITTLE_ENDIAN);
    this.sip = Hashing.sipHash24(key.getLong(0), key.getLong(8));
    this.hopCount = spec.hopCount();
    this.rowBits = spec.rowBits();
    this.balance = spec.balance();
  }

  private byte[] score(byte[] rowSeed, byte[] address) {
    byte[] message = new byte[rowSeed.length + address.length];
    System.arraycopy(rowSeed, 0, message, 0, rowSeed.length);
    System.arraycopy(address, 0, message, rowSeed.length, address.length);
    return sip.hashBytes(message).asBytes();
  }

  private byte[] rowSeed(int row) {
    return sip.hashBytes(ByteBuffer.allocate(4).putInt(row).array()).asBytes();
  }

  /** The backends of {@code generation} in rank order for {@code row}. */
  List<Backend> ranking(int row, List<Backend> generation) {
    byte[] rowSeed = rowSeed(row);
    Map<Backend, byte[]> scores = new LinkedHashMap<>();
    for (Backend b : generation) {
      scores.put(b, score(rowSeed, b.addressBytes()));
    }
    List<Backend> out = new ArrayList<>(generation);
    out.sort(
        Comparator.<Backend, byte[]>comparing(scores::get, BYTES)
            .thenComparing(Backend::addressBytes, BYTES));
    return out;
  }

  /** The weighted rendezvous primary: the lowest -ln(1 - x) / weight, ties by rank. */
  private Backend weightedPrimary(int row, List<Backend> ranking) {
    byte[] rowSeed = rowSeed(row);
    Backend best = null;
    double bestScore = 0;
    for (Backend b : ranking) {
      if (placement(b) != 0) {
        continue;
      }
      // The score's bytes read big-endian, as an unsigned fraction of 2^64, to 53 bits.
      long v = ByteBuffer.wrap(score(rowSeed, b.addressBytes())).getLong();
      double x = (v >>> 11) / 9007199254740992.0;
      double score = -StrictMath.log1p(-x) / b.weight();
      if (best == null || score < bestScore) {
        best = b;
        bestScore = score;
      }
    }
    return best;
  }

  /** The bounded primary of {@code row} in {@code generation} (which has an eligible backend). */
  private InetAddress boundedPrimary(int row, List<Backend> generation) {
    List<Backend> eligible =
        generation.stream()
            .filter(b -> placement(b) == 0)
            .sorted(Comparator.comparing(Backend::addressBytes, BYTES))
            .toList();
    List<List<Object>> key =
        eligible.stream().map(b -> List.<Object>of(b.address(), b.weight())).toList();
    return assignments.computeIfAbsent(key, k -> assign(eligible)).get(row);
  }

  /**
   * Every backend proposes every row: at step {@code t} the row whose position in its walk is t,
   * position = (row x multiplier + offset) mod rows. All proposals are taken in the order of (t +
   * tie) / weight (compared as its whole part, then its fraction), then address; a proposal wins a
   * free row while its backend is under its cap.
   */
  private Map<Integer, InetAddress> assign(List<Backend> eligible) {
    int rows = 1 << rowBits;
    long total = eligible.stream().mapToLong(Backend::weight).sum();
    int[] caps = new int[eligible.size()];
    long capSum = 0;
    for (int i = 0; i < caps.length; i++) {
      caps[i] =
          (int)
              Math.floor(
                  rows * (double) eligible.get(i).weight() / total * (1 + TableSpec.BOUNDED_SLACK));
      capSum += caps[i];
    }
    for (int i = 0; capSum < rows; i = (i + 1) % caps.length) {
      caps[i]++;
      capSum++;
    }
    long gcd = 0;
    for (Backend b : eligible) {
      gcd = com.google.common.math.LongMath.gcd(gcd, b.weight());
    }
    record Proposal(long round, double phase, int backend, int row) {}
    List<Proposal> proposals = new ArrayList<>();
    for (int i = 0; i < eligible.size(); i++) {
      Backend b = eligible.get(i);
      long walk = domainHash(BoundedAssignment.WALK_DOMAIN, b);
      long multiplier = walk | 1;
      long offset = walk >>> 32;
      // The hash's top 32 bits as a fraction; the weight divided by all weights' gcd.
      double tie = (domainHash(BoundedAssignment.TIE_DOMAIN, b) >>> 32) / 4294967296.0;
      long weight = b.weight() / gcd;
      for (int row = 0; row < rows; row++) {
        long t = (row * multiplier + offset) & (rows - 1);
        // (t + tie) / weight, as its whole part and its fraction
        proposals.add(new Proposal(t / weight, (t % weight + tie) / weight, i, row));
      }
    }
    proposals.sort(
        Comparator.comparingLong(Proposal::round)
            .thenComparingDouble(Proposal::phase)
            .thenComparingInt(Proposal::backend));
    Map<Integer, InetAddress> out = new HashMap<>();
    int[] load = new int[eligible.size()];
    for (Proposal p : proposals) {
      if (load[p.backend()] < caps[p.backend()] && !out.containsKey(p.row())) {
        out.put(p.row(), eligible.get(p.backend()).address());
        load[p.backend()]++;
      }
    }
    return out;
  }

  /** SipHash over the domain's 8 little-endian bytes and the address. */
  private long domainHash(long domain, Backend b) {
    byte[] prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(domain).array();
    return ByteBuffer.wrap(score(prefix, b.addressBytes()))
        .order(ByteOrder.LITTLE_ENDIAN)
        .getLong();
  }

  /** The generation's primary for {@code row} if it has an eligible backend, else null. */
  private Backend primary(int row, List<Backend> generation, List<Backend> ranking) {
    if (ranking.stream().noneMatch(b -> placement(b) == 0)) {
      return null;
    }
    if (balance == TableSpec.Balance.BOUNDED) {
      InetAddress address = boundedPrimary(row, generation);
      return generation.stream().filter(b -> b.address().equals(address)).findFirst().orElseThrow();
    }
    return weightedPrimary(row, ranking);
  }

  private static int placement(Backend b) {
    if (!b.healthy()) {
      return 2;
    }
    return switch (b.state()) {
      case ACTIVE, FILLING -> 0;
      case DRAINING -> 1;
      case INACTIVE -> 2;
    };
  }

  /**
   * One generation's hops for {@code row}, without retention: the state rules. Its primary if it
   * has an eligible backend, then its first k by rank but the primary, stably ordered by placement,
   * k in all.
   */
  List<Backend> generationHops(int row, List<Backend> generation) {
    List<Backend> ranking = ranking(row, generation);
    int k = Math.min(hopCount, generation.size());
    Backend primary = primary(row, generation, ranking);
    List<Backend> candidates = new ArrayList<>(ranking.subList(0, k));
    candidates.remove(primary);
    candidates.sort(Comparator.comparingInt(ReferenceRows::placement)); // stable
    List<Backend> hops = new ArrayList<>();
    if (primary != null) {
      hops.add(primary);
    }
    for (Backend b : candidates) {
      if (hops.size() < k) {
        hops.add(b);
      }
    }
    return hops;
  }

  /** The row as the builder should write it, with the previous generations newest first. */
  List<InetAddress> row(int row, List<Backend> current, List<List<Backend>> previous) {
    if (current.isEmpty()) {
      return List.of();
    }
    List<Backend> hops = generationHops(row, current);
    List<InetAddress> present = current.stream().map(Backend::address).toList();
    List<InetAddress> out = new ArrayList<>();
    out.add(hops.getFirst().address());
    for (List<Backend> generation : previous) {
      if (generation.isEmpty() || out.size() == TableSpec.MAX_HOPS) {
        continue;
      }
      InetAddress primary = generationHops(row, generation).getFirst().address();
      if (present.contains(primary) && !out.contains(primary)) {
        out.add(primary);
      }
    }
    int length = Math.max(hops.size(), out.size());
    for (Backend b : hops) {
      if (out.size() < length && !out.contains(b.address())) {
        out.add(b.address());
      }
    }
    return out;
  }
}
