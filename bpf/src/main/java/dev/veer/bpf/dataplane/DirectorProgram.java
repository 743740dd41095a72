package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableMap;
import dev.veer.bpf.BpfMap;
import dev.veer.bpf.BpfObject;
import dev.veer.bpf.BpfProgram;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ColocatedVerdict;
import dev.veer.bpf.abi.VeerAbi.DirectorVerdict;
import dev.veer.bpf.abi.VeerAbi.RxHashSource;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.util.Collection;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The loaded director program and typed access to its maps. Holds kernel objects until {@link
 * #close()}; attaching it to an interface is the caller's business (see {@code XdpAttachment}).
 */
public final class DirectorProgram implements AutoCloseable {
  private final BpfObject object;
  private final DataplaneObject kind;
  private final BpfMap services;
  private final BpfMap tables;
  private final BpfMap backends;
  private final BpfMap config;
  private final BpfMap verdicts;
  private final BpfMap serviceStats;
  private final BpfMap backendStats;

  /** What the services table holds; the kernel's copy is rebuilt from it on every change. */
  private ImmutableMap<ServiceKey, ServiceEntry> serviceEntries = ImmutableMap.of();

  /** struct veer_service_slot: key, used word, struct veer_service. */
  private static final int SERVICE_SLOT_SIZE = 36;

  private static final int SERVICE_SLOT_VALUE = 24;
  private static final ServiceEntry VIP_MARKER = new ServiceEntry(0, 0, VeerAbi.MIN_ROW_BITS, 0);

  private final int rowBits;
  private final Optional<InnerPins> innerPins;

  private DirectorProgram(
      BpfObject object, DataplaneObject kind, int rowBits, Optional<InnerPins> innerPins) {
    this.object = object;
    this.kind = kind;
    this.rowBits = rowBits;
    this.innerPins = innerPins;
    this.services = object.map("services");
    this.tables = object.map("hop_tables");
    this.backends = object.map("backends");
    this.config = object.map("config");
    this.verdicts = object.map("verdicts");
    this.serviceStats = object.map("service_stats");
    this.backendStats = object.map("backend_stats");
    MapLayouts.check(services, 4, 4);
    MapLayouts.check(backends, 4, BACKEND_SIZE);
    MapLayouts.check(config, 4, DirectorConfig.SIZE);
    MapLayouts.check(serviceStats, 4, ServiceStats.SIZE);
    MapLayouts.check(backendStats, 4, BACKEND_STATS_SIZE);
  }

  /**
   * Loads the director program for tables of {@code 2^rowBits} rows: every table this director
   * installs has that row count.
   */
  public static DirectorProgram load(int rowBits, LoadOptions options) {
    return load(rowBits, options, DataplaneObject.DIRECTOR);
  }

  /**
   * Loads the director half of {@code kind} ({@link DataplaneObject#DIRECTOR} or {@link
   * DataplaneObject#CO_LOCATED}) for tables of {@code 2^rowBits} rows.
   */
  public static DirectorProgram load(int rowBits, LoadOptions options, DataplaneObject kind) {
    checkArgument(kind != DataplaneObject.PROXY, "the proxy object has no director half");
    RowBits.check(rowBits);
    BpfObject object =
        BpfObject.load(kind.resource(), options.withInnerMap("hop_tables", TableMap.template()));
    try {
      return new DirectorProgram(object, kind, rowBits, InnerPins.under(options.pinRoot()));
    } catch (RuntimeException e) {
      object.close();
      throw e;
    }
  }

  public static DirectorProgram load(int rowBits) {
    return load(rowBits, LoadOptions.DEFAULT);
  }

  /** Every table of this director has {@code 2^rowBits()} rows. */
  public int rowBits() {
    return rowBits;
  }

  public BpfProgram program() {
    return object.program(kind.program());
  }

  public void configure(DirectorConfig value) {
    config.update(MapLayouts.u32(0), value.encode());
  }

  /**
   * Adds or replaces a service entry, and marks its VIP as one (so fragments and other traffic to
   * it are dropped, not passed to the host). The services table is rebuilt and swapped in whole: on
   * failure nothing changes.
   */
  public synchronized void putService(ServiceKey key, ServiceEntry entry) {
    Map<ServiceKey, ServiceEntry> next = new LinkedHashMap<>(services());
    next.put(key, entry);
    replaceServices(next);
  }

  /** Removes a service entry, and its VIP's mark with the VIP's last service. */
  public synchronized boolean removeService(ServiceKey key) {
    if (!serviceEntries.containsKey(key)) {
      return false;
    }
    Map<ServiceKey, ServiceEntry> next = new LinkedHashMap<>(services());
    next.remove(key);
    replaceServices(next);
    return true;
  }

  /**
   * Makes {@code entries} the service entries, each VIP marked while it has a service: one swap for
   * the data plane, however many services come, change or go. On failure (say, more entries than
   * the table holds) nothing changes.
   */
  public synchronized void replaceServices(Map<ServiceKey, ServiceEntry> entries) {
    installServices(withVipMarks(entries));
  }

  /**
   * Fails as {@link #replaceServices} would if these services, in this order, do not fit the
   * services table; writes nothing. Where a service's entry points does not matter for that.
   */
  public void checkServicesFit(Collection<ServiceKey> keys) {
    long services = keys.stream().filter(k -> k.protocol() != 0).count();
    checkArgument(
        services <= VeerAbi.MAX_SERVICES,
        "it holds at most %s services, not %s",
        VeerAbi.MAX_SERVICES,
        services);
    Map<ServiceKey, ServiceEntry> entries = new LinkedHashMap<>();
    keys.forEach(key -> entries.put(key, VIP_MARKER));
    layoutServices(withVipMarks(entries));
  }

  private static Map<ServiceKey, ServiceEntry> withVipMarks(Map<ServiceKey, ServiceEntry> entries) {
    Map<ServiceKey, ServiceEntry> out = new LinkedHashMap<>();
    entries.forEach(
        (key, entry) -> {
          checkArgument(key.protocol() != 0, "not a service key: %s", key);
          out.put(key, entry);
          out.putIfAbsent(ServiceKey.vipMarker(key.vip()), VIP_MARKER);
        });
    return out;
  }

  public synchronized Optional<ServiceEntry> service(ServiceKey key) {
    return Optional.ofNullable(serviceEntries.get(key));
  }

  /** All service entries, without the VIP markers. */
  public synchronized ImmutableMap<ServiceKey, ServiceEntry> services() {
    ImmutableMap.Builder<ServiceKey, ServiceEntry> out = ImmutableMap.builder();
    serviceEntries.forEach(
        (k, v) -> {
          if (k.protocol() != 0) {
            out.put(k, v);
          }
        });
    return out.build();
  }

  private void installServices(Map<ServiceKey, ServiceEntry> next) {
    FlatTable.SERVICES.install(
        services,
        "veer_services",
        layoutServices(next),
        SERVICE_SLOT_SIZE,
        inner -> innerPins.ifPresent(p -> p.pin(SERVICES_PIN, inner)));
    serviceEntries = ImmutableMap.copyOf(next);
  }

  private static byte[] layoutServices(Map<ServiceKey, ServiceEntry> entries) {
    Map<byte[], byte[]> encoded = new LinkedHashMap<>();
    entries.forEach((k, v) -> encoded.put(k.encode(), v.encode()));
    return FlatTable.SERVICES.layout(encoded, SERVICE_SLOT_SIZE, SERVICE_SLOT_VALUE);
  }

  /**
   * Reads the service entries back from the kernel (VIP markers included), for a daemon that took
   * over pinned maps; they become what later changes start from.
   */
  public synchronized ImmutableMap<ServiceKey, ServiceEntry> readServices() {
    Map<ServiceKey, ServiceEntry> found = new LinkedHashMap<>();
    Optional<byte[]> inner = services.lookup(MapLayouts.u32(0));
    if (inner.isPresent()) {
      try (BpfMap table =
          InnerPins.open(innerPins, SERVICES_PIN, MapLayouts.readU32(inner.get()))) {
        for (int slot = 0; slot < FlatTable.SERVICES.slots(); slot++) {
          byte[] value = table.lookup(MapLayouts.u32(slot)).orElseThrow();
          if (MapLayouts.readU32(value, ServiceKey.SIZE) != 0) {
            found.put(ServiceKey.decode(value, 0), ServiceEntry.decode(value, SERVICE_SLOT_VALUE));
          }
        }
      }
    }
    serviceEntries = ImmutableMap.copyOf(found);
    return serviceEntries;
  }

  /**
   * The cells of the table installed in {@code slot}, wide or narrow as its service says
   * (backends-map indices, {@link VeerAbi#MAX_HOPS} a row, 0 = none), if any.
   */
  public Optional<int[]> readTable(int slot, boolean narrow) {
    Optional<byte[]> inner = tables.lookup(MapLayouts.u32(slot));
    if (inner.isEmpty()) {
      return Optional.empty();
    }
    try (BpfMap map = InnerPins.open(innerPins, tablePin(slot), MapLayouts.readU32(inner.get()))) {
      return Optional.of(TableMap.of(map, rowBits, narrow).cells());
    }
  }

  /** The configuration in the map, if one was ever written (a non-zero hash key). */
  public Optional<DirectorConfig> readConfig() {
    byte[] value = config.lookup(MapLayouts.u32(0)).orElseThrow();
    return DirectorConfig.decode(value);
  }

  /** struct veer_backend: the cached next hop (32 bytes), then address and family. */
  static final int BACKEND_SIZE = 56;

  private static final int BACKEND_ADDRESS = MapLayouts.NEXTHOP_SIZE;
  private static final int BACKEND_FAMILY = BACKEND_ADDRESS + 16;

  /**
   * Writes a backend address with an empty next-hop cache, which the data plane fills from the
   * kernel's FIB. Never rewrite an index a live table still names.
   */
  public void putBackend(int index, InetAddress address) {
    checkArgument(
        index > 0 && index < VeerAbi.MAX_BACKENDS,
        "backend index must be 1..%s, got %s",
        VeerAbi.MAX_BACKENDS - 1,
        index);
    byte[] value =
        ByteBuffer.allocate(BACKEND_SIZE)
            .position(BACKEND_ADDRESS)
            .put(IpFamily.toMapBytes(address))
            .put((byte) IpFamily.of(address).code())
            .array();
    backends.update(MapLayouts.u32(index), value);
  }

  public void clearBackend(int index) {
    backends.update(MapLayouts.u32(index), new byte[BACKEND_SIZE]);
  }

  public Optional<InetAddress> backend(int index) {
    byte[] value = backends.lookup(MapLayouts.u32(index)).orElseThrow();
    if (value[BACKEND_FAMILY] == 0) {
      return Optional.empty();
    }
    return Optional.of(IpFamily.ofCode(value[BACKEND_FAMILY]).fromMapBytes(value, BACKEND_ADDRESS));
  }

  /**
   * Creates an empty table with {@code 2^rowBits} rows of {@code maxHops} hops at most, naming
   * {@code backends} backends, to be filled and then installed with {@link #installTable}; narrow
   * when its rows fit. The caller closes it afterwards.
   */
  public TableMap newTable(int rowBits, int maxHops, int backends) {
    checkArgument(
        rowBits == this.rowBits,
        "this director runs tables of 2^%s rows, not 2^%s: load it with "
            + "the row count the tables are built with",
        this.rowBits,
        rowBits);
    checkArgument(
        backends < VeerAbi.MAX_BACKENDS,
        "a table names %s backends, over the %s a director holds",
        backends,
        VeerAbi.MAX_BACKENDS - 1);
    return TableMap.create(rowBits, TableMap.fitsNarrow(maxHops), backends);
  }

  /**
   * Points a table slot at a filled table: one atomic pointer swap for the data plane. The service
   * entry naming the slot must say the table's width (a table of the other width goes to another
   * slot).
   */
  public void installTable(int slot, TableMap table) {
    checkArgument(slot >= 0 && slot < VeerAbi.MAX_TABLES, "table slot out of range: %s", slot);
    innerPins.ifPresent(p -> p.pin(tablePin(slot), table.map()));
    tables.update(MapLayouts.u32(slot), MapLayouts.u32(table.fd()));
  }

  /**
   * Points several table slots at filled tables in one batch update: each slot switches atomically,
   * and the kernel waits for one RCU grace period for them all, not one each (7 ms a table here,
   * the bulk of installing thousands).
   */
  public void installTables(Map<Integer, TableMap> tablesBySlot) {
    if (tablesBySlot.isEmpty()) {
      return;
    }
    ByteBuffer keys =
        ByteBuffer.allocate(4 * tablesBySlot.size()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    ByteBuffer values =
        ByteBuffer.allocate(4 * tablesBySlot.size()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    tablesBySlot.forEach(
        (slot, table) -> {
          checkArgument(
              slot >= 0 && slot < VeerAbi.MAX_TABLES, "table slot out of range: %s", slot);
          innerPins.ifPresent(p -> p.pin(tablePin(slot), table.map()));
          keys.putInt(slot);
          values.putInt(table.fd());
        });
    tables.updateBatch(keys.array(), values.array(), tablesBySlot.size());
  }

  public boolean removeTable(int slot) {
    boolean removed = tables.delete(MapLayouts.u32(slot));
    innerPins.ifPresent(p -> p.unpin(tablePin(slot)));
    return removed;
  }

  private static final String SERVICES_PIN = "services";

  private static String tablePin(int slot) {
    return "table-" + slot;
  }

  public EnumMap<DirectorVerdict, Long> verdicts() {
    EnumMap<DirectorVerdict, Long> out = new EnumMap<>(DirectorVerdict.class);
    for (DirectorVerdict v : DirectorVerdict.values()) {
      out.put(v, MapLayouts.sumPerCpu(verdicts.lookupPerCpu(MapLayouts.u32(v.code)), 0));
    }
    return out;
  }

  public ServiceStats serviceStats(int statsSlot) {
    byte[][] perCpu = serviceStats.lookupPerCpu(MapLayouts.u32(statsSlot));
    return new ServiceStats(
        MapLayouts.sumPerCpu(perCpu, 0),
        MapLayouts.sumPerCpu(perCpu, 8),
        MapLayouts.sumPerCpu(perCpu, 16));
  }

  /** struct veer_backend_stats: packets and bytes sent to a backend as the primary. */
  static final int BACKEND_STATS_SIZE = 16;

  /** Packets and bytes sent to the backend at {@code index} as its row's primary, all CPUs. */
  public long[] backendStats(int index) {
    byte[][] perCpu = backendStats.lookupPerCpu(MapLayouts.u32(index));
    return new long[] {MapLayouts.sumPerCpu(perCpu, 0), MapLayouts.sumPerCpu(perCpu, 8)};
  }

  /** Zeroes a backend index's counters, before the index names a new backend. */
  public void resetBackendStats(int index) {
    backendStats.updatePerCpu(
        MapLayouts.u32(index), new byte[MapLayouts.possibleCpus()][BACKEND_STATS_SIZE]);
  }

  public void resetServiceStats(int statsSlot) {
    byte[][] zero = new byte[MapLayouts.possibleCpus()][ServiceStats.SIZE];
    serviceStats.updatePerCpu(MapLayouts.u32(statsSlot), zero);
  }

  /** The object this program was loaded from. */
  public DataplaneObject kind() {
    return kind;
  }

  /**
   * A co-located program's counts of the packets to services it delivered to its own host; empty
   * for a director's.
   */
  public EnumMap<ColocatedVerdict, Long> colocatedVerdicts() {
    EnumMap<ColocatedVerdict, Long> out = new EnumMap<>(ColocatedVerdict.class);
    if (kind == DataplaneObject.CO_LOCATED) {
      BpfMap counters = object.map("colocated_verdicts");
      for (ColocatedVerdict v : ColocatedVerdict.values()) {
        out.put(v, MapLayouts.sumPerCpu(counters.lookupPerCpu(MapLayouts.u32(v.code)), 0));
      }
    }
    return out;
  }

  /**
   * Sets the NICs' Toeplitz key (RX-hash mode), with which the program computes the NIC's hash of a
   * flow that ICMP is about.
   */
  public void setToeplitzKey(byte[] key) {
    checkArgument(kind == DataplaneObject.DIRECTOR_RX_HASH, "only an RX-hash director has a key");
    checkArgument(
        key.length == VeerAbi.TOEPLITZ_KEY_LEN,
        "the NICs' RSS key has %s bytes, not %s",
        VeerAbi.TOEPLITZ_KEY_LEN,
        key.length);
    object.map("toeplitz_key").update(MapLayouts.u32(0), key);
  }

  /** An RX-hash director's counts of where its flow hashes came from; empty otherwise. */
  public EnumMap<RxHashSource, Long> rxHashSources() {
    EnumMap<RxHashSource, Long> out = new EnumMap<>(RxHashSource.class);
    if (kind == DataplaneObject.DIRECTOR_RX_HASH) {
      BpfMap counters = object.map("rx_hash_sources");
      for (RxHashSource v : RxHashSource.values()) {
        out.put(v, MapLayouts.sumPerCpu(counters.lookupPerCpu(MapLayouts.u32(v.code)), 0));
      }
    }
    return out;
  }

  public Map<String, BpfMap> maps() {
    return Map.of(
        "services",
        services,
        "hop_tables",
        tables,
        "backends",
        backends,
        "config",
        config,
        "verdicts",
        verdicts,
        "service_stats",
        serviceStats);
  }

  @Override
  public void close() {
    object.close();
  }
}
