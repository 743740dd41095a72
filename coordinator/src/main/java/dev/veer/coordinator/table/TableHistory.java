package dev.veer.coordinator.table;

import static com.google.common.base.Preconditions.checkArgument;
import static java.util.Objects.requireNonNull;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * What a table keeps of the past beyond its current backends: who may still own flows in which
 * rows. Two sources, both stored with the desired state so that every coordinator builds the same
 * table:
 *
 * <ul>
 *   <li><b>previous generations</b>, newest first: backend lists that were current before a change.
 *       Until a backend's proxy has reported its flows from after the change ({@link
 *       PriorGeneration#confirmed()}), it is assumed to hold flows in every row where that
 *       generation made it primary;
 *   <li><b>flow evidence</b>: per backend, the rows in which its proxy reported live flows.
 * </ul>
 *
 * Immutable.
 */
public final class TableHistory {
  private static final TableHistory NONE = new TableHistory(ImmutableList.of(), ImmutableMap.of());

  private final ImmutableList<PriorGeneration> generations;
  private final ImmutableMap<InetAddress, RowSet> evidence;

  /**
   * A previous generation, the backends whose evidence from after it replaces it, and the balance
   * its primaries were chosen by (empty: the table's own).
   */
  public record PriorGeneration(
      ImmutableList<Backend> backends,
      ImmutableSet<InetAddress> confirmed,
      Optional<TableSpec.Balance> balance) {
    public PriorGeneration {
      requireNonNull(backends, "backends");
      requireNonNull(confirmed, "confirmed");
      requireNonNull(balance, "balance");
    }

    /** A generation nobody has reported on since: all of its primaries are kept. */
    public static PriorGeneration unconfirmed(List<Backend> backends) {
      return new PriorGeneration(
          ImmutableList.copyOf(backends), ImmutableSet.of(), Optional.empty());
    }
  }

  private TableHistory(
      ImmutableList<PriorGeneration> generations, ImmutableMap<InetAddress, RowSet> evidence) {
    this.generations = generations;
    this.evidence = evidence;
  }

  public static TableHistory none() {
    return NONE;
  }

  /** Previous generations, none confirmed, and no evidence: retention as a guess. */
  public static TableHistory ofGenerations(List<? extends List<Backend>> previous) {
    Builder b = builder();
    previous.forEach(b::addGeneration);
    return b.build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Newest first. */
  public ImmutableList<PriorGeneration> generations() {
    return generations;
  }

  /** Rows in which each backend holds live flows; backends with none are absent. */
  public ImmutableMap<InetAddress, RowSet> evidence() {
    return evidence;
  }

  public boolean isEmpty() {
    return generations.isEmpty() && evidence.isEmpty();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TableHistory other
        && generations.equals(other.generations)
        && evidence.equals(other.evidence);
  }

  @Override
  public int hashCode() {
    return generations.hashCode() * 31 + evidence.hashCode();
  }

  @Override
  public String toString() {
    return generations.size() + " generations, evidence for " + evidence.size() + " backends";
  }

  public static final class Builder {
    private final List<PriorGeneration> generations = new ArrayList<>();
    private final Map<InetAddress, RowSet> evidence = new LinkedHashMap<>();

    private Builder() {}

    /** Adds the next older generation, unconfirmed. */
    public Builder addGeneration(List<Backend> backends) {
      return addGeneration(backends, Set.of());
    }

    /** Adds the next older generation; {@code confirmed} have reported since it was replaced. */
    public Builder addGeneration(List<Backend> backends, Set<InetAddress> confirmed) {
      return addGeneration(backends, confirmed, Optional.empty());
    }

    /** Adds the next older generation, whose primaries {@code balance} chose. */
    public Builder addGeneration(
        List<Backend> backends, Set<InetAddress> confirmed, Optional<TableSpec.Balance> balance) {
      generations.add(
          new PriorGeneration(
              ImmutableList.copyOf(backends), ImmutableSet.copyOf(confirmed), balance));
      return this;
    }

    /** The rows in which {@code backend} holds live flows; an empty set is not kept. */
    public Builder evidence(InetAddress backend, RowSet rows) {
      requireNonNull(rows, "rows");
      checkArgument(
          !evidence.containsKey(backend), "evidence for %s given twice", backend.getHostAddress());
      if (!rows.isEmpty()) {
        evidence.put(backend, rows);
      }
      return this;
    }

    public TableHistory build() {
      if (generations.isEmpty() && evidence.isEmpty()) {
        return NONE;
      }
      return new TableHistory(ImmutableList.copyOf(generations), ImmutableMap.copyOf(evidence));
    }
  }
}
