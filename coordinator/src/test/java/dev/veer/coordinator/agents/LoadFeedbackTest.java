package dev.veer.coordinator.agents;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.admin.Services;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ClusterState;
import dev.veer.proto.state.v1.ServiceState;
import dev.veer.proto.types.v1.BackendState;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class LoadFeedbackTest {
  private static ByteString address(int i) {
    return Addresses.bytes(InetAddresses.forString("198.51.100." + i));
  }

  private static ServiceState service(int minPercent, int... percents) {
    ServiceState.Builder s =
        ServiceState.newBuilder()
            .setName("web")
            .setLoadFeedback(
                dev.veer.proto.types.v1.LoadFeedback.newBuilder()
                    .setEnabled(true)
                    .setMinPercent(minPercent));
    for (int i = 0; i < percents.length; i++) {
      s.addBackends(
          BackendRecord.newBuilder()
              .setAddress(address(i + 1))
              .setState(BackendState.ACTIVE)
              .setWeight(100)
              .setLoadPercent(percents[i] == 100 ? 0 : percents[i]));
    }
    return s.build();
  }

  private static AgentReports live(long... connections) {
    List<AgentStatus> agents = new ArrayList<>();
    for (int i = 0; i < connections.length; i++) {
      agents.add(
          AgentStatus.newBuilder()
              .setId("proxy-" + (i + 1))
              .addAddresses("198.51.100." + (i + 1))
              .addServices(
                  AgentServiceStatus.newBuilder()
                      .setService("web")
                      .setLiveConnections(connections[i]))
              .build());
    }
    return AgentReports.of(agents);
  }

  @Test
  void aBackendHoldingMoreConnectionsPerWeightLosesOneStepAndTheOthersHoldStill() {
    // Mean 20 a backend: 50 is 2.5x, 5 and 5 are 0.25x but already at 100%.
    var steps = LoadFeedback.steps(service(0, 100, 100, 100), live(50, 5, 5));
    assertThat(steps).containsExactly(java.util.Map.entry(address(1), 100 - LoadFeedback.STEP));
  }

  @Test
  void itGoesNoLowerThanTheFloorAndComesBackAStepAtATimeWhenTheLoadPasses() {
    assertThat(LoadFeedback.steps(service(30, 35, 100, 100), live(50, 5, 5)))
        .containsExactly(java.util.Map.entry(address(1), 30));
    assertThat(LoadFeedback.steps(service(30, 30, 100, 100), live(50, 5, 5))).isEmpty();
    assertThat(LoadFeedback.steps(service(30, 30, 100, 100), live(3, 10, 10)))
        .containsExactly(java.util.Map.entry(address(1), 30 + LoadFeedback.STEP));
    // The default floor.
    assertThat(LoadFeedback.steps(service(0, 30, 100, 100), live(50, 5, 5)))
        .containsExactly(java.util.Map.entry(address(1), Services.DEFAULT_MIN_LOAD_PERCENT));
  }

  @Test
  void withinTheHysteresisBandOrWithoutEnoughConnectionsNothingMoves() {
    // 13/10 of the mean: between RAISE_BELOW and LOWER_ABOVE.
    assertThat(LoadFeedback.steps(service(0, 55, 100, 100), live(13, 9, 8))).isEmpty();
    assertThat(LoadFeedback.steps(service(0, 100, 100, 100), live(6, 1, 0))).isEmpty();
    // One reporting backend: nothing to compare with.
    assertThat(LoadFeedback.steps(service(0, 100, 100, 100), live(50))).isEmpty();
  }

  @Test
  void aServiceStepsAtMostOncePerIntervalAndOnlyWithFeedbackOn() {
    LoadFeedback feedback = new LoadFeedback();
    ServiceState on = service(0, 100, 100, 100);
    ServiceState off = on.toBuilder().setName("api").clearLoadFeedback().build();
    ClusterState state = ClusterState.newBuilder().addServices(off).addServices(on).build();
    AgentReports reports = live(50, 5, 5);
    assertThat(feedback.due(state, reports, 1_000)).containsOnlyKeys("web");
    feedback.stepped("web", 1_000);
    assertThat(feedback.due(state, reports, 1_000 + LoadFeedback.INTERVAL.toMillis() - 1))
        .isEmpty();
    assertThat(feedback.due(state, reports, 1_000 + LoadFeedback.INTERVAL.toMillis()))
        .containsOnlyKeys("web");
  }

  @Test
  void aStepIsATableChangeThatKeepsThePreviousPrimaries() {
    ClusterState state =
        ClusterState.newBuilder().setVersion(7).addServices(service(0, 100, 100, 100)).build();
    ClusterState stepped =
        Services.setLoadPercents(state, "web", java.util.Map.of(address(1), 85), 1_000);
    ServiceState web = stepped.getServices(0);
    assertThat(Services.effectiveWeight(web.getBackends(0))).isEqualTo(85);
    assertThat(web.getGenerationsCount()).isEqualTo(1);
    assertThat(web.getTableVersion()).isEqualTo(8);
  }
}
