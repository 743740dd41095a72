package dev.veer.coordinator.table;

import static java.util.Objects.requireNonNull;

import com.google.common.net.InetAddresses;
import java.net.Inet6Address;
import java.net.InetAddress;

/**
 * One backend (a proxy host that flows are forwarded to), its administrative state and its health.
 *
 * <p>Only the address takes part in hashing: neither state nor health ever changes which rows a
 * backend ranks high in, only where it is placed within them. Two backends of one table must not
 * share an address, and all backends of one table must be of one address family.
 *
 * @param address IPv4 or IPv6 address of the backend; for IPv6 only the 16 address bytes count (a
 *     scope id is ignored by hashing)
 * @param state administrative lifecycle state
 * @param healthy whether health checks pass; an unhealthy backend is placed like an {@link
 *     BackendState#INACTIVE} one whatever its state
 */
public record Backend(InetAddress address, BackendState state, boolean healthy) {

  public Backend {
    requireNonNull(address, "address");
    requireNonNull(state, "state");
  }

  /** A healthy backend in {@code state}. */
  public Backend(InetAddress address, BackendState state) {
    this(address, state, true);
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
    return newState == state ? this : new Backend(address, newState, healthy);
  }

  /** This backend with another health (state unchanged). */
  public Backend withHealthy(boolean newHealthy) {
    return newHealthy == healthy ? this : new Backend(address, state, newHealthy);
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
        + ")";
  }
}
