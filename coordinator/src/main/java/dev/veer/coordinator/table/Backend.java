package dev.veer.coordinator.table;

import static java.util.Objects.requireNonNull;

import com.google.common.net.InetAddresses;
import java.net.Inet6Address;
import java.net.InetAddress;

/**
 * One backend (a proxy host that flows are forwarded to), its administrative state, its health and
 * its weight.
 *
 * <p>Only the address takes part in hashing: neither state nor health ever changes which rows a
 * backend ranks high in, only where it is placed within them. The weight decides how many rows it
 * is the primary of, relative to the others ({@link TableSpec.Balance}). Two backends of one table
 * must not share an address, and all backends of one table must be of one address family.
 *
 * @param address IPv4 or IPv6 address of the backend; for IPv6 only the 16 address bytes count (a
 *     scope id is ignored by hashing)
 * @param state administrative lifecycle state
 * @param healthy whether health checks pass; an unhealthy backend is placed like an {@link
 *     BackendState#INACTIVE} one whatever its state
 * @param weight its share of primary rows relative to the other backends', {@value #MIN_WEIGHT} to
 *     {@value #MAX_WEIGHT}
 */
public record Backend(InetAddress address, BackendState state, boolean healthy, int weight) {
  public static final int MIN_WEIGHT = 1;
  public static final int MAX_WEIGHT = 10_000;

  /** The weight of a backend nobody gave one. */
  public static final int DEFAULT_WEIGHT = 100;

  public Backend {
    requireNonNull(address, "address");
    requireNonNull(state, "state");
    checkWeight(weight);
  }

  /** A backend of the default weight. */
  public Backend(InetAddress address, BackendState state, boolean healthy) {
    this(address, state, healthy, DEFAULT_WEIGHT);
  }

  /** A healthy backend of the default weight in {@code state}. */
  public Backend(InetAddress address, BackendState state) {
    this(address, state, true);
  }

  /**
   * @throws IllegalArgumentException if {@code weight} is outside [{@value #MIN_WEIGHT}, {@value
   *     #MAX_WEIGHT}]
   */
  public static int checkWeight(int weight) {
    if (weight < MIN_WEIGHT || weight > MAX_WEIGHT) {
      throw new IllegalArgumentException(
          "weight must be "
              + MIN_WEIGHT
              + " to "
              + MAX_WEIGHT
              + ", got "
              + weight
              + " (a backend that should take no new flows is drained instead)");
    }
    return weight;
  }

  /** A healthy {@link BackendState#ACTIVE} backend. */
  public static Backend active(InetAddress address) {
    return new Backend(address, BackendState.ACTIVE);
  }

  /**
   * A healthy backend from an IP address literal ({@code "10.0.0.1"}, {@code "2001:db8::1"}); never
   * does a DNS lookup.
   *
   * @throws IllegalArgumentException if {@code literal} is not an IP address literal
   */
  public static Backend of(String literal, BackendState state) {
    return new Backend(InetAddresses.forString(literal), state);
  }

  /** This backend with another state (health unchanged). */
  public Backend withState(BackendState newState) {
    return newState == state ? this : new Backend(address, newState, healthy, weight);
  }

  /** This backend with another health (state unchanged). */
  public Backend withHealthy(boolean newHealthy) {
    return newHealthy == healthy ? this : new Backend(address, state, newHealthy, weight);
  }

  /** This backend with another weight. */
  public Backend withWeight(int newWeight) {
    return newWeight == weight ? this : new Backend(address, state, healthy, newWeight);
  }

  /** Whether this backend may receive new flows: healthy, and active or filling. */
  public boolean isEligible() {
    return healthy && state.isEligible();
  }

  /**
   * Placement tier: that of the state when healthy, that of {@link BackendState#INACTIVE} if not.
   */
  int tier() {
    return healthy ? state.tier() : BackendState.INACTIVE.tier();
  }

  /** Whether the address is IPv6 (else IPv4). */
  public boolean isIpv6() {
    return address instanceof Inet6Address;
  }

  /** A fresh copy of the address bytes hashed for this backend: 4 for IPv4, 16 for IPv6. */
  public byte[] addressBytes() {
    return address.getAddress();
  }

  @Override
  public String toString() {
    return InetAddresses.toAddrString(address)
        + "("
        + state.name().toLowerCase()
        + (healthy ? "" : ", unhealthy")
        + (weight == DEFAULT_WEIGHT ? "" : ", weight " + weight)
        + ")";
  }
}
