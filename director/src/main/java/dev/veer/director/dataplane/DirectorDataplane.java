package dev.veer.director.dataplane;

import static com.google.common.base.Preconditions.checkArgument;
import static java.util.Objects.requireNonNull;

import com.google.common.collect.HashMultiset;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.Multiset;
import dev.veer.bpf.BpfMap;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.KeptAttachment;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.NetdevFeatures;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DataplaneObject;
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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A director's data plane: the director program, optionally attached to an interface, and the
 * bookkeeping that turns forwarding tables into map contents — backend indices, table slots,
 * counter slots — so that every table change reaches the data plane as one atomic pointer swap.
 */
public final class DirectorDataplane implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DirectorDataplane.class);

  /** How often the data plane checks that its program is still attached. */
  private static final java.time.Duration KEEP_PERIOD = java.time.Duration.ofSeconds(1);

  private final DirectorProgram program;

  /** Set once, by the factory, after the maps are read back (a takeover needs them first). */
  private Optional<KeptAttachment> attachment = Optional.empty();

  private final Optional<NeighbourKeeper> neighbours;
  private final Map<ServiceKey, Installed> installed = new HashMap<>();
  private final Map<InetAddress, Integer> backendIndex = new HashMap<>();
  private final Multiset<InetAddress> backendUses = HashMultiset.create();
  private final IndexAllocator backendSlots =
      new IndexAllocator(1, VeerAbi.MAX_BACKENDS, "backend indices");
  private final IndexAllocator tableSlots =
      new IndexAllocator(0, VeerAbi.MAX_TABLES, "table slots");
  private final IndexAllocator statsSlots =
      new IndexAllocator(0, VeerAbi.MAX_SERVICES, "service slots");

  private record Installed(ServiceEntry entry, HopTable table) {}

  /**
   * The tables in the table slots, and which slot holds each: services whose tables are the same
   * (same backends, same rows) share one slot, so the kernel and this heap hold it once.
   */
  private final Map<Integer, Slot> slots = new HashMap<>();

  /** What a table slot holds: a table, in rows of its width. */
  private record Slot(HopTable table, boolean narrow) {}

  private final Map<HopTable, Integer> slotOfTable = new HashMap<>();

  /** How many services each table slot serves. */
  private final Multiset<Integer> slotUses = HashMultiset.create();

  /** What the config map holds, to put back if a change that set it is undone. */
  private DirectorConfig config;

  private final Optional<Path> pinDir;

  private DirectorDataplane(
      DirectorProgram program, Optional<NeighbourKeeper> neighbours, Optional<Path> pinDir) {
    this.program = program;
    this.neighbours = neighbours;
    this.pinDir = pinDir;
  }

  /**
   * Loads and configures the director program for tables of {@code 2^rowBits} rows without
   * attaching it (for BPF_PROG_TEST_RUN).
   */
  public static DirectorDataplane detached(DirectorConfig config, int rowBits) {
    return create(
        config, rowBits, Optional.empty(), null, null, Optional.empty(), DataplaneObject.DIRECTOR);
  }

  /**
   * Like {@link #detached}, with the program of {@code kind} and its maps pinned in {@code pinDir}
   * (for BPF_PROG_TEST_RUN of a co-located program, whose proxy half shares them).
   */
  public static DirectorDataplane detached(
      DirectorConfig config, int rowBits, Path pinDir, DataplaneObject kind) {
    return create(config, rowBits, Optional.empty(), null, null, Optional.of(pinDir), kind);
  }

  /** Loads, configures and attaches the director program to an interface in a namespace. */
  public static DirectorDataplane attach(
      NetworkNamespace ns, String ifname, XdpMode mode, DirectorConfig config, int rowBits) {
    return create(
        config, rowBits, Optional.of(ns), ifname, mode, Optional.empty(), DataplaneObject.DIRECTOR);
  }

  /**
   * Like {@link #attach}, with the maps pinned in {@code pinDir}. If an earlier director left its
   * maps pinned there (and its program attached), they are taken over as they are: the new program
   * uses the same maps and replaces the old one on the interface in one step, the tables and the
   * flow-hash key stay, and this object learns what is installed from the maps. Forwarding never
   * stops. {@code config}'s key is then ignored until {@link #reconfigure}.
   */
  public static DirectorDataplane attachPinned(
      NetworkNamespace ns,
      String ifname,
      XdpMode mode,
      DirectorConfig config,
      int rowBits,
      Path pinDir) {
    return attachPinned(ns, ifname, mode, config, rowBits, pinDir, DataplaneObject.DIRECTOR);
  }

  /**
   * Like {@link #attachPinned}, with the program of {@code kind}: {@link
   * DataplaneObject#CO_LOCATED} makes this host a proxy too, its proxy half kept by the proxy agent
   * through the maps pinned in {@code pinDir}.
   */
  public static DirectorDataplane attachPinned(
      NetworkNamespace ns,
      String ifname,
      XdpMode mode,
      DirectorConfig config,
      int rowBits,
      Path pinDir,
      DataplaneObject kind) {
    return create(config, rowBits, Optional.of(ns), ifname, mode, Optional.of(pinDir), kind);
  }

  private static DirectorDataplane create(
      DirectorConfig config,
      int rowBits,
      Optional<NetworkNamespace> ns,
      String ifname,
      XdpMode mode,
      Optional<Path> pinDir,
      DataplaneObject kind) {
    pinDir.ifPresent(DirectorDataplane::retireEarlierLayout);
    boolean takeOver = pinDir.isPresent() && Files.exists(pinDir.get().resolve(PINNED_TABLES));
    LoadOptions options = pinDir.map(LoadOptions.DEFAULT::withPinRoot).orElse(LoadOptions.DEFAULT);
    DirectorProgram program;
    if (kind == DataplaneObject.DIRECTOR_RX_HASH) {
      NetworkNamespace in =
          ns.orElseThrow(() -> new IllegalArgumentException("RX-hash mode needs an interface"));
      if (!NetdevFeatures.xdpRxHash(in, ifname)) {
        throw new IllegalStateException(
            "--rx-hash: the driver of "
                + ifname
                + " gives XDP programs no RX hash (its netdev xdp-rx-metadata-features lack"
                + " \"hash\"); run this director without --rx-hash, on the keyed flow hash");
      }
      // Bound to the interface's driver, which resolves in the namespace the program loads in.
      int ifindex = in.ifindex(ifname);
      program = in.call(() -> DirectorProgram.load(rowBits, options.withDevice(ifindex), kind));
    } else {
      program = DirectorProgram.load(rowBits, options, kind);
    }
    try {
      Optional<DirectorConfig> inherited = takeOver ? program.readConfig() : Optional.empty();
      // A taken-over director keeps hashing flows with the cluster's key it had.
      DirectorConfig configured =
          inherited
              .map(
                  c ->
                      new DirectorConfig(
                          c.hashKey(), config.source4(), config.source6(), c.guePort()))
              .orElse(config);
      program.configure(configured);
      DirectorDataplane dataplane =
          new DirectorDataplane(program, ns.map(NeighbourKeeper::new), pinDir);
      dataplane.config = configured;
      if (takeOver) {
        dataplane.recover();
      }
      dataplane.attachment =
          ns.map(
              n ->
                  KeptAttachment.keep(
                      pinDir.isPresent()
                          ? XdpAttachment.attachOrReplace(
                              program.program(),
                              n,
                              ifname,
                              mode,
                              pinDir.map(d -> d.resolve(PINNED_PROGRAM)))
                          : XdpAttachment.attach(program.program(), n, ifname, mode),
                      program.program(),
                      KEEP_PERIOD));
      dataplane.attachment.ifPresent(
          a -> log.info("director attached to {} ({} mode)", ifname, mode));
      return dataplane;
    } catch (RuntimeException e) {
      program.close();
      throw e;
    }
  }

  /** The map pinned by every director; its presence means an earlier director's maps are there. */
  private static final String PINNED_TABLES = "hop_tables";

  /** The outer map of tables before hop_tables (global backend indices in 16-bit cells). */
  private static final String EARLIER_TABLES = "tables";

  /**
   * Pins of the table layout before {@code hop_tables} cannot be taken over: their maps have other
   * sizes and their tables another meaning. They are removed (the attached program keeps its maps
   * and forwards on until it is replaced), all but the program's, which the new program replaces on
   * the interface. The new maps hold nothing until the first snapshot, so this director announces
   * its VIPs only then (route health injection): the router sends their traffic to the other
   * directors meanwhile, whose tables are the same, so no connection breaks.
   */
  private static void retireEarlierLayout(Path pinDir) {
    if (!Files.exists(pinDir.resolve(EARLIER_TABLES))
        || Files.exists(pinDir.resolve(PINNED_TABLES))) {
      return;
    }
    log.warn(
        "the pins in {} are of the table layout before hop_tables: they are removed and this"
            + " director starts with empty tables, announcing its VIPs once the coordinators"
            + " sent them",
        pinDir);
    try (var pins = Files.list(pinDir)) {
      for (Path pin : pins.toList()) {
        if (!pin.getFileName().toString().equals(PINNED_PROGRAM)) {
          Files.deleteIfExists(pin);
        }
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(
          "cannot remove the earlier layout's pins in " + pinDir + ": " + e.getMessage(), e);
    }
  }

  /** The attached program, for the next daemon to replace without opening it by id. */
  private static final String PINNED_PROGRAM = "program";

  /** Rebuilds what is installed from the kernel's maps (a director taking over pinned maps). */
  private synchronized void recover() {
    Map<Integer, InetAddress> addresses = new HashMap<>();
    java.util.Set<Integer> tablesUsed = new HashSet<>();
    java.util.Set<Integer> statsUsed = new HashSet<>();
    Map<Integer, HopTable> read = new HashMap<>();
    program
        .readServices()
        .forEach(
            (key, entry) -> {
              if (key.protocol() == 0) {
                return; // a VIP's marker
              }
              HopTable table =
                  read.computeIfAbsent(
                      entry.tableSlot(), slot -> readPinnedTable(key, entry, addresses));
              installed.put(key, new Installed(entry, table));
              for (InetAddress backend : table.backends()) {
                backendUses.add(backend);
              }
              tablesUsed.add(entry.tableSlot());
              statsUsed.add(entry.statsSlot());
            });
    indexSlots();
    addresses.forEach(
        (index, address) -> {
          backendIndex.put(address, index);
          neighbours.ifPresent(n -> n.keep(address));
        });
    backendSlots.reserve(addresses.keySet());
    tableSlots.reserve(tablesUsed);
    statsSlots.reserve(statsUsed);
    log.info(
        "took over {} services and {} backends from the pinned maps in {}",
        installed.size(),
        addresses.size(),
        pinDir.orElseThrow());
  }

  /** A pinned table slot's rows, as the table of backends they name. */
  private HopTable readPinnedTable(
      ServiceKey key, ServiceEntry entry, Map<Integer, InetAddress> addresses) {
    int[] cells =
        program
            .readTable(entry.tableSlot(), narrow(entry))
            .orElseThrow(
                () ->
                    new IllegalStateException(
                        "pinned service "
                            + key
                            + " names table slot "
                            + entry.tableSlot()
                            + ", which holds no table"));
    List<InetAddress> backends = new ArrayList<>();
    Map<Integer, Integer> position = new HashMap<>();
    int[] hops = new int[cells.length];
    for (int i = 0; i < cells.length; i++) {
      int kernelIndex = cells[i];
      if (kernelIndex == 0) {
        hops[i] = -1;
        continue;
      }
      InetAddress address =
          addresses.computeIfAbsent(
              kernelIndex,
              k ->
                  program
                      .backend(k)
                      .orElseThrow(
                          () ->
                              new IllegalStateException(
                                  "pinned table of " + key + " names empty backend index " + k)));
      hops[i] =
          position.computeIfAbsent(
              kernelIndex,
              k -> {
                backends.add(address);
                return backends.size() - 1;
              });
    }
    return HopTable.of(program.rowBits(), backends, hops);
  }

  /** Rebuilds the index of table slots from what is installed. */
  private void indexSlots() {
    slots.clear();
    slotOfTable.clear();
    slotUses.clear();
    installed.forEach(
        (key, i) -> {
          int slot = i.entry().tableSlot();
          slotUses.add(slot);
          if (slots.putIfAbsent(slot, new Slot(i.table(), narrow(i.entry()))) == null) {
            slotOfTable.putIfAbsent(i.table(), slot);
          }
        });
  }

  /** The attachment kept on the interface, if this data plane is attached to one. */
  public Optional<KeptAttachment> attachment() {
    return attachment;
  }

  public DirectorProgram program() {
    return program;
  }

  /** Replaces the flow hash key, source addresses and GUE port, in one map write. */
  public synchronized void reconfigure(DirectorConfig config) {
    program.configure(config);
    this.config = config;
  }

  /**
   * Installs or replaces a service's table, as {@link #replaceAll} does with every other service
   * kept as it is.
   */
  public synchronized void apply(ServiceKey key, ServiceOptions options, HopTable table) {
    Map<ServiceKey, Plan> next = keepAll();
    next.put(key, new Plan(options.flags(), Optional.of(table)));
    change(next, Optional.empty());
  }

  /** Removes a service; its VIP's other traffic is dropped, the VIP's last service gone, passed. */
  public synchronized boolean remove(ServiceKey key) {
    if (!installed.containsKey(key)) {
      return false;
    }
    Map<ServiceKey, Plan> next = keepAll();
    next.remove(key);
    change(next, Optional.empty());
    return true;
  }

  /**
   * A service as {@link #replaceAll} leaves it: its options, and a new table or none to keep its
   * own.
   */
  public record Wanted(ServiceOptions options, Optional<HopTable> table) {
    public Wanted {
      requireNonNull(options, "options");
      requireNonNull(table, "table");
    }
  }

  /**
   * Makes the installed services exactly {@code services}, and sets {@code config} if given, as one
   * change. Everything that can fail comes first, where the data plane cannot see it: indices and
   * slots are taken, new backends written to unused indices, new tables filled beside the live
   * ones. Then the services table is swapped whole, and the tables of services that stay swap in
   * their slots, one pointer each. If any step fails, what was done is undone and the exception
   * says so: the data plane forwards as before.
   *
   * @throws IllegalArgumentException if a service without a table given has none installed
   * @throws IllegalStateException if the maps cannot take the change (more backends, tables or
   *     services than they hold)
   */
  public synchronized void replaceAll(
      Map<ServiceKey, Wanted> services, Optional<DirectorConfig> config) {
    Map<ServiceKey, Plan> next = new LinkedHashMap<>();
    services.forEach(
        (key, wanted) -> next.put(key, new Plan(wanted.options().flags(), wanted.table())));
    change(next, config);
  }

  /**
   * Installs or changes {@code services} and removes {@code removed}, in one change like {@link
   * #replaceAll}; every other installed service stays as it is.
   */
  public synchronized void update(
      Map<ServiceKey, Wanted> services, Set<ServiceKey> removed, Optional<DirectorConfig> config) {
    Map<ServiceKey, Plan> next = keepAll();
    next.keySet().removeAll(removed);
    services.forEach(
        (key, wanted) -> next.put(key, new Plan(wanted.options().flags(), wanted.table())));
    change(next, config);
  }

  /** What one service becomes: its flags, and its new table or none to keep the installed one. */
  private record Plan(int flags, Optional<HopTable> table) {}

  private Map<ServiceKey, Plan> keepAll() {
    Map<ServiceKey, Plan> out = new LinkedHashMap<>();
    installed.forEach((key, i) -> out.put(key, new Plan(i.entry().flags(), Optional.empty())));
    return out;
  }

  private void change(Map<ServiceKey, Plan> plans, Optional<DirectorConfig> newConfig) {
    plans.forEach(
        (key, plan) -> {
          checkArgument(key.protocol() != 0, "not a service key: %s", key);
          checkArgument(
              plan.table().isPresent() || installed.containsKey(key),
              "service %s: no table given and none installed",
              key);
          plan.table()
              .ifPresent(
                  t ->
                      checkArgument(
                          t.rowBits() == program.rowBits(),
                          "service %s: table has 2^%s rows, this director runs 2^%s",
                          key,
                          t.rowBits(),
                          program.rowBits()));
        });
    // Entries written to the program directly (tests do) are not this object's to remove.
    Map<ServiceKey, ServiceEntry> entries = new LinkedHashMap<>(program.services());
    entries.keySet().removeAll(installed.keySet());
    Set<ServiceKey> keys = new LinkedHashSet<>(entries.keySet());
    keys.addAll(plans.keySet());
    // The services table's limits, found before any index, slot or table is spent on the change
    // (a change that adds no service fits as the table does now).
    try {
      if (!program.services().keySet().containsAll(keys)) {
        program.checkServicesFit(keys);
      }
    } catch (RuntimeException failure) {
      throw new IllegalStateException(
          "the services table cannot take "
              + plans.size()
              + " services: "
              + failure.getMessage()
              + "; nothing was changed",
          failure);
    }
    Map<ServiceKey, Installed> next = new LinkedHashMap<>();
    Map<ServiceKey, TableMap> swaps = new LinkedHashMap<>();
    Map<Integer, TableMap> fresh = new LinkedHashMap<>();
    List<TableMap> filled = new ArrayList<>();
    List<InetAddress> indexed = new ArrayList<>();
    Deque<Runnable> undo = new ArrayDeque<>();
    // Tables this change puts into slots, by content and by slot; installed slots it shares, and
    // those it refills in place (which then hold another table and cannot be shared).
    Map<HopTable, Integer> placed = new HashMap<>();
    Map<Integer, Slot> placedTables = new HashMap<>();
    Set<Integer> reused = new HashSet<>();
    Map<Integer, TableMap> swapped = new HashMap<>();
    try {
      // Unseen by the data plane: nothing it reads names these indices, slots and tables yet.
      for (Map.Entry<ServiceKey, Plan> e : plans.entrySet()) {
        ServiceKey key = e.getKey();
        Plan plan = e.getValue();
        Installed previous = installed.get(key);
        if (plan.table().isEmpty()) {
          ServiceEntry entry = previous.entry();
          next.put(
              key,
              new Installed(
                  new ServiceEntry(
                      entry.tableSlot(),
                      entry.statsSlot(),
                      entry.rowBits(),
                      withWidth(plan.flags(), narrow(entry))),
                  previous.table()));
          continue;
        }
        HopTable table = plan.table().get();
        try {
          for (InetAddress backend : table.backends()) {
            acquireBackend(backend, indexed, undo);
          }
          int statsSlot = previous != null ? previous.entry().statsSlot() : take(statsSlots, undo);
          if (previous == null) {
            program.resetServiceStats(statsSlot);
          }
          // The same table as one this change fills, or one installed that stays: one slot.
          Integer shared = placed.get(table);
          if (shared == null) {
            Integer existing = slotOfTable.get(table);
            if (existing != null && !swapped.containsKey(existing)) {
              shared = existing;
              reused.add(existing);
            }
          }
          if (shared != null) {
            Slot held = placedTables.getOrDefault(shared, slots.get(shared));
            next.put(
                key,
                new Installed(
                    new ServiceEntry(
                        shared, statsSlot, table.rowBits(), withWidth(plan.flags(), held.narrow())),
                    held.table()));
            continue;
          }
          TableMap map = fill(table);
          filled.add(map);
          // A table of another width goes to a slot of its own: the entry that switches the
          // service to it says its width, and both change in the one services-table swap. So
          // does a table whose slot other services share, or will.
          boolean inPlace =
              previous != null
                  && narrow(previous.entry()) == map.narrow()
                  && slotUses.count(previous.entry().tableSlot()) == 1
                  && !reused.contains(previous.entry().tableSlot());
          int tableSlot = inPlace ? previous.entry().tableSlot() : take(tableSlots, undo);
          if (inPlace) {
            swaps.put(key, map);
            swapped.put(tableSlot, map);
          } else {
            fresh.put(tableSlot, map);
            undo.push(() -> program.removeTable(tableSlot));
          }
          placed.put(table, tableSlot);
          placedTables.put(tableSlot, new Slot(table, map.narrow()));
          next.put(
              key,
              new Installed(
                  new ServiceEntry(
                      tableSlot, statsSlot, table.rowBits(), withWidth(plan.flags(), map.narrow())),
                  table));
        } catch (RuntimeException failure) {
          throw new IllegalStateException("service " + key + ": " + failure.getMessage(), failure);
        }
      }
      // Slots no entry names yet: one batch update, one RCU grace period for them all.
      program.installTables(fresh);
      // Seen at once: every service entry, new, changed or gone.
      next.forEach((key, i) -> entries.put(key, i.entry()));
      ImmutableMap<ServiceKey, ServiceEntry> before = program.services();
      // Only a change of entries rewrites the services table (131,072 slots): a table replaced in
      // its slot is one pointer swap, whatever the number of services.
      if (!before.equals(entries)) {
        try {
          program.replaceServices(entries);
        } catch (RuntimeException failure) {
          throw new IllegalStateException(
              "the services table could not be written: " + failure.getMessage(), failure);
        }
        undo.push(() -> program.replaceServices(before));
      }
      // One pointer each, in one batch: nothing is allocated, so these do not fail short of a
      // kernel fault. Their undo is pushed first: putting back a table not yet replaced is
      // harmless, so a batch that stops part-way is undone whole.
      Map<Integer, TableMap> swapsBySlot = new LinkedHashMap<>();
      for (Map.Entry<ServiceKey, TableMap> swap : swaps.entrySet()) {
        Installed previous = installed.get(swap.getKey());
        int slot = previous.entry().tableSlot();
        swapsBySlot.put(slot, swap.getValue());
        undo.push(
            () -> {
              try (TableMap old = fill(previous.table())) {
                program.installTable(slot, old);
              }
            });
      }
      program.installTables(swapsBySlot);
      if (newConfig.isPresent()) {
        DirectorConfig old = config;
        program.configure(newConfig.get());
        config = newConfig.get();
        undo.push(
            () -> {
              program.configure(old);
              config = old;
            });
      }
    } catch (RuntimeException failure) {
      throw rollBack(undo, failure);
    } finally {
      filled.forEach(TableMap::close);
    }

    // Done: let go of what the replaced tables and the removed services held. The slots' index
    // follows the services that left a slot or took one, not every service.
    Set<Integer> emptied = new HashSet<>();
    installed.forEach(
        (key, previous) -> {
          Plan plan = plans.get(key);
          if (plan == null || plan.table().isPresent()) {
            int slot = previous.entry().tableSlot();
            if (slotUses.remove(slot, 1) == 1) {
              emptied.add(slot);
            }
            if (plan == null) {
              statsSlots.release(previous.entry().statsSlot());
            }
            previous.table().backends().forEach(this::releaseBackend);
          }
        });
    plans.forEach(
        (key, plan) -> {
          if (plan.table().isEmpty()) {
            return;
          }
          Installed now = next.get(key);
          int slot = now.entry().tableSlot();
          slotUses.add(slot);
          emptied.remove(slot);
          Slot held = slots.get(slot);
          if (held == null || held.table() != now.table()) {
            // A fresh slot, or one refilled in place.
            if (held != null) {
              slotOfTable.remove(held.table(), slot);
            }
            slots.put(slot, new Slot(now.table(), narrow(now.entry())));
            slotOfTable.putIfAbsent(now.table(), slot);
          }
        });
    for (int slot : emptied) {
      Slot gone = slots.remove(slot);
      if (gone != null) {
        slotOfTable.remove(gone.table(), slot);
      }
      removeTable(slot);
    }
    installed.clear();
    installed.putAll(next);
    neighbours.ifPresent(n -> indexed.forEach(n::keep));
    log.debug(
        "{} services installed, {} tables replaced or added",
        installed.size(),
        plans.values().stream().filter(p -> p.table().isPresent()).count());
  }

  /** Undoes what a failed change did, newest first; the exception says whether that worked. */
  private static IllegalStateException rollBack(Deque<Runnable> undo, RuntimeException failure) {
    List<RuntimeException> undoFailures = new ArrayList<>();
    while (!undo.isEmpty()) {
      try {
        undo.pop().run();
      } catch (RuntimeException e) {
        undoFailures.add(e);
      }
    }
    IllegalStateException out =
        undoFailures.isEmpty()
            ? new IllegalStateException(failure.getMessage() + "; nothing was changed", failure)
            : new IllegalStateException(
                failure.getMessage()
                    + "; undoing the change failed too ("
                    + undoFailures.getFirst().getMessage()
                    + "): the data plane may hold part of it",
                failure);
    undoFailures.forEach(out::addSuppressed);
    return out;
  }

  /** Takes a table no entry names any more out of its slot, and gives the slot back. */
  private void removeTable(int slot) {
    try {
      program.removeTable(slot);
    } catch (RuntimeException e) {
      // No service entry names the slot any more; the next table put there replaces it.
      log.warn("table slot {} could not be emptied: {}", slot, e.getMessage());
    }
    tableSlots.release(slot);
  }

  /**
   * A new table map holding {@code table}, with this director's backend indices; the caller closes
   * it.
   */
  private TableMap fill(HopTable table) {
    TableMap map = program.newTable(table.rowBits(), table.maxHops(), table.backends().size());
    try {
      map.write(table, table.backends().stream().mapToInt(backendIndex::get).toArray());
      return map;
    } catch (RuntimeException e) {
      map.close();
      throw e;
    }
  }

  private static boolean narrow(ServiceEntry entry) {
    return (entry.flags() & VeerAbi.SVC_NARROW_ROWS) != 0;
  }

  private static int withWidth(int flags, boolean narrow) {
    return (flags & ~VeerAbi.SVC_NARROW_ROWS) | (narrow ? VeerAbi.SVC_NARROW_ROWS : 0);
  }

  private static int take(IndexAllocator allocator, Deque<Runnable> undo) {
    int index = allocator.allocate();
    undo.push(() -> allocator.giveBack(index));
    return index;
  }

  /**
   * The kernel memory this data plane's maps are charged (their memlock): the program's maps and
   * every installed table (once, however many services share it), each as much as a table of its
   * shape is charged.
   */
  public synchronized long memlockBytes() {
    long total = 0;
    for (BpfMap map : program.maps().values()) {
      total += map.memlockBytes();
    }
    for (Slot slot : slots.values()) {
      boolean narrow = slot.narrow();
      int backends = slot.table().backends().size();
      total +=
          tableMemlock.computeIfAbsent(
              (long) backends << 1 | (narrow ? 1 : 0),
              shape -> {
                try (TableMap probe =
                    program.newTable(
                        program.rowBits(),
                        narrow ? VeerAbi.NARROW_HOPS : VeerAbi.MAX_HOPS,
                        backends)) {
                  return probe.memlockBytes();
                }
              });
    }
    return total;
  }

  /** What a table is charged, by shape (backends, width); measured once per shape. */
  private final Map<Long, Long> tableMemlock = new HashMap<>();

  /** How many distinct tables the installed services use (services with the same table share). */
  public synchronized int tableCount() {
    return slots.size();
  }

  /** The table installed for {@code key}, if any: one lookup, not a copy of every table. */
  public synchronized Optional<HopTable> table(ServiceKey key) {
    return Optional.ofNullable(installed.get(key)).map(Installed::table);
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

  /**
   * Counts one more table naming the backend, writing it into the backends map first if it is new
   * (and adding it to {@code indexed}). An index given back by the undo is cleared again.
   */
  private void acquireBackend(
      InetAddress backend, List<InetAddress> indexed, Deque<Runnable> undo) {
    if (!backendIndex.containsKey(backend)) {
      int index = take(backendSlots, undo);
      program.resetBackendStats(index);
      program.putBackend(index, backend);
      undo.push(() -> program.clearBackend(index));
      backendIndex.put(backend, index);
      undo.push(() -> backendIndex.remove(backend));
      indexed.add(backend);
    }
    backendUses.add(backend);
    undo.push(() -> backendUses.remove(backend));
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
      attachment.ifPresent(KeptAttachment::close);
    } finally {
      program.close();
      pinDir.ifPresent(BpfSystem::removePins);
    }
  }

  /**
   * Lets go without stopping anything: the program stays attached and the maps stay pinned, so the
   * interface keeps forwarding with the installed tables until a new director takes over the pins
   * ({@link #attachPinned}). This process's handles are released.
   */
  public synchronized void handOver() {
    if (pinDir.isEmpty()) {
      throw new IllegalStateException(
          "only a director with pinned maps can hand over; this one would stop" + " forwarding");
    }
    attachment.ifPresent(KeptAttachment::release);
    program.close();
    log.info("handed over: the program stays attached, its maps pinned in {}", pinDir.get());
  }
}
