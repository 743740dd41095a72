package dev.veer.bpf.dataplane;

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
import java.util.Set;

/**
 * The loaded proxy program (GUE decapsulation and second-chance forwarding)
 * and typed access to its maps: the allow-list of directors and proxies,
 * its configuration and its verdict counters.
 */
public final class ProxyProgram implements AutoCloseable {
  public static final String OBJECT = "/bpf/proxy.o";
  public static final String PROGRAM = "veer_proxy";
  /** The sockops program that keeps the table of accepted connections. */
  public static final String FLOWS_PROGRAM = "veer_flows";
  private static final int PEER_KEY_SIZE = 20;
  /** struct veer_peer_slot: key, used word, padding, struct veer_nexthop. */
  private static final int PEER_SLOT_SIZE = 56;
  private static final int PEER_SLOT_VALUE = 24;
  /** struct veer_proxy_config: GUE port, two reserved fields, netns cookie. */
  private static final int CONFIG_SIZE = 16;

  private final BpfObject object;
  private final BpfMap allowed;
  private final BpfMap config;
  private final BpfMap verdicts;
  private final BpfMap flows4;
  private final BpfMap flows6;
  private ImmutableSet<InetAddress> allowedPeers = ImmutableSet.of();

  private ProxyProgram(BpfObject object) {
    this.object = object;
    this.allowed = object.map("allowed");
    this.config = object.map("config");
    this.verdicts = object.map("verdicts");
    this.flows4 = object.map("flows4");
    this.flows6 = object.map("flows6");
    MapLayouts.check(allowed, 4, 4);
    MapLayouts.check(config, 4, CONFIG_SIZE);
  }

  public static ProxyProgram load(LoadOptions options) {
    BpfObject object = BpfObject.load(OBJECT, options);
    try {
      return new ProxyProgram(object);
    } catch (RuntimeException e) {
      object.close();
      throw e;
    }
  }

  public static ProxyProgram load() {
    return load(LoadOptions.DEFAULT);
  }

  public BpfProgram program() {
    return object.program(PROGRAM);
  }

  /** The sockops program keeping the flow table; attach it to a cgroup to use the table. */
  public BpfProgram flowsProgram() {
    return object.program(FLOWS_PROGRAM);
  }

  /**
   * Sets the GUE port and the network namespace whose accepted connections the flow table
   * keeps ({@link dev.veer.bpf.NetworkNamespace#cookie()}; 0 keeps none, so every
   * non-SYN packet takes the socket lookup).
   */
  public void configure(int guePort, long flowsNetnsCookie) {
    if (guePort <= 0 || guePort > 65535) {
      throw new IllegalArgumentException("GUE port must be 1..65535, got " + guePort);
    }
    byte[] value = ByteBuffer.allocate(CONFIG_SIZE).order(ByteOrder.nativeOrder())
        .put(0, ByteBuffer.allocate(2).putShort((short) guePort).array())
        .putLong(8, flowsNetnsCookie).array();
    config.update(MapLayouts.u32(0), value);
  }

  public void configure() {
    configure(VeerAbi.GUE_PORT_DEFAULT, 0);
  }

  /** Connections in the flow table now, both families. */
  public int flowCount() {
    return flows4.keys().size() + flows6.keys().size();
  }

  /**
   * Makes the allow-list exactly {@code peers}: the directors and proxies that
   * may send GUE to this proxy and be forwarded to. The table is rebuilt and
   * swapped in whole; next hops towards peers are looked up again on use.
   */
  public synchronized void setAllowed(Set<InetAddress> peers) {
    if (peers.size() > VeerAbi.MAX_ALLOWED) {
      throw new IllegalArgumentException("at most " + VeerAbi.MAX_ALLOWED + " peers, got " + peers.size());
    }
    Map<byte[], byte[]> encoded = new LinkedHashMap<>();
    for (InetAddress peer : peers) {
      encoded.put(peerKey(peer), new byte[MapLayouts.NEXTHOP_SIZE]);
    }
    FlatTable.install(allowed, "veer_allowed", FlatTable.layout(encoded, PEER_SLOT_SIZE, PEER_SLOT_VALUE),
        PEER_SLOT_SIZE);
    allowedPeers = ImmutableSet.copyOf(peers);
  }

  public synchronized ImmutableSet<InetAddress> allowedPeers() {
    return allowedPeers;
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
    return ByteBuffer.allocate(PEER_KEY_SIZE).put(IpFamily.toMapBytes(peer))
        .put((byte) IpFamily.of(peer).code()).array();
  }
}
