package dev.veer.coordinator.table;

import static dev.veer.coordinator.table.GenerationPropertyTest.hopAddresses;
import static dev.veer.coordinator.table.GenerationPropertyTest.primaryAddress;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** What flow evidence and confirmed generations do to a table's rows. */
class EvidenceRetentionTest {
  private static final byte[] SEED = TestBackends.seed(new Random(31));
  private static final TableSpec SPEC = TableSpec.of(SEED, 10, 2);

  @Test
  void evidenceKeepsABackendInExactlyTheRowsItNames() {
    List<Backend> backends = TestBackends.ipv4(new Random(32), 6);
    RendezvousTable plain = RendezvousTableBuilder.build(SPEC, backends);
    InetAddress owner = backends.get(0).address();
    List<Integer> named = new ArrayList<>();
    for (int row = 0; row < SPEC.rowCount() && named.size() < 20; row++) {
      if (!hopAddresses(plain, row).contains(owner)) {
        named.add(row);
      }
    }
    RowSet rows = RowSet.ofSorted(named.stream().mapToInt(Integer::intValue).toArray());
    RendezvousTable table =
        new TableBuilder()
            .build(SPEC, backends, TableHistory.builder().evidence(owner, rows).build());
    for (int row = 0; row < SPEC.rowCount(); row++) {
      List<InetAddress> hops = hopAddresses(table, row);
      assertThat(hops.getFirst()).isEqualTo(primaryAddress(plain, row));
      if (rows.contains(row)) {
        // the owner takes the second slot: a row holds max(hop count, what retention needs)
        assertThat(hops).as("row %s", row).hasSize(2).element(1).isEqualTo(owner);
      } else {
        assertThat(hops).as("row %s", row).isEqualTo(hopAddresses(plain, row));
      }
    }
    assertThat(table.rowsOutOfHops()).isZero();
  }

  @Test
  void aConfirmedBackendIsKeptByItsEvidenceNotByTheGeneration() {
    List<Backend> before = TestBackends.ipv4(new Random(33), 6);
    List<Backend> after = new ArrayList<>(before);
    after.set(0, before.get(0).withState(BackendState.DRAINING));
    after.set(1, before.get(1).withState(BackendState.INACTIVE));
    InetAddress confirmed = before.get(0).address();
    InetAddress unconfirmed = before.get(1).address();
    RendezvousTable old = RendezvousTableBuilder.build(SPEC, before);
    int keptRow = -1;
    for (int row = 0; row < SPEC.rowCount() && keptRow < 0; row++) {
      if (primaryAddress(old, row).equals(confirmed)) {
        keptRow = row;
      }
    }
    RendezvousTable table =
        new TableBuilder()
            .build(
                SPEC,
                after,
                TableHistory.builder()
                    .addGeneration(before, Set.of(confirmed))
                    .evidence(confirmed, RowSet.of(keptRow))
                    .build());
    for (int row = 0; row < SPEC.rowCount(); row++) {
      InetAddress previous = primaryAddress(old, row);
      List<InetAddress> hops = hopAddresses(table, row);
      if (previous.equals(unconfirmed)) {
        assertThat(hops).as("row %s: unconfirmed, kept by the generation", row).contains(previous);
      } else if (previous.equals(confirmed)) {
        // Draining keeps it among its k candidates where it ranks high enough; beyond those,
        // only the evidence may keep it.
        boolean candidate =
            hopAddresses(RendezvousTableBuilder.build(SPEC, after), row).contains(previous);
        assertThat(hops.contains(previous))
            .as("row %s", row)
            .isEqualTo(candidate || row == keptRow);
      }
    }
    assertThat(hopAddresses(table, keptRow)).contains(confirmed);
  }

  @Test
  void aRowWithMoreOwnersThanHopsIsCountedAndKeepsTheNewest() {
    List<Backend> backends = TestBackends.ipv4(new Random(34), 8);
    TableSpec spec = TableSpec.of(SEED, 6, 1);
    int row = 9;
    List<Backend> ranking = new ReferenceRows(spec).ranking(row, backends);
    // Five backends besides the primary report flows in the row: three fit, two do not.
    TableHistory.Builder history = TableHistory.builder();
    for (int i = 1; i <= 5; i++) {
      history.evidence(ranking.get(i).address(), RowSet.of(row));
    }
    RendezvousTable table = new TableBuilder().build(spec, backends, history.build());
    assertThat(table.rowsOutOfHops()).isEqualTo(1);
    assertThat(table.rowLength(row)).isEqualTo(TableSpec.MAX_HOPS);
    assertThat(hopAddresses(table, row).getFirst()).isEqualTo(ranking.get(0).address());
  }

  @Test
  void evidenceBeyondTheTableIsRefused() {
    List<Backend> backends = TestBackends.ipv4(new Random(35), 3);
    TableHistory history =
        TableHistory.builder()
            .evidence(backends.get(0).address(), RowSet.of(SPEC.rowCount()))
            .build();
    assertThatThrownBy(() -> new TableBuilder().build(SPEC, backends, history))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("beyond the table");
  }
}
