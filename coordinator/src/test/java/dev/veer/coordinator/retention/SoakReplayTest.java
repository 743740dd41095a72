package dev.veer.coordinator.retention;

import static dev.veer.proto.types.v1.BackendState.ACTIVE;
import static dev.veer.proto.types.v1.BackendState.DRAINING;
import static dev.veer.proto.types.v1.BackendState.FILLING;
import static dev.veer.proto.types.v1.BackendState.INACTIVE;
import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * The rolling maintenance that broke connections in a 25-minute soak (issue 10), replayed through
 * the real state transitions and builder: four proxies, a change every "two minutes", 50 long-lived
 * connections per proxy's worth of rows, and new short connections all along.
 */
class SoakReplayTest {
  private static final String A = "192.0.2.134";
  private static final String B = "192.0.2.138";
  private static final String C = "192.0.2.142";
  private static final String D = "192.0.2.146";

  @Test
  void rollingMaintenanceStrandsNoFlow() {
    FlowModel model = replay(0);
    assertThat(model.stranded).as("flows stranded by the soak's sequence").isEqualTo(0);
    assertThat(model.unreachable()).isEqualTo(0);
    assertThat(model.maxRowsOutOfHops).isEqualTo(0);
    assertThat(model.table().encoded()).isEqualTo(model.freshTable().encoded());
  }

  /** The same sequence with retention as a guess (3 generations, no evidence) breaks flows. */
  @Test
  void theOldRuleFailsTheSameReplay() {
    FlowModel model = replay(3);
    assertThat(model.stranded).as("flows the old rule strands").isGreaterThan(0);
  }

  private static FlowModel replay(int legacyGenerations) {
    FlowModel model = new FlowModel(16, 10, legacyGenerations);
    model.addBackend(A, ACTIVE);
    model.addBackend(B, INACTIVE);
    model.addBackend(C, ACTIVE);
    model.addBackend(D, FILLING);
    settle(model);
    model.connect(200, true);
    settle(model);

    model.remove(B, false);
    settle(model);
    model.setState(D, ACTIVE);
    settle(model);
    model.setState(A, DRAINING);
    settle(model);
    model.addBackend(B, FILLING);
    settle(model);
    model.setState(A, ACTIVE);
    settle(model);
    model.setState(B, ACTIVE);
    settle(model);
    model.setState(C, DRAINING);
    settle(model);
    model.setState(C, ACTIVE);
    settle(model);
    model.setState(B, DRAINING);
    settle(model);
    model.setState(B, ACTIVE);
    settle(model);
    model.setState(A, DRAINING);
    settle(model);
    model.setState(A, ACTIVE);
    settle(model);
    return model;
  }

  /**
   * Two minutes between changes: short connections arrive, some before the directors take the new
   * table; the proxies report (some once, some several times); short connections end.
   */
  private static void settle(FlowModel model) {
    model.connect(100, false);
    model.ack();
    for (int round = 0; round < 4; round++) {
      model.connect(100, false);
      model.reportAll();
      model.end(0.5);
    }
  }
}
