package dev.veer.testbed.survival;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The survival scenarios CI runs (the rest run with {@code ./veer survival}): 1,000 long-lived
 * connections, a request every 100 ms each, through adding a proxy, draining and then removing
 * one, taking a director out of the ECMP set, and SIGKILLing a director daemon's process and a
 * proxy agent's. Not one connection may break.
 */
class SurvivalTest {
  @Test
  void noConnectionBreaksWhenProxiesComeAndGoOrDaemonsDie() throws Exception {
    List<SurvivalSuite.Outcome> outcomes;
    try (SurvivalSuite suite = SurvivalSuite.start(1000)) {
      outcomes = suite.runCi();
      if (outcomes.stream().allMatch(o -> o.broken() == 0)) {
        suite.deleteLogs();
      } else {
        System.out.println("the daemons' logs are in " + suite.logs());
      }
    }
    System.out.print(SurvivalSuite.table(outcomes));
    assertThat(outcomes).hasSize(5).allSatisfy(o -> {
      assertThat(o.broken()).as(o.scenario()).isZero();
      assertThat(o.answered()).as(o.scenario()).isGreaterThan(o.connections() * 10L);
    });
  }
}
