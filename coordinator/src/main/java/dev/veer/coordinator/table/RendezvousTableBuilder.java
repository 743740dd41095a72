package dev.veer.coordinator.table;

import java.util.List;

/**
 * One-off table builds without history. A caller that rebuilds tables as backends change should
 * keep a {@link TableBuilder}: it retains earlier generations' primaries and reuses its ranking.
 */
public final class RendezvousTableBuilder {
  private RendezvousTableBuilder() {}

  /**
   * Builds the table for {@code spec} over {@code backends}, with no previous generation; a
   * backend's index in the list is its id in the table. See {@link TableBuilder} for the rules.
   *
   * @throws IllegalArgumentException if backends mix IPv4 and IPv6, if two share an address, or if
   *     there are more than {@link RendezvousTable#MAX_BACKENDS}
   */
  public static RendezvousTable build(TableSpec spec, List<Backend> backends) {
    return new TableBuilder().build(spec, backends, List.of());
  }
}
