package dev.veer.bpf.dataplane;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableSet;
import dev.veer.bpf.BpfMap;
import dev.veer.bpf.BpfObject;
import dev.veer.bpf.BpfProgram;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The loaded proxy program (GUE decapsulation and second-chance forwarding) and typed access to its
 * maps: the allow-list of directors and proxies, its configuration and its verdict counters.
 */
public final class ProxyProgram implements AutoCloseable {
  /** The sockops program that keeps the table of accepted connections. */
  public static final String FLOWS_PROGRAM = "veer_flows";

  /** The configuration map's name, also its pin's in a co-located director's pin directory. */
  public static final String CONFIG_MAP = "proxy_config";

  private static final int PEER_KEY_SIZE = 20;

  /** struct veer_peer_slot: key, used word, padding, struct veer_nexthop. */
  private static final int PEER_SLOT_SIZE = 56;

  private static final int PEER_SLOT_VALUE = 24;

  /** struct veer_served_slot: key, used word. */
  private static final int SERVED_SLOT_SIZE = 24;

  /** struct veer_flow: expires_ns. */
  private static final int FLOW_SIZE = 8;

  private final BpfObject object;
  private final DataplaneObject kind;
  private final BpfMap allowed;
  private final BpfMap served;
  private final BpfMap config;
  private final BpfMap verdicts;
  private final BpfMap flows4;
  private final BpfMap flows6;
  private final BpfMap flowsState;
  private ImmutableSet<InetAddress> allowedPeers = ImmutableSet.of();

  private ProxyProgram(BpfObject object, DataplaneObject kind) {
    this.object = object;
    this.kind = kind;
    this.allowed = object.map("allowed");
    this.served = object.map("served");
    this.config = object.map(CONFIG_MAP);
    this.verdicts = object.map("proxy_verdicts");
    this.flows4 = object.map("flows4");
    this.flows6 = object.map("flows6");
    this.flowsState = object.map("flows_state");
    MapLayouts.check(allowed, 4, 4);
    MapLayouts.check(served, 4, 4);
    MapLayouts.check(config, 4, ProxyConfig.SIZE);
    MapLayouts.check(flows4, 12, FLOW_SIZE);
    MapLayouts.check(flows6, 36, FLOW_SIZE);
    MapLayouts.check(flowsState, 4, 8);
  }

  public static ProxyProgram load(LoadOptions options) {
    return load(options, DataplaneObject.PROXY);
  }

  /**
   * Loads the proxy half of {@code kind} ({@link DataplaneObject#PROXY} or {@link
   * DataplaneObject#CO_LOCATED}).
   */
  public static ProxyProgram load(LoadOptions options, DataplaneObject kind) {
    checkArgument(kind != DataplaneObject.DIRECTOR, "the director object has no proxy half");
    BpfObject object = BpfObject.load(kind.resource(), options);
    try {
      return new ProxyProgram(object, kind);
    } catch (RuntimeException e) {
      object.close();
      throw e;
    }
  }

  public static ProxyProgram load() {
    return load(LoadOptions.DEFAULT);
  }

  public BpfProgram program() {
    return object.program(kind.program());
  }

  /** The sockops program keeping the flow table; attach it to a cgroup to use the table. */
  public BpfProgram flowsProgram() {
    return object.program(FLOWS_PROGRAM);
  }

  /** Writes the proxy's settings; until then it passes everything to the host. */
  public void configure(ProxyConfig settings) {
    config.update(MapLayouts.u32(0), settings.encode());
  }

  /**
   * How long the kernel keeps answering a SYN: its SYN-ACK is sent again after 1, 2, 4, ... seconds
   * ({@code net.ipv4.tcp_synack_retries} times), plus a second of slack.
   */
  public static int openingSeconds(int synAckRetries) {
    int seconds = 1;
    for (int i = 0; i <= synAckRetries; i++) {
      seconds += Math.min(1 << Math.min(i, 30), 120);
    }
    return seconds;
  }

  /** Connections in the flow table now, both families (handshakes included). */
  public int flowCount() {
    return flows4.keys().size() + flows6.keys().size();
  }

  /**
   * Removes handshakes whose time is over (the kernel gave up on them) and returns how many. {@code
   * nowNanos} is CLOCK_MONOTONIC, as {@link System#nanoTime()} reads it on Linux.
   */
  public int removeExpiredFlows(long nowNanos) {
    int removed = 0;
    for (BpfMap flows : new BpfMap[] {flows4, flows6}) {
      for (byte[] key : flows.keys()) {
        Optional<byte[]> value = flows.lookup(key);
        if (value.isEmpty()) {
          continue;
        }
        long expires = ByteBuffer.wrap(value.get()).order(ByteOrder.nativeOrder()).getLong(0);
        // A connection reusing the key meanwhile would have a later expiry, or none.
        if (expires != 0
            && expires < nowNanos
            && stillExpired(flows, key, nowNanos)
            && flows.delete(key)) {
          removed++;
        }
      }
    }
    return removed;
  }

  /**
   * Empties the flow table. For a table that outlived the sockops program that kept it (a
   * co-located host's, pinned): it may hold connections that closed meanwhile. Call it while the
   * table is not trusted.
   */
  public void clearFlows() {
    for (BpfMap flows : new BpfMap[] {flows4, flows6}) {
      for (byte[] key : flows.keys()) {
        flows.delete(key);
      }
    }
  }

  private static boolean stillExpired(BpfMap flows, byte[] key, long nowNanos) {
    Optional<byte[]> again = flows.lookup(key);
    if (again.isEmpty()) {
      return false;
    }
    long expires = ByteBuffer.wrap(again.get()).order(ByteOrder.nativeOrder()).getLong(0);
    return expires != 0 && expires < nowNanos;
  }

  /** Inserts into the flow table that failed so far (the sockops program counts them). */
  public long flowInsertFailures() {
    return stateWord(VeerAbi.FLOWS_FAILURES);
  }

  /** Whether the data plane takes a flow-table miss as "not ours", without a socket lookup. */
  public boolean flowsTrusted() {
    return stateWord(VeerAbi.FLOWS_TRUSTED) == flowInsertFailures() + 1;
  }

  /**
   * Vouches for the flow table: it holds every connection, given that {@code failures} inserts had
   * failed when it was last filled. A failure after that withdraws it by itself.
   */
  public void trustFlows(long failures) {
    flowsState.update(
        MapLayouts.u32(VeerAbi.FLOWS_TRUSTED),
        ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).putLong(0, failures + 1).array());
  }

  /** Makes every flow-table miss take the kernel's socket lookup again. */
  public void distrustFlows() {
    flowsState.update(MapLayouts.u32(VeerAbi.FLOWS_TRUSTED), new byte[8]);
  }

  private long stateWord(int index) {
    return ByteBuffer.wrap(flowsState.lookup(MapLayouts.u32(index)).orElseThrow())
        .order(ByteOrder.nativeOrder())
        .getLong(0);
  }

  /**
   * Makes the allow-list exactly {@code peers}: the directors and proxies that may send GUE to this
   * proxy and be forwarded to. The table is rebuilt and swapped in whole; next hops towards peers
   * are looked up again on use.
   */
  public synchronized void setAllowed(Set<InetAddress> peers) {
    if (peers.size() > VeerAbi.MAX_ALLOWED) {
      throw new IllegalArgumentException(
          "at most " + VeerAbi.MAX_ALLOWED + " peers, got " + peers.size());
    }
    Map<byte[], byte[]> encoded = new LinkedHashMap<>();
    for (InetAddress peer : peers) {
      encoded.put(peerKey(peer), new byte[MapLayouts.NEXTHOP_SIZE]);
    }
    FlatTable.PEERS.build(allowed, "veer_allowed", encoded, PEER_SLOT_SIZE, PEER_SLOT_VALUE);
    allowedPeers = ImmutableSet.copyOf(peers);
  }

  public synchronized ImmutableSet<InetAddress> allowedPeers() {
    return allowedPeers;
  }

  /**
   * Makes what this proxy delivers exactly {@code services}: an inner packet is delivered only to a
   * served VIP, port and protocol, or, for ICMP, to a served VIP (what it forwards is the next
   * hop's to judge). The table is rebuilt and swapped in whole; until the first call nothing is
   * delivered, unless a predecessor's pinned table was taken over.
   */
  public synchronized void setServed(Set<ServiceKey> services) {
    Set<ServiceKey> keys = new java.util.LinkedHashSet<>(services);
    services.forEach(s -> keys.add(ServiceKey.vipMarker(s.vip())));
    if (keys.size() > FlatTable.PEERS.capacity()) {
      throw new IllegalArgumentException(
          "a proxy serves at most "
              + FlatTable.PEERS.capacity()
              + " services and VIPs"
              + " together, got "
              + keys.size());
    }
    Map<byte[], byte[]> encoded = new LinkedHashMap<>();
    for (ServiceKey key : keys) {
      encoded.put(key.encode(), new byte[0]);
    }
    FlatTable.PEERS.build(served, "veer_served", encoded, SERVED_SLOT_SIZE, SERVED_SLOT_SIZE);
  }

  public EnumMap<ProxyVerdict, Long> verdicts() {
    EnumMap<ProxyVerdict, Long> out = new EnumMap<>(ProxyVerdict.class);
    for (ProxyVerdict v : ProxyVerdict.values()) {
      out.put(v, MapLayouts.sumPerCpu(verdicts.lookupPerCpu(MapLayouts.u32(v.code)), 0));
    }
    return out;
  }

  @Override
  public void close() {
    object.close();
  }

  private static byte[] peerKey(InetAddress peer) {
    return ByteBuffer.allocate(PEER_KEY_SIZE)
        .put(IpFamily.toMapBytes(peer))
        .put((byte) IpFamily.of(peer).code())
        .array();
  }
}
