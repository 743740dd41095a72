package dev.veer.coordinator.table;

/**
 * Lifecycle state of a backend, as far as the forwarding table cares.
 *
 * <p>The table ranks every backend the same way whatever its state (so a backend keeps its rows
 * across state changes); the state only decides where in a row's hop list the backend ends up.
 */
public enum BackendState {
  /** Serving: may be a row's primary. */
  ACTIVE(0),
  /**
   * Newly added and taking over its rows. Ranked and placed exactly like {@link #ACTIVE}: second
   * chance forwarding to the later hops lets the flows of the previous owner complete.
   */
  FILLING(0),
  /**
   * Being taken out of service. Kept in its rows, behind every eligible hop, so that second chance
   * forwarding still finds its existing flows while new flows go elsewhere.
   */
  DRAINING(1),
  /**
   * Out of service. Never a row's primary while an eligible backend exists; kept in its rows behind
   * the other hops. An unhealthy backend is placed like this whatever its state.
   */
  INACTIVE(2);

  private final int tier;

  BackendState(int tier) {
    this.tier = tier;
  }

  /** Whether a backend in this state may receive new flows (may be a row's primary). */
  public boolean isEligible() {
    return tier == 0;
  }

  /**
   * Placement tier within a row: hops are stably ordered by ascending tier (0 = eligible, 1 =
   * draining, 2 = inactive).
   */
  int tier() {
    return tier;
  }
}
