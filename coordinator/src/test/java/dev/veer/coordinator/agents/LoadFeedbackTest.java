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
import java.util.Map;
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

  private static AgentReports live(long... waiting) {
    List<AgentStatus> agents = new ArrayList<>();
    for (int i = 0; i < waiting.length; i++) {
      agents.add(
          AgentStatus.newBuilder()
              .setId("proxy-" + (i + 1))
              .addAddresses("198.51.100." + (i + 1))
              .addServices(AgentServiceStatus.newBuilder().setService("web").setWaiting(waiting[i]))
              .build());
    }
    return AgentReports.of(agents);
  }

  @Test
  void loadsAreWaitingConnectionsPerUnitOfWeightOverTheMeanAndZeroWhenFewWait() {
    var loads = LoadFeedback.loads(service(0, 100, 100, 100), live(50, 5, 5));
    assertThat(loads.get(address(1))).isEqualTo(2.5);
    assertThat(loads.get(address(2))).isEqualTo(0.25);
    assertThat(LoadFeedback.loads(service(0, 100, 100, 100), live(4, 2, 1)).values())
        .containsOnly(0.0);
    // One reporting backend: nothing to compare with.
    assertThat(LoadFeedback.loads(service(0, 100, 100, 100), live(50))).isEmpty();
  }

  @Test
  void aLoadedBackendStepsTowardTheMeanByAtMostOneStepAndNoLowerThanTheFloor() {
    ServiceState web = service(30, 100, 100, 100);
    // Load 2.5 wants 40%: one step of 15 is the most a round moves.
    assertThat(LoadFeedback.steps(web, Map.of(address(1), 2.5, address(2), 0.9)))
        .containsExactly(Map.entry(address(1), 100 - LoadFeedback.STEP));
    // Load 1.1 at 50% wants 45%: inside the band, it holds.
    assertThat(LoadFeedback.steps(service(30, 50, 100, 100), Map.of(address(1), 1.1))).isEmpty();
    // Load 1.6 at 35% wants 22%: a smaller step than the most, exactly there.
    assertThat(LoadFeedback.steps(service(20, 35, 100, 100), Map.of(address(1), 1.6)))
        .containsExactly(Map.entry(address(1), 22));
    // The floor: the operator's, else 25.
    assertThat(LoadFeedback.steps(service(30, 35, 100, 100), Map.of(address(1), 3.0)))
        .containsExactly(Map.entry(address(1), 30));
    assertThat(LoadFeedback.steps(service(0, 30, 100, 100), Map.of(address(1), 3.0)))
        .containsExactly(Map.entry(address(1), Services.DEFAULT_MIN_LOAD_PERCENT));
  }

  @Test
  void aRecoveredBackendComesBackAStepAtATimeUpToItsWholeWeight() {
    assertThat(LoadFeedback.steps(service(0, 25, 100, 100), Map.of(address(1), 0.3)))
        .containsExactly(Map.entry(address(1), 25 + LoadFeedback.STEP));
    assertThat(LoadFeedback.steps(service(0, 95, 100, 100), Map.of(address(1), 0.5)))
        .containsExactly(Map.entry(address(1), 100));
    assertThat(LoadFeedback.steps(service(0, 100, 100, 100), Map.of(address(1), 0.1))).isEmpty();
  }

  @Test
  void loadsAreSmoothedAndAServiceStepsAtMostOncePerIntervalAndOnlyWithFeedbackOn() {
    LoadFeedback feedback = new LoadFeedback();
    ServiceState on = service(0, 100, 100, 100);
    ServiceState off = on.toBuilder().setName("api").clearLoadFeedback().build();
    ClusterState state = ClusterState.newBuilder().addServices(off).addServices(on).build();
    // Even first: nothing due. Then one sample of a loaded backend (2.86) is smoothed: 1 + 0.3 x
    // 1.86 = 1.56, above the band, so it steps.
    assertThat(feedback.due(state, live(10, 10, 10), 0)).isEmpty();
    long later = LoadFeedback.SAMPLE.toMillis();
    var due = feedback.due(state, live(200, 5, 5), later);
    assertThat(due).containsOnlyKeys("web");
    assertThat(due.get("web")).containsOnlyKeys(address(1));
    feedback.stepped("web", later);
    assertThat(feedback.due(state, live(200, 5, 5), later + LoadFeedback.INTERVAL.toMillis() - 1))
        .isEmpty();
    assertThat(feedback.due(state, live(200, 5, 5), later + LoadFeedback.INTERVAL.toMillis()))
        .containsOnlyKeys("web");
  }

  @Test
  void aStepIsATableChangeThatKeepsThePreviousPrimaries() {
    ClusterState state =
        ClusterState.newBuilder().setVersion(7).addServices(service(0, 100, 100, 100)).build();
    ClusterState stepped = Services.setLoadPercents(state, "web", Map.of(address(1), 85), 1_000);
    ServiceState web = stepped.getServices(0);
    assertThat(Services.effectiveWeight(web.getBackends(0))).isEqualTo(85);
    assertThat(web.getGenerationsCount()).isEqualTo(1);
    assertThat(web.getTableVersion()).isEqualTo(8);
  }
}
