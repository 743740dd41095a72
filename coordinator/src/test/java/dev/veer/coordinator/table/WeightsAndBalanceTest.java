package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Weights in both balance modes, and what bounded balance promises. */
class WeightsAndBalanceTest {
  private final Random random = new Random(1_313);
  private final byte[] seed = TestBackends.seed(random);

  private TableSpec spec(TableSpec.Balance balance) {
    return TableSpec.builder().seed(seed).rowBits(16).hopCount(2).balance(balance).build();
  }

  private static List<Backend> weighted(List<Backend> backends, int... weights) {
    List<Backend> out = new ArrayList<>();
    for (int i = 0; i < backends.size(); i++) {
      out.add(backends.get(i).withWeight(weights[i % weights.length]));
    }
    return out;
  }

  private static Map<InetAddress, Integer> primaries(RendezvousTable table) {
    Map<InetAddress, Integer> out = new HashMap<>();
    table.backends().forEach(b -> out.put(b.address(), 0));
    for (int row = 0; row < table.rowCount(); row++) {
      out.merge(table.backend(table.primary(row)).address(), 1, Integer::sum);
    }
    return out;
  }

  private static double share(RendezvousTable table, Backend b) {
    long total = table.backends().stream().mapToLong(Backend::weight).sum();
    return table.rowCount() * (double) b.weight() / total;
  }

  private static int moved(RendezvousTable before, RendezvousTable after) {
    int moved = 0;
    for (int row = 0; row < before.rowCount(); row++) {
      if (!before
          .backend(before.primary(row))
          .address()
          .equals(after.backend(after.primary(row)).address())) {
        moved++;
      }
    }
    return moved;
  }

  @Test
  void weightsOutsideTheRangeAreRefusedWithTheRange() {
    Backend b = TestBackends.ipv4(random, 1).getFirst();
    assertThatThrownBy(() -> b.withWeight(0)).hasMessageContaining("weight must be 1 to 10000");
    assertThatThrownBy(() -> b.withWeight(10_001)).hasMessageContaining("got 10001");
    assertThat(b.weight()).isEqualTo(Backend.DEFAULT_WEIGHT);
  }

  @Test
  void equalWeightsOfAnyValueGiveGlbsTable() {
    List<Backend> backends = TestBackends.ipv4(random, 12);
    TableSpec spec = spec(TableSpec.Balance.RENDEZVOUS);
    RendezvousTable glb = RendezvousTableBuilder.build(spec, backends);
    RendezvousTable sevens = RendezvousTableBuilder.build(spec, weighted(backends, 7));
    assertThat(sevens.encoded()).isEqualTo(glb.encoded());
  }

  @Test
  void weightedRendezvousGivesEachBackendItsWeightedShare() {
    RendezvousTable table =
        RendezvousTableBuilder.build(
            spec(TableSpec.Balance.RENDEZVOUS),
            weighted(TestBackends.ipv4(random, 8), 100, 100, 200, 400));
    Map<InetAddress, Integer> rows = primaries(table);
    for (Backend b : table.backends()) {
      // About 3,600 to 14,600 rows each: a few standard deviations are about 2% of a share.
      assertThat(rows.get(b.address()) / share(table, b)).as("%s", b).isBetween(0.95, 1.05);
    }
  }

  @Test
  void boundedBalanceCapsEveryBackendNearItsWeightedShare() {
    for (int[] weights : List.of(new int[] {100}, new int[] {50, 100, 200, 400})) {
      List<Backend> backends = weighted(TestBackends.ipv4(random, 256), weights);
      RendezvousTable table =
          RendezvousTableBuilder.build(spec(TableSpec.Balance.BOUNDED), backends);
      Map<InetAddress, Integer> rows = primaries(table);
      for (Backend b : backends) {
        double ratio = rows.get(b.address()) / share(table, b);
        assertThat(ratio).as("%s", b).isLessThanOrEqualTo(1 + TableSpec.BOUNDED_SLACK);
        assertThat(ratio).as("%s", b).isGreaterThan(0.5);
      }
      // The same rendezvous table is far less even: the cap is doing the work.
      Map<InetAddress, Integer> plain =
          primaries(RendezvousTableBuilder.build(spec(TableSpec.Balance.RENDEZVOUS), backends));
      assertThat(
              backends.stream()
                  .mapToDouble(b -> plain.get(b.address()) / share(table, b))
                  .max()
                  .orElseThrow())
          .isGreaterThan(1.1);
    }
  }

  @Test
  void boundedBalanceMovesFewRowsAndKeepsEveryPreviousPrimaryAsALaterHop() {
    TableSpec spec = spec(TableSpec.Balance.BOUNDED);
    List<Backend> pool = TestBackends.ipv4(random, 257);
    List<Backend> base = pool.subList(0, 256);
    RendezvousTable before = RendezvousTableBuilder.build(spec, base);

    List<Backend> grown = new ArrayList<>(base);
    grown.add(pool.get(256));
    RendezvousTable added = new TableBuilder().build(spec, grown, List.of(base));
    assertThat(moved(before, added)).isLessThanOrEqualTo((int) (1.5 * 65_536 / 257));

    List<Backend> shrunk = new ArrayList<>(base);
    Backend removed = shrunk.remove(17);
    RendezvousTable after = new TableBuilder().build(spec, shrunk, List.of(base));
    assertThat(moved(before, after))
        .isLessThanOrEqualTo((int) (1.5 * primaries(before).get(removed.address())));

    for (RendezvousTable changed : List.of(added, after)) {
      for (int row = 0; row < before.rowCount(); row++) {
        InetAddress was = before.backend(before.primary(row)).address();
        if (!was.equals(removed.address())) {
          assertThat(GenerationPropertyTest.hopAddresses(changed, row)).contains(was);
        }
      }
    }
  }

  @Test
  void boundedPrimariesDependOnTheBackendsNotOnTheirOrderOrTheBuilder() {
    TableSpec spec = spec(TableSpec.Balance.BOUNDED);
    List<Backend> backends = weighted(TestBackends.ipv4(random, 40), 1, 3, 10);
    List<Backend> shuffled = new ArrayList<>(backends);
    Collections.shuffle(shuffled, random);
    TableBuilder warm = new TableBuilder();
    warm.build(spec, backends.subList(0, 30), List.of());
    RendezvousTable a = warm.build(spec, backends, List.of());
    RendezvousTable b = new TableBuilder().build(spec, shuffled, List.of());
    for (int row = 0; row < a.rowCount(); row++) {
      assertThat(GenerationPropertyTest.hopAddresses(a, row))
          .isEqualTo(GenerationPropertyTest.hopAddresses(b, row));
    }
  }

  @Test
  void aDrainedBackendIsNoBoundedPrimaryButStaysInItsRowsWhileRetained() {
    TableSpec spec = spec(TableSpec.Balance.BOUNDED);
    List<Backend> base = TestBackends.ipv4(random, 10);
    RendezvousTable before = RendezvousTableBuilder.build(spec, base);
    List<Backend> drained = new ArrayList<>(base);
    drained.set(3, base.get(3).withState(BackendState.DRAINING));
    RendezvousTable after = new TableBuilder().build(spec, drained, List.of(base));
    for (int row = 0; row < after.rowCount(); row++) {
      assertThat(after.backend(after.primary(row)).isEligible()).isTrue();
      if (before.primary(row) == 3) {
        assertThat(GenerationPropertyTest.hopAddresses(after, row)).contains(base.get(3).address());
      }
    }
  }

  @Test
  void moreBackendsThanRowsStillGiveEveryRowAnEligiblePrimary() {
    TableSpec spec =
        TableSpec.builder().seed(seed).rowBits(8).balance(TableSpec.Balance.BOUNDED).build();
    RendezvousTable table = RendezvousTableBuilder.build(spec, TestBackends.ipv4(random, 300));
    Map<InetAddress, Integer> rows = primaries(table);
    assertThat(rows.values()).allMatch(n -> n <= 1);
    assertThat(rows.values().stream().mapToInt(Integer::intValue).sum()).isEqualTo(256);
  }
}
