package dev.veer.coordinator.table;

import static dev.veer.coordinator.table.GenerationPropertyTest.hopAddresses;
import static dev.veer.coordinator.table.GenerationPropertyTest.primaryAddress;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Previous generations' primaries as later hops, and the table's shape and encoding. */
class RetentionTest {
  private static final byte[] SEED = TestBackends.seed(new Random(21));

  @Test
  void twoSimultaneousAdditionsLoseNoPreviousPrimary() {
    List<Backend> all = TestBackends.ipv4(new Random(22), 12);
    List<Backend> before = all.subList(0, 10);
    TableSpec spec = TableSpec.of(SEED, 14, 2);
    RendezvousTable old = RendezvousTableBuilder.build(spec, before);

    RendezvousTable glb = RendezvousTableBuilder.build(spec, all);
    RendezvousTable veer = new TableBuilder().build(spec, all, List.of(before));
    int lostByGlb = 0;
    for (int row = 0; row < spec.rowCount(); row++) {
      InetAddress previous = primaryAddress(old, row);
      lostByGlb += hopAddresses(glb, row).contains(previous) ? 0 : 1;
      // same primary as without history, the previous one right behind it if it changed
      assertThat(veer.primary(row)).isEqualTo(glb.primary(row));
      List<InetAddress> hops = hopAddresses(veer, row);
      assertThat(hops).hasSize(2);
      if (!hops.getFirst().equals(previous)) {
        assertThat(hops.get(1)).as("row %s", row).isEqualTo(previous);
      }
    }
    // both newcomers outrank the old primary in about 1 row in 66: GLB loses those
    assertThat(lostByGlb).isGreaterThan(100);
  }

  @Test
  void newestGenerationsWinWhenRetentionNeedsMoreThanFourHops() {
    List<Backend> backends = TestBackends.ipv6(new Random(23), 8);
    TableSpec spec = TableSpec.of(SEED, 6, 1);
    int row = 5;
    List<Backend> ranking = new ReferenceRows(spec).ranking(row, backends);
    // generation g drains the first g backends of the row's ranking: its primary is the (g+1)-th
    List<List<Backend>> generations = new ArrayList<>();
    for (int g = 0; g < 5; g++) {
      List<Backend> generation = new ArrayList<>(backends);
      for (int i = 0; i < g; i++) {
        int at = backends.indexOf(ranking.get(i));
        generation.set(at, backends.get(at).withState(BackendState.DRAINING));
      }
      generations.add(generation);
    }
    List<Backend> current = generations.get(4);
    List<List<Backend>> previous = new ArrayList<>(generations.subList(0, 4));
    Collections.reverse(previous); // newest first

    RendezvousTable table = new TableBuilder().build(spec, current, previous);

    assertThat(hopAddresses(table, row))
        .containsExactly(
            ranking.get(4).address(),
            ranking.get(3).address(),
            ranking.get(2).address(),
            ranking.get(1).address()); // the oldest, ranking.get(0), did not fit
    assertThat(table.rowLength(row)).isEqualTo(TableSpec.MAX_HOPS);
    assertThat(table.hopCount()).isEqualTo(1);
  }

  @Test
  void primariesOfBackendsThatAreGoneAreNotKept() {
    List<Backend> before = TestBackends.ipv4(new Random(24), 8);
    List<Backend> after = before.subList(1, 8);
    TableSpec spec = TableSpec.of(SEED, 10, 2);
    RendezvousTable table = new TableBuilder().build(spec, after, List.of(before));
    assertThat(table.encoded()).isEqualTo(RendezvousTableBuilder.build(spec, after).encoded());
  }

  @Test
  void rowsAreTheHopCountLongUnlessRetentionNeedsMore() {
    List<Backend> pool = TestBackends.ipv4(new Random(25), 13);
    List<Backend> g2 = pool.subList(0, 10);
    List<Backend> g1 = pool.subList(0, 11);
    List<Backend> current = pool.subList(0, 13);
    TableSpec spec = TableSpec.of(SEED, 12, 2);
    RendezvousTable table = new TableBuilder().build(spec, current, List.of(g1, g2));
    RendezvousTable t1 = RendezvousTableBuilder.build(spec, g1);
    RendezvousTable t2 = RendezvousTableBuilder.build(spec, g2);
    int longer = 0;
    for (int row = 0; row < spec.rowCount(); row++) {
      List<InetAddress> kept = new ArrayList<>(List.of(primaryAddress(table, row)));
      for (RendezvousTable t : List.of(t1, t2)) {
        if (!kept.contains(primaryAddress(t, row))) {
          kept.add(primaryAddress(t, row));
        }
      }
      List<InetAddress> hops = hopAddresses(table, row);
      assertThat(hops).hasSize(Math.max(2, kept.size()));
      assertThat(hops.subList(0, kept.size())).containsExactlyElementsOf(kept);
      longer += hops.size() > 2 ? 1 : 0;
    }
    assertThat(longer).isPositive();
  }

  @Test
  void theTableDependsOnTheInputsOnly() {
    Random random = new Random(26);
    List<Backend> pool = TestBackends.ipv4(random, 30);
    TableSpec spec = TableSpec.of(SEED, 12, 3);
    List<Backend> current = new ArrayList<>(pool.subList(3, 30));
    current.set(4, current.get(4).withState(BackendState.DRAINING));
    List<Backend> previous1 = new ArrayList<>(pool.subList(2, 29));
    List<Backend> previous2 = new ArrayList<>(pool.subList(0, 28));
    RendezvousTable reference =
        new TableBuilder().build(spec, current, List.of(previous1, previous2));

    // another builder with another history, previous lists in another order
    TableBuilder seasoned = new TableBuilder();
    seasoned.build(spec, pool.subList(10, 20), List.of());
    seasoned.build(TableSpec.of(SEED, 12, 1), pool, List.of(pool.subList(1, 5)));
    Collections.shuffle(previous1, random);
    Collections.shuffle(previous2, random);
    assertThat(seasoned.build(spec, current, List.of(previous1, previous2)).encoded())
        .isEqualTo(reference.encoded());

    // the current list's order only names the backends
    List<Backend> shuffled = new ArrayList<>(current);
    Collections.shuffle(shuffled, random);
    RendezvousTable renamed = seasoned.build(spec, shuffled, List.of(previous1, previous2));
    for (int row = 0; row < spec.rowCount(); row++) {
      assertThat(hopAddresses(renamed, row)).isEqualTo(hopAddresses(reference, row));
    }
  }

  @Test
  void encodingCountsAndShape() {
    List<Backend> pool = TestBackends.ipv4(new Random(27), 9);
    List<Backend> current = pool.subList(0, 9);
    List<Backend> before = pool.subList(0, 7);
    TableSpec spec = TableSpec.of(SEED, 10, 2);
    RendezvousTable table = new TableBuilder().build(spec, current, List.of(before));
    char[] cells = table.encoded();
    assertThat(cells).hasSize(spec.rowCount() * RendezvousTable.ROW_CELLS);
    int[] primary = new int[9];
    int[] second = new int[9];
    for (int row = 0; row < spec.rowCount(); row++) {
      int[] hops = table.hops(row);
      assertThat(table.rowLength(row)).isEqualTo(hops.length).isBetween(2, 3);
      for (int h = 0; h < RendezvousTable.ROW_CELLS; h++) {
        int expected = h < hops.length ? hops[h] + 1 : 0;
        assertThat((int) cells[row * RendezvousTable.ROW_CELLS + h]).isEqualTo(expected);
        assertThat(table.hop(row, h)).isEqualTo(expected - 1);
      }
      primary[hops[0]]++;
      second[hops[1]]++;
    }
    for (int b = 0; b < 9; b++) {
      assertThat(table.primaryRowCounts().get(current.get(b))).isEqualTo(primary[b]);
      assertThat(table.secondaryRowCounts().get(current.get(b))).isEqualTo(second[b]);
    }
    cells[0] = 0;
    assertThat((int) table.encoded()[0]).isNotZero(); // a copy
  }

  @Test
  void generationsAreValidated() {
    List<Backend> v4 = List.of(Backend.of("10.0.0.1", BackendState.ACTIVE));
    List<Backend> v6 = List.of(Backend.of("2001:db8::1", BackendState.ACTIVE));
    List<Backend> twice =
        List.of(
            Backend.of("10.0.0.2", BackendState.ACTIVE),
            Backend.of("10.0.0.2", BackendState.DRAINING));
    TableSpec spec = TableSpec.of(SEED, 4, 2);
    TableBuilder builder = new TableBuilder();
    assertThatThrownBy(() -> builder.build(spec, v4, List.of(v4, twice)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("previous generation #2: duplicate backend address 10.0.0.2");
    assertThatThrownBy(() -> builder.build(spec, v4, List.of(List.of(), v6)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("same address family")
        .hasMessageContaining("the current generation is IPv4 and previous generation #2 is IPv6");
    assertThatThrownBy(() -> builder.build(spec, v4, Collections.nCopies(9, v4)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("at most 8 previous generations, got 9");
    // an empty current list: rows without hops, whatever came before
    RendezvousTable empty = builder.build(spec, List.of(), List.of(v6));
    assertThat(empty.rowLength(0)).isZero();
    assertThat(empty.primary(0)).isEqualTo(-1);
  }
}
