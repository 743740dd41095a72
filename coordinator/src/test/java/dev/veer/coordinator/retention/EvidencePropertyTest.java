package dev.veer.coordinator.retention;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.types.v1.BackendState;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Random sequences of additions, drains, activations, deactivations and removals, with directors
 * that take new tables late (several changes late, at times), proxies that report at random (some
 * stay silent for a while), and random flows, long and short. Whatever happens, no change strands a
 * flow unless it was forced (a backend with flows removed) or a row ran out of hops, and then the
 * flows counted from the proxies' reports are exactly the ones stranded (checked inside {@link
 * FlowModel} at every transition). Prints its seed; {@code -Dveer.retention.seed=N} replays it.
 */
class EvidencePropertyTest {
  private static final int TRIALS = 24;
  private static final int STEPS = 40;

  @Test
  void noUnforcedChangeStrandsAFlow() {
    long seed = Long.getLong("veer.retention.seed", new Random().nextLong());
    System.out.println("EvidencePropertyTest seed " + seed + " (-Dveer.retention.seed to replay)");
    Random trials = new Random(seed);
    long forced = 0;
    long outOfHops = 0;
    long staleTransitions = 0;
    for (int t = 0; t < TRIALS; t++) {
      long trialSeed = trials.nextLong();
      FlowModel model = new FlowModel(10, trialSeed, 0);
      Random random = model.random;
      List<String> pool = new ArrayList<>();
      for (int i = 1; i <= 10; i++) {
        pool.add("198.51.100." + i);
      }
      for (int i = 0; i < 4; i++) {
        model.addBackend(pool.get(i), BackendState.ACTIVE);
      }
      model.ack();
      model.connect(300, true);
      for (int step = 0; step < STEPS; step++) {
        long before = model.stranded;
        int rowsOutOfHopsBefore = model.table().rowsOutOfHops();
        change(model, random, pool);
        if (model.stranded > before) {
          assertThat(model.table().rowsOutOfHops())
              .as(
                  "trial seed %s step %s: an unforced change stranded %s flows with no row out of"
                      + " hops",
                  trialSeed, step, model.stranded - before)
              .isGreaterThan(0);
          outOfHops += model.stranded - before;
        }
        if (rowsOutOfHopsBefore > 0 || random.nextInt(3) > 0) {
          model.ack();
        } else {
          staleTransitions++;
        }
        model.connect(random.nextInt(60), random.nextBoolean());
        for (ByteString b : model.backends()) {
          if (random.nextInt(4) > 0) {
            model.report(List.of(b));
          }
        }
        model.end(random.nextDouble());
      }
      forced += model.strandedByForce;
      assertThat(model.table().encoded())
          .as("trial seed %s: incremental table equals a fresh build", trialSeed)
          .isEqualTo(model.freshTable().encoded());
    }
    System.out.printf(
        "EvidencePropertyTest: %d flows stranded by forced removals, %d in rows out of hops,"
            + " %d changes the directors took late%n",
        forced, outOfHops, staleTransitions);
    assertThat(forced).as("some trial forced a removal of a backend with flows").isGreaterThan(0);
    assertThat(staleTransitions).as("some directors took a table late").isGreaterThan(0);
  }

  private static void change(FlowModel model, Random random, List<String> pool) {
    List<BackendRecord> backends = model.service().getBackendsList();
    List<String> absent = new ArrayList<>(pool);
    backends.forEach(b -> absent.remove(Addresses.literal(b.getAddress())));
    int op = random.nextInt(10);
    if ((op == 0 || backends.size() < 3) && !absent.isEmpty()) {
      model.addBackend(
          absent.get(random.nextInt(absent.size())),
          random.nextBoolean() ? BackendState.FILLING : BackendState.ACTIVE);
      return;
    }
    String target = Addresses.literal(backends.get(random.nextInt(backends.size())).getAddress());
    if (op == 1 && backends.size() > 3) {
      model.remove(target, model.flowsOf(target) > 0);
      return;
    }
    BackendState[] states = {
      BackendState.ACTIVE, BackendState.FILLING, BackendState.DRAINING, BackendState.INACTIVE
    };
    model.setState(target, states[random.nextInt(states.length)]);
  }
}
