package dev.veer.director.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.HashMultiset;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.Multiset;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.DirectorProgram;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.NeighbourKeeper;
import dev.veer.bpf.dataplane.ServiceEntry;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.bpf.dataplane.TableMap;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A director's data plane: the director program, optionally attached to an
 * interface, and the bookkeeping that turns forwarding tables into map
 * contents — backend indices, table slots, counter slots — so that every
 * table change reaches the data plane as one atomic pointer swap.
 */
public final class DirectorDataplane implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DirectorDataplane.class);

  private final DirectorProgram program;
  private final Optional<XdpAttachment> attachment;
  private final Optional<NeighbourKeeper> neighbours;
  private final Map<ServiceKey, Installed> installed = new HashMap<>();
  private final Map<InetAddress, Integer> backendIndex = new HashMap<>();
  private final Multiset<InetAddress> backendUses = HashMultiset.create();
  private final IndexAllocator backendSlots = new IndexAllocator(1, VeerAbi.MAX_BACKENDS, "backend indices");
  private final IndexAllocator tableSlots = new IndexAllocator(0, VeerAbi.MAX_TABLES, "table slots");
  private final IndexAllocator statsSlots = new IndexAllocator(0, VeerAbi.MAX_SERVICES, "service slots");

  private record Installed(ServiceEntry entry, HopTable table) {}

  private DirectorDataplane(DirectorProgram program, Optional<XdpAttachment> attachment,
      Optional<NeighbourKeeper> neighbours) {
    this.program = program;
    this.attachment = attachment;
    this.neighbours = neighbours;
  }

  /**
   * Loads and configures the director program for tables of {@code 2^rowBits}
   * rows without attaching it (for BPF_PROG_TEST_RUN).
   */
  public static DirectorDataplane detached(DirectorConfig config, int rowBits) {
    return create(config, rowBits, Optional.empty(), null, null);
  }

  /** Loads, configures and attaches the director program to an interface in a namespace. */
  public static DirectorDataplane attach(NetworkNamespace ns, String ifname, XdpMode mode, DirectorConfig config,
      int rowBits) {
    return create(config, rowBits, Optional.of(ns), ifname, mode);
  }

  private static DirectorDataplane create(DirectorConfig config, int rowBits, Optional<NetworkNamespace> ns,
      String ifname, XdpMode mode) {
    DirectorProgram program = DirectorProgram.load(rowBits);
    try {
      program.configure(config);
      Optional<XdpAttachment> attachment =
          ns.map(n -> XdpAttachment.attach(program.program(), n, ifname, mode));
      attachment.ifPresent(a -> log.info("director attached to {} ({} mode)", ifname, mode));
      return new DirectorDataplane(program, attachment, ns.map(NeighbourKeeper::new));
    } catch (RuntimeException e) {
      program.close();
      throw e;
    }
  }

  public DirectorProgram program() {
    return program;
  }

  /** Replaces the flow hash key, source addresses and GUE port, in one map write. */
  public synchronized void reconfigure(DirectorConfig config) {
    program.configure(config);
  }

  /**
   * Installs or replaces a service's table. The new table is written beside
   * the live one and swapped in with a single map update. On failure nothing
   * changes: the previous table (if any) stays live and every index and slot
   * taken for the new one is given back.
   */
  public synchronized void apply(ServiceKey key, ServiceOptions options, HopTable table) {
    checkArgument(key.protocol() != 0, "not a service key: %s", key);
    checkArgument(table.rowBits() == program.rowBits(), "service %s: table has 2^%s rows, this director runs "
        + "2^%s", key, table.rowBits(), program.rowBits());
    Installed previous = installed.get(key);
    List<InetAddress> acquired = new ArrayList<>();
    int newTableSlot = -1;
    int newStatsSlot = -1;
    try {
      for (InetAddress backend : table.backends()) {
        acquireBackend(backend);
        acquired.add(backend);
      }
      int tableSlot = previous != null ? previous.entry().tableSlot() : (newTableSlot = tableSlots.allocate());
      int statsSlot = previous != null ? previous.entry().statsSlot() : (newStatsSlot = newStatsSlot());
      ServiceEntry entry = new ServiceEntry(tableSlot, statsSlot, table.rowBits(), options.flags());
      try (TableMap map = program.newTable(table.rowBits())) {
        map.write(table, table.backends().stream().mapToInt(backendIndex::get).toArray());
        // A new service's slot is not looked at until its entry exists; an
        // existing service switches tables here, atomically.
        program.installTable(tableSlot, map);
      }
      // The services table is rebuilt whole: only when this service's entry is new or changed.
      if (previous == null || !previous.entry().equals(entry)) {
        program.putService(key, entry);
      }
      installed.put(key, new Installed(entry, table));
    } catch (RuntimeException e) {
      acquired.forEach(this::releaseBackend);
      if (newTableSlot >= 0) {
        program.removeTable(newTableSlot);
        tableSlots.release(newTableSlot);
      }
      if (newStatsSlot >= 0) {
        statsSlots.release(newStatsSlot);
      }
      throw e;
    }
    if (previous != null) {
      previous.table().backends().forEach(this::releaseBackend);
    }
    log.debug("service {}: table of {} rows over {} backends installed in slot {}", key, table.rowCount(),
        table.backends().size(), installed.get(key).entry().tableSlot());
  }

  /** Removes a service; its VIP's other traffic is dropped, the VIP's last service gone, passed. */
  public synchronized boolean remove(ServiceKey key) {
    Installed previous = installed.get(key);
    if (previous == null) {
      return false;
    }
    program.removeService(key);
    installed.remove(key);
    program.removeTable(previous.entry().tableSlot());
    tableSlots.release(previous.entry().tableSlot());
    statsSlots.release(previous.entry().statsSlot());
    previous.table().backends().forEach(this::releaseBackend);
    return true;
  }

  public synchronized ImmutableMap<ServiceKey, HopTable> tables() {
    ImmutableMap.Builder<ServiceKey, HopTable> out = ImmutableMap.builder();
    installed.forEach((k, v) -> out.put(k, v.table()));
    return out.build();
  }

  public synchronized Optional<ServiceEntry> entry(ServiceKey key) {
    return Optional.ofNullable(installed.get(key)).map(Installed::entry);
  }

  private int newStatsSlot() {
    int slot = statsSlots.allocate();
    program.resetServiceStats(slot);
    return slot;
  }

  /** Counts one more table naming the backend, writing it into the backends map first if it is new. */
  private void acquireBackend(InetAddress backend) {
    if (!backendIndex.containsKey(backend)) {
      int index = backendSlots.allocate();
      try {
        program.putBackend(index, backend);
      } catch (RuntimeException e) {
        backendSlots.release(index);
        throw e;
      }
      backendIndex.put(backend, index);
      neighbours.ifPresent(n -> n.keep(backend));
    }
    backendUses.add(backend);
  }

  private void releaseBackend(InetAddress backend) {
    if (backendUses.remove(backend, 1) == 1) {
      backendSlots.release(backendIndex.remove(backend));
    }
  }

  /** Detaches the program (if attached) and releases every kernel object. */
  @Override
  public synchronized void close() {
    try {
      attachment.ifPresent(XdpAttachment::close);
    } finally {
      program.close();
    }
  }
}
