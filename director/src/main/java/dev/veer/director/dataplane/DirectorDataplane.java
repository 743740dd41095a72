package dev.veer.director.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.HashMultiset;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.Multiset;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.LoadOptions;
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
import java.nio.file.Files;
import java.nio.file.Path;
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
  /** Set once, by the factory, after the maps are read back (a takeover needs them first). */
  private Optional<XdpAttachment> attachment = Optional.empty();
  private final Optional<NeighbourKeeper> neighbours;
  private final Map<ServiceKey, Installed> installed = new HashMap<>();
  private final Map<InetAddress, Integer> backendIndex = new HashMap<>();
  private final Multiset<InetAddress> backendUses = HashMultiset.create();
  private final IndexAllocator backendSlots = new IndexAllocator(1, VeerAbi.MAX_BACKENDS, "backend indices");
  private final IndexAllocator tableSlots = new IndexAllocator(0, VeerAbi.MAX_TABLES, "table slots");
  private final IndexAllocator statsSlots = new IndexAllocator(0, VeerAbi.MAX_SERVICES, "service slots");

  private record Installed(ServiceEntry entry, HopTable table) {}

  private final Optional<Path> pinDir;

  private DirectorDataplane(DirectorProgram program, Optional<NeighbourKeeper> neighbours, Optional<Path> pinDir) {
    this.program = program;
    this.neighbours = neighbours;
    this.pinDir = pinDir;
  }

  /**
   * Loads and configures the director program for tables of {@code 2^rowBits}
   * rows without attaching it (for BPF_PROG_TEST_RUN).
   */
  public static DirectorDataplane detached(DirectorConfig config, int rowBits) {
    return create(config, rowBits, Optional.empty(), null, null, Optional.empty());
  }

  /** Loads, configures and attaches the director program to an interface in a namespace. */
  public static DirectorDataplane attach(NetworkNamespace ns, String ifname, XdpMode mode, DirectorConfig config,
      int rowBits) {
    return create(config, rowBits, Optional.of(ns), ifname, mode, Optional.empty());
  }

  /**
   * Like {@link #attach}, with the maps pinned in {@code pinDir}. If an earlier director left
   * its maps pinned there (and its program attached), they are taken over as they are: the new
   * program uses the same maps and replaces the old one on the interface in one step, the
   * tables and the flow-hash key stay, and this object learns what is installed from the maps.
   * Forwarding never stops. {@code config}'s key is then ignored until {@link #reconfigure}.
   */
  public static DirectorDataplane attachPinned(NetworkNamespace ns, String ifname, XdpMode mode,
      DirectorConfig config, int rowBits, Path pinDir) {
    return create(config, rowBits, Optional.of(ns), ifname, mode, Optional.of(pinDir));
  }

  private static DirectorDataplane create(DirectorConfig config, int rowBits, Optional<NetworkNamespace> ns,
      String ifname, XdpMode mode, Optional<Path> pinDir) {
    boolean takeOver = pinDir.isPresent() && Files.exists(pinDir.get().resolve(PINNED_TABLES));
    DirectorProgram program = DirectorProgram.load(rowBits,
        pinDir.map(LoadOptions.DEFAULT::withPinRoot).orElse(LoadOptions.DEFAULT));
    try {
      Optional<DirectorConfig> inherited = takeOver ? program.readConfig() : Optional.empty();
      // A taken-over director keeps hashing flows with the cluster's key it had.
      program.configure(inherited.map(c -> new DirectorConfig(c.hashKey(), config.source4(), config.source6(),
          c.guePort())).orElse(config));
      DirectorDataplane dataplane = new DirectorDataplane(program, ns.map(NeighbourKeeper::new), pinDir);
      if (takeOver) {
        dataplane.recover();
      }
      dataplane.attachment = ns.map(n -> pinDir.isPresent()
          ? XdpAttachment.attachOrReplace(program.program(), n, ifname, mode)
          : XdpAttachment.attach(program.program(), n, ifname, mode));
      dataplane.attachment.ifPresent(a -> log.info("director attached to {} ({} mode)", ifname, mode));
      return dataplane;
    } catch (RuntimeException e) {
      program.close();
      throw e;
    }
  }

  /** The map pinned by every director; its presence means an earlier director's maps are there. */
  private static final String PINNED_TABLES = "tables";

  /** Rebuilds what is installed from the kernel's maps (a director taking over pinned maps). */
  private synchronized void recover() {
    Map<Integer, InetAddress> addresses = new HashMap<>();
    java.util.Set<Integer> tablesUsed = new java.util.HashSet<>();
    java.util.Set<Integer> statsUsed = new java.util.HashSet<>();
    program.readServices().forEach((key, entry) -> {
      if (key.protocol() == 0) {
        return; // a VIP's marker
      }
      int[] cells = program.readTable(entry.tableSlot()).orElseThrow(() -> new IllegalStateException(
          "pinned service " + key + " names table slot " + entry.tableSlot() + ", which holds no table"));
      List<InetAddress> backends = new ArrayList<>();
      Map<Integer, Integer> position = new HashMap<>();
      int[] hops = new int[cells.length];
      for (int i = 0; i < cells.length; i++) {
        int kernelIndex = cells[i];
        if (kernelIndex == 0) {
          hops[i] = -1;
          continue;
        }
        InetAddress address = addresses.computeIfAbsent(kernelIndex, k -> program.backend(k).orElseThrow(
            () -> new IllegalStateException("pinned table of " + key + " names empty backend index " + k)));
        hops[i] = position.computeIfAbsent(kernelIndex, k -> {
          backends.add(address);
          return backends.size() - 1;
        });
      }
      HopTable table = HopTable.of(program.rowBits(), backends, hops);
      installed.put(key, new Installed(entry, table));
      for (InetAddress backend : backends) {
        backendUses.add(backend);
      }
      tablesUsed.add(entry.tableSlot());
      statsUsed.add(entry.statsSlot());
    });
    addresses.forEach((index, address) -> {
      backendIndex.put(address, index);
      neighbours.ifPresent(n -> n.keep(address));
    });
    backendSlots.reserve(addresses.keySet());
    tableSlots.reserve(tablesUsed);
    statsSlots.reserve(statsUsed);
    log.info("took over {} services and {} backends from the pinned maps in {}", installed.size(),
        addresses.size(), pinDir.orElseThrow());
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

  /** Every backend some installed table names, with its index in the backends map. */
  public synchronized ImmutableMap<InetAddress, Integer> backendIndices() {
    return ImmutableMap.copyOf(backendIndex);
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
        program.resetBackendStats(index);
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

  /**
   * Detaches the program (if attached) and releases every kernel object, pins included: the
   * interface forwards nothing any more.
   */
  @Override
  public synchronized void close() {
    try {
      attachment.ifPresent(XdpAttachment::close);
    } finally {
      program.close();
      pinDir.ifPresent(BpfSystem::removePins);
    }
  }

  /**
   * Lets go without stopping anything: the program stays attached and the maps stay pinned, so
   * the interface keeps forwarding with the installed tables until a new director takes over
   * the pins ({@link #attachPinned}). This process's handles are released.
   */
  public synchronized void handOver() {
    if (pinDir.isEmpty()) {
      throw new IllegalStateException("only a director with pinned maps can hand over; this one would stop"
          + " forwarding");
    }
    program.close();
    log.info("handed over: the program stays attached, its maps pinned in {}", pinDir.get());
  }
}
