package dev.veer.coordinator.table;

import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import com.google.common.primitives.UnsignedBytes;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A slow, literal rendering of the table rules to hold the builder to: Guava's SipHash over GLB's
 * byte layout, every score of a row compared as GLB compares them (output bytes, unsigned,
 * lexicographically; ties by address bytes), a full sort, then the state and retention rules word
 * for word as docs/tables.md gives them. Rows are answered one at a time, as addresses.
 */
final class ReferenceRows {
  private static final Comparator<byte[]> BYTES = UnsignedBytes.lexicographicalComparator();

  private final HashFunction sip;
  private final int hopCount;

  ReferenceRows(TableSpec spec) {
    ByteBuffer key = ByteBuffer.wrap(spec.seed()).order(ByteOrder.LITTLE_ENDIAN);
    this.sip = Hashing.sipHash24(key.getLong(0), key.getLong(8));
    this.hopCount = spec.hopCount();
  }

  /** The backends of {@code generation} in rank order for {@code row}. */
  List<Backend> ranking(int row, List<Backend> generation) {
    byte[] rowSeed = sip.hashBytes(ByteBuffer.allocate(4).putInt(row).array()).asBytes();
    Map<Backend, byte[]> scores = new LinkedHashMap<>();
    for (Backend b : generation) {
      byte[] address = b.addressBytes();
      byte[] message = new byte[rowSeed.length + address.length];
      System.arraycopy(rowSeed, 0, message, 0, rowSeed.length);
      System.arraycopy(address, 0, message, rowSeed.length, address.length);
      scores.put(b, sip.hashBytes(message).asBytes());
    }
    List<Backend> out = new ArrayList<>(generation);
    out.sort(
        Comparator.<Backend, byte[]>comparing(scores::get, BYTES)
            .thenComparing(Backend::addressBytes, BYTES));
    return out;
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

  /** One generation's hops for {@code row}, without retention: the state rules. */
  List<Backend> generationHops(int row, List<Backend> generation) {
    List<Backend> ranking = ranking(row, generation);
    int k = Math.min(hopCount, generation.size());
    List<Backend> hops = new ArrayList<>(ranking.subList(0, k));
    hops.sort(Comparator.comparingInt(ReferenceRows::placement)); // stable
    if (!hops.isEmpty() && placement(hops.getFirst()) != 0) {
      ranking.stream()
          .filter(b -> placement(b) == 0)
          .findFirst()
          .ifPresent(
              eligible -> {
                hops.removeLast();
                hops.addFirst(eligible);
              });
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
