package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TableBasicsTest {
  private static final byte[] SEED = TestBackends.seed(new Random(7));

  @Test
  void noBackendsGivesRowsWithoutHops() {
    RendezvousTable table = RendezvousTableBuilder.build(TableSpec.of(SEED, 4, 2), List.of());
    assertThat(table.rowCount()).isEqualTo(16);
    assertThat(table.hopCount()).isZero();
    for (int row = 0; row < 16; row++) {
      assertThat(table.hops(row)).isEmpty();
      assertThat(table.primary(row)).isEqualTo(-1);
    }
    assertThat(table.primaryRowCounts()).isEmpty();
  }

  @Test
  void hopCountIsClampedToTheBackends() {
    List<Backend> one = TestBackends.ipv4(new Random(1), 1);
    RendezvousTable table = RendezvousTableBuilder.build(TableSpec.of(SEED, 6, 4), one);
    assertThat(table.hopCount()).isEqualTo(1);
    for (int row = 0; row < table.rowCount(); row++) {
      assertThat(table.hops(row)).containsExactly(0);
    }
    assertThat(table.primaryRowCounts()).containsExactly(Map.entry(one.get(0), 64));
  }

  @Test
  void rowsHoldDistinctBackendsAndCountsAddUp() {
    List<Backend> backends = TestBackends.ipv6(new Random(2), 7);
    RendezvousTable table = RendezvousTableBuilder.build(TableSpec.of(SEED, 14, 4), backends);
    assertThat(table.backends()).containsExactlyElementsOf(backends);
    for (int row = 0; row < table.rowCount(); row++) {
      int[] hops = table.hops(row);
      assertThat(hops).hasSize(4).doesNotHaveDuplicates();
      for (int h = 0; h < 4; h++) {
        assertThat(table.hop(row, h)).isEqualTo(hops[h]);
      }
    }
    assertThat(table.primaryRowCounts().values().stream().mapToInt(Integer::intValue).sum())
        .isEqualTo(table.rowCount());
  }

  @Test
  void largestTableBuildsWithFourHops() {
    List<Backend> backends = TestBackends.ipv4(new Random(3), 8);
    RendezvousTable table =
        RendezvousTableBuilder.build(
            TableSpec.of(SEED, TableSpec.MAX_ROW_BITS, TableSpec.MAX_HOPS), backends);
    assertThat(table.rowCount()).isEqualTo(1 << 20);
    assertThat(table.hops((1 << 20) - 1)).hasSize(4).doesNotHaveDuplicates();
  }

  @Test
  void fillingIsPlacedExactlyLikeActive() {
    List<Backend> backends = new java.util.ArrayList<>(TestBackends.ipv4(new Random(4), 12));
    TableSpec spec = TableSpec.of(SEED, 12, 3);
    RendezvousTable active = RendezvousTableBuilder.build(spec, backends);
    backends.set(5, backends.get(5).withState(BackendState.FILLING));
    RendezvousTable filling = RendezvousTableBuilder.build(spec, backends);
    for (int row = 0; row < spec.rowCount(); row++) {
      assertThat(filling.hops(row)).containsExactly(active.hops(row));
    }
  }
}
