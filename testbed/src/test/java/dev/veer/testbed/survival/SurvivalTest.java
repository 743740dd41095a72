package dev.veer.testbed.survival;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Every survival scenario, under 1,000 long-lived connections each sending a request every 100 ms:
 * proxies added, drained and removed, a rolling restart of every proxy and a random walk of 20
 * changes (both at a tenth of their full timing), directors added, removed, restarted and killed,
 * an agent, the leader coordinator and a ZooKeeper node killed, and the leader killed during a
 * rolling change on a cluster of 1,000 services. Not one connection may break, except those a
 * scenario takes away on purpose: a dead service's, and the black-holed proxy's of the control,
 * which proves the count sees a connection whose packets are silently dropped.
 */
class SurvivalTest {
  @Test
  void noConnectionBreaksWhateverChangesAndDeadServicesAndBlackHolesBreakExactlyTheirs()
      throws Exception {
    List<SurvivalSuite.Outcome> outcomes;
    // The scenarios of many changes at a tenth of the timing: about two minutes together.
    try (SurvivalSuite suite = SurvivalSuite.start(1000, 0.1)) {
      outcomes = suite.run("");
      if (outcomes.stream().allMatch(SurvivalSuite.Outcome::kept)) {
        suite.deleteLogs();
      } else {
        System.out.println("the daemons' logs are in " + suite.logs());
      }
    }
    System.out.print(SurvivalSuite.table(outcomes));
    assertThat(outcomes)
        .hasSize(20)
        .allSatisfy(
            o -> {
              assertThat(o.broken()).as(o.scenario()).isEqualTo(o.expectedBroken());
              assertThat(o.answered()).as(o.scenario()).isGreaterThan(o.connections() * 10L);
            });
    assertThat(outcomes)
        .filteredOn(o -> o.scenario().startsWith("black-hole"))
        .singleElement()
        .satisfies(o -> assertThat(o.expectedBroken()).isPositive());
  }
}
