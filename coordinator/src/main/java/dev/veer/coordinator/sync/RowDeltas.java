package dev.veer.coordinator.sync;

import com.google.common.cache.Cache;
import com.google.common.cache.CacheBuilder;
import dev.veer.proto.TableRowsCodec;
import dev.veer.proto.director.v1.ServiceTable;
import java.util.Optional;
import java.util.concurrent.ExecutionException;

/**
 * Tables as only the rows that changed since a table a director holds ({@code base_table_version}):
 * made once per change for every director that holds the same base, and kept for a bounded number
 * of bytes.
 */
final class RowDeltas {
  /** Deltas kept for directors still to be sent them; a delta of 10 backends is about 30 KB. */
  private static final long KEPT_BYTES = 64L * 1024 * 1024;

  private record Key(String service, int rowBits, long base, long target) {}

  private final Cache<Key, Optional<ServiceTable>> made =
      CacheBuilder.newBuilder()
          .maximumWeight(KEPT_BYTES)
          .<Key, Optional<ServiceTable>>weigher(
              (key, delta) -> 64 + delta.map(ServiceTable::getSerializedSize).orElse(0))
          .build();

  /**
   * {@code target} as the rows that changed since {@code base} (what the director holds of the same
   * service), or empty when a whole table is as small or the base does not fit its encoding.
   */
  Optional<ServiceTable> between(TableCompiler.Compiled base, TableCompiler.Compiled target) {
    ServiceTable from = base.wire();
    ServiceTable to = target.wire();
    if (base.rowBits() != target.rowBits() || !from.getHasTable() || !to.getHasTable()) {
      return Optional.empty();
    }
    Key key = new Key(to.getName(), target.rowBits(), from.getTableVersion(), to.getTableVersion());
    try {
      return made.get(
          key, () -> TableRowsCodec.delta(from, to, target.rowBits(), TableCompiler.ROW_HOPS));
    } catch (ExecutionException e) {
      throw new IllegalStateException("cannot make a row delta of " + to.getName(), e.getCause());
    }
  }
}
