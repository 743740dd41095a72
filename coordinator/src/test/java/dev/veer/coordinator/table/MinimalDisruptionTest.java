package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Changing one backend moves only the rows that backend owns, and moves them to the hop that
 * already held them second (GLB's second chance).
 */
class MinimalDisruptionTest {
  private static final int ROW_BITS = 12;

  static IntStream sizes() {
    return IntStream.rangeClosed(3, 50);
  }

  static Stream<Arguments> sizesAndHops() {
    return IntStream.rangeClosed(3, 50)
        .boxed()
        .flatMap(n -> IntStream.rangeClosed(2, 4).mapToObj(h -> Arguments.of(n, h)));
  }

  private static TableSpec spec(int n, int hops) {
    return TableSpec.builder()
        .seed(TestBackends.seed(new Random(n)))
        .rowBits(ROW_BITS)
        .hopCount(hops)
        .build();
  }

  private static List<Backend> backends(int n, int extra) {
    Random random = new Random(1_000 + n);
    return n % 2 == 0 ? TestBackends.ipv4(random, n + extra) : TestBackends.ipv6(random, n + extra);
  }

  private static InetAddress primaryAddress(RendezvousTable t, int row) {
    return t.backend(t.primary(row)).address();
  }

  private static InetAddress hopAddress(RendezvousTable t, int row, int hop) {
    return t.backend(t.hop(row, hop)).address();
  }

  @ParameterizedTest(name = "{0} backends")
  @MethodSource("sizes")
  void addingABackendMovesOnlyTheRowsItWins(int n) {
    List<Backend> all = backends(n, 1);
    TableSpec spec = spec(n, 2);
    RendezvousTable before = RendezvousTableBuilder.build(spec, all.subList(0, n));
    RendezvousTable after = RendezvousTableBuilder.build(spec, all);
    int won = 0;
    for (int row = 0; row < spec.rowCount(); row++) {
      if (after.primary(row) == n) {
        won++;
        // the previous primary is now second, where second chance finds its flows
        assertThat(after.hop(row, 1)).as("row %s", row).isEqualTo(before.primary(row));
      } else {
        assertThat(after.primary(row)).as("row %s", row).isEqualTo(before.primary(row));
      }
    }
    assertThat(won).isPositive();
  }

  @ParameterizedTest(name = "{0} backends")
  @MethodSource("sizes")
  void removingABackendMovesOnlyItsRowsToTheirSecondHop(int n) {
    List<Backend> all = backends(n, 0);
    TableSpec spec = spec(n, 2);
    int removed = new Random(n).nextInt(n);
    List<Backend> rest = new ArrayList<>(all);
    rest.remove(removed);
    RendezvousTable before = RendezvousTableBuilder.build(spec, all);
    RendezvousTable after = RendezvousTableBuilder.build(spec, rest);
    for (int row = 0; row < spec.rowCount(); row++) {
      if (before.primary(row) == removed) {
        assertThat(primaryAddress(after, row))
            .as("row %s", row)
            .isEqualTo(hopAddress(before, row, 1));
      } else {
        assertThat(primaryAddress(after, row))
            .as("row %s", row)
            .isEqualTo(primaryAddress(before, row));
      }
    }
  }

  @ParameterizedTest(name = "{0} backends, {1} hops")
  @MethodSource("sizesAndHops")
  void drainingABackendDemotesItInItsRowsOnly(int n, int hops) {
    List<Backend> all = backends(n, 0);
    TableSpec spec = spec(n, hops);
    int drained = new Random(n).nextInt(n);
    List<Backend> draining = new ArrayList<>(all);
    draining.set(drained, all.get(drained).withState(BackendState.DRAINING));
    RendezvousTable before = RendezvousTableBuilder.build(spec, all);
    RendezvousTable after = RendezvousTableBuilder.build(spec, draining);
    int k = Math.min(hops, n);
    for (int row = 0; row < spec.rowCount(); row++) {
      int[] was = before.hops(row);
      int[] now = after.hops(row);
      if (was[0] == drained) {
        // still in the row, as the last hop; everyone else moves up one, the old second is primary
        assertThat(now).as("row %s", row).hasSize(k);
        assertThat(now[k - 1]).isEqualTo(drained);
        for (int h = 0; h < k - 1; h++) {
          assertThat(now[h]).isEqualTo(was[h + 1]);
        }
        assertThat(after.backend(now[0]).state()).isEqualTo(BackendState.ACTIVE);
      } else {
        // primary unchanged; the drained backend, if in the row, moves behind the active hops
        assertThat(now[0]).as("row %s", row).isEqualTo(was[0]);
        assertThat(now).containsExactlyInAnyOrder(was);
      }
    }
  }

  @ParameterizedTest(name = "{0} backends")
  @MethodSource("sizes")
  void withOneHopADrainingBackendLeavesItsRowsToTheNextRanked(int n) {
    List<Backend> all = backends(n, 0);
    TableSpec spec = spec(n, 1);
    TableSpec twoHops = spec.toBuilder().hopCount(2).build();
    int drained = n / 2;
    List<Backend> draining = new ArrayList<>(all);
    draining.set(drained, all.get(drained).withState(BackendState.DRAINING));
    RendezvousTable reference = RendezvousTableBuilder.build(twoHops, all);
    RendezvousTable after = RendezvousTableBuilder.build(spec, draining);
    for (int row = 0; row < spec.rowCount(); row++) {
      int expected =
          reference.primary(row) == drained ? reference.hop(row, 1) : reference.primary(row);
      assertThat(after.hops(row)).as("row %s", row).containsExactly(expected);
    }
  }

  @ParameterizedTest(name = "{0} backends")
  @MethodSource("sizes")
  void neverADrainingOrInactivePrimaryWhileAnEligibleBackendExists(int n) {
    Random random = new Random(n * 31L);
    BackendState[] states = BackendState.values(); // ACTIVE, FILLING, DRAINING, INACTIVE
    for (int hops = 1; hops <= 4; hops++) {
      List<Backend> all = new ArrayList<>(backends(n, 0));
      // mostly unavailable backends, so that many rows need the eligible fallback
      for (int i = 0; i < n; i++) {
        int s = random.nextInt(4) == 0 ? random.nextInt(2) : 2 + random.nextInt(2);
        all.set(i, all.get(i).withState(states[s]));
      }
      int surelyActive = random.nextInt(n);
      all.set(surelyActive, all.get(surelyActive).withState(BackendState.ACTIVE));
      RendezvousTable table = RendezvousTableBuilder.build(spec(n, hops), all);
      for (int row = 0; row < table.rowCount(); row++) {
        int[] rowHops = table.hops(row);
        assertThat(rowHops).as("row %s", row).hasSize(Math.min(hops, n)).doesNotHaveDuplicates();
        assertThat(table.backend(rowHops[0]).state().isEligible()).as("row %s", row).isTrue();
        for (int h = 1; h < rowHops.length; h++) {
          // eligible hops, then draining ones, then inactive ones
          assertThat(table.backend(rowHops[h]).state().tier())
              .isGreaterThanOrEqualTo(table.backend(rowHops[h - 1]).state().tier());
        }
      }
    }
  }

  @ParameterizedTest(name = "{0} backends")
  @MethodSource("sizes")
  void withNothingEligibleDrainingHopsComeBeforeInactiveOnes(int n) {
    Random random = new Random(n * 17L);
    List<Backend> all = new ArrayList<>(backends(n, 0));
    for (int i = 0; i < n; i++) {
      all.set(
          i,
          all.get(i)
              .withState(random.nextBoolean() ? BackendState.DRAINING : BackendState.INACTIVE));
    }
    RendezvousTable table = RendezvousTableBuilder.build(spec(n, 3), all);
    RendezvousTable allActive = RendezvousTableBuilder.build(spec(n, 3), backends(n, 0));
    for (int row = 0; row < table.rowCount(); row++) {
      int[] rowHops = table.hops(row);
      assertThat(rowHops).containsExactlyInAnyOrder(allActive.hops(row));
      for (int h = 1; h < rowHops.length; h++) {
        assertThat(table.backend(rowHops[h]).state().tier())
            .isGreaterThanOrEqualTo(table.backend(rowHops[h - 1]).state().tier());
      }
    }
  }
}
