package dev.veer.coordinator.table;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The state rules with health: an unhealthy backend is placed like an inactive one. */
class HealthAndStatesTest {
  private static final byte[] SEED = TestBackends.seed(new Random(11));

  @Test
  void backendsAreHealthyByDefault() {
    Backend b = Backend.of("10.0.0.1", BackendState.ACTIVE);
    assertThat(b.healthy()).isTrue();
    assertThat(b.isEligible()).isTrue();
    assertThat(Backend.active(b.address()).healthy()).isTrue();
    assertThat(new Backend(b.address(), BackendState.DRAINING).healthy()).isTrue();

    Backend sick = b.withHealthy(false);
    assertThat(sick.isEligible()).isFalse();
    assertThat(sick.withState(BackendState.FILLING).healthy()).isFalse();
    assertThat(sick.withHealthy(true)).isEqualTo(b);
    assertThat(b.withHealthy(true)).isSameAs(b);
    assertThat(sick).hasToString("10.0.0.1(active, unhealthy)");
    assertThat(b).hasToString("10.0.0.1(active)");
    assertThat(b.withState(BackendState.DRAINING).isEligible()).isFalse();
  }

  @Test
  void anUnhealthyBackendIsPlacedExactlyLikeAnInactiveOne() {
    for (int hops = 1; hops <= 4; hops++) {
      for (BackendState state : BackendState.values()) {
        List<Backend> backends = new ArrayList<>(TestBackends.ipv4(new Random(hops), 12));
        TableSpec spec = TableSpec.of(SEED, 10, hops);
        List<Backend> inactive = new ArrayList<>(backends);
        inactive.set(3, backends.get(3).withState(BackendState.INACTIVE));
        inactive.set(7, backends.get(7).withState(BackendState.INACTIVE));
        List<Backend> unhealthy = new ArrayList<>(backends);
        unhealthy.set(3, backends.get(3).withState(state).withHealthy(false));
        unhealthy.set(7, backends.get(7).withHealthy(false));
        assertThat(RendezvousTableBuilder.build(spec, unhealthy).encoded())
            .as("%s hops, %s", hops, state)
            .isEqualTo(RendezvousTableBuilder.build(spec, inactive).encoded());
      }
    }
  }

  @Test
  void unhealthyBackendsAreNeverPrimaryWhileAHealthyEligibleOneExists() {
    List<Backend> backends = new ArrayList<>(TestBackends.ipv6(new Random(5), 20));
    for (int i = 0; i < 19; i++) {
      backends.set(i, backends.get(i).withHealthy(false));
    }
    RendezvousTable table = RendezvousTableBuilder.build(TableSpec.of(SEED, 10, 3), backends);
    for (int row = 0; row < table.rowCount(); row++) {
      assertThat(table.primary(row)).isEqualTo(19);
      assertThat(table.hops(row)).hasSize(3); // kept as later hops, never the only one
    }
    assertThat(table.primaryRowCounts().get(backends.get(19))).isEqualTo(table.rowCount());
  }

  @Test
  void withNothingHealthyTheRowsStillHaveHops() {
    List<Backend> backends = new ArrayList<>(TestBackends.ipv4(new Random(6), 5));
    backends.replaceAll(b -> b.withHealthy(false));
    RendezvousTable sick = RendezvousTableBuilder.build(TableSpec.of(SEED, 8, 2), backends);
    backends.replaceAll(b -> b.withHealthy(true));
    RendezvousTable healthy = RendezvousTableBuilder.build(TableSpec.of(SEED, 8, 2), backends);
    assertThat(sick.encoded()).isEqualTo(healthy.encoded());
  }

  @Test
  void aDrainingBackendIsBehindEveryEligibleOneButStaysInItsRows() {
    List<Backend> backends = new ArrayList<>(TestBackends.ipv4(new Random(7), 6));
    TableSpec spec = TableSpec.of(SEED, 10, 4);
    RendezvousTable before = RendezvousTableBuilder.build(spec, backends);
    backends.set(2, backends.get(2).withState(BackendState.DRAINING));
    RendezvousTable after = RendezvousTableBuilder.build(spec, backends);
    for (int row = 0; row < spec.rowCount(); row++) {
      int[] hops = after.hops(row);
      assertThat(hops).containsExactlyInAnyOrder(before.hops(row));
      if (contains(hops, 2)) {
        assertThat(hops[hops.length - 1]).as("row %s", row).isEqualTo(2);
      }
    }
  }

  private static boolean contains(int[] values, int value) {
    for (int v : values) {
      if (v == value) {
        return true;
      }
    }
    return false;
  }
}
