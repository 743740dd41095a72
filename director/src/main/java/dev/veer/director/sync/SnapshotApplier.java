package dev.veer.director.sync;

import com.google.common.collect.ImmutableMap;
import com.google.protobuf.ByteString;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.dataplane.DataplaneObject;
import dev.veer.bpf.dataplane.DirectorConfig;
import dev.veer.bpf.dataplane.HopTable;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.director.dataplane.DirectorDataplane;
import dev.veer.proto.TableRowsCodec;
import dev.veer.proto.director.v1.Applied;
import dev.veer.proto.director.v1.ServiceTable;
import dev.veer.proto.director.v1.Snapshot;
import dev.veer.proto.types.v1.Encapsulation;
import dev.veer.proto.types.v1.HashFields;
import dev.veer.proto.types.v1.Protocol;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Applies coordinator snapshots to the director's data plane: every service's table switched
 * atomically (one pointer swap each), services that are gone removed, the flow hash key set. A
 * version may come in several messages, each applied as it comes. Checks a whole message before
 * touching the data plane, so a malformed one changes nothing, and hands it over as one change
 * ({@link DirectorDataplane#update}), so one the maps cannot take changes nothing either.
 */
public final class SnapshotApplier {
  private static final Logger log = LoggerFactory.getLogger(SnapshotApplier.class);

  private final DirectorDataplane dataplane;
  private final Optional<Inet4Address> source4;
  private final Optional<Inet6Address> source6;
  private final Map<String, Held> held = new HashMap<>();
  private byte[] hashKey;
  private int guePort;
  private long appliedVersion;
  private int checkIntervalMillis;
  private int checkTimeoutMillis;
  private final Map<String, ProbeTarget> targets = new HashMap<>();

  /** A service as the director's probes see it: where clients reach it, and its table. */
  public record ProbeTarget(String name, ServiceKey key, ServiceOptions options, HopTable table) {}

  /** What route health injection needs of a service: its VIP and how healthy it is. */
  public record Announcement(
      String service, InetAddress vip, int healthyBackends, int minHealthy) {}

  private final Map<String, Announcement> announcements = new TreeMap<>();

  /** The version whose messages are coming in, the services they named so far. */
  private long receiving;

  private final Set<ServiceKey> named = new HashSet<>();

  /** One of the receiving version's messages failed: the rest of it is not applied. */
  private boolean receivingFailed;

  /** A service as the data plane has it. */
  private record Held(ServiceKey key, long tableVersion) {}

  /** The NICs' Toeplitz key the program holds (RX-hash mode). */
  private byte[] nicHashKey = new byte[0];

  /**
   * Refuses a cluster whose flow hash this director's program does not compute: every director must
   * map a flow to the same row, whichever the router sends it to.
   */
  private void checkFlowHash(int nicKeyLength) {
    boolean rxHash = dataplane.program().kind() == DataplaneObject.DIRECTOR_RX_HASH;
    if (nicKeyLength != 0 && nicKeyLength != VeerAbi.TOEPLITZ_KEY_LEN) {
      throw new IllegalArgumentException(
          "the NICs' RSS key has " + VeerAbi.TOEPLITZ_KEY_LEN + " bytes, not " + nicKeyLength);
    }
    if (rxHash && nicKeyLength == 0) {
      throw new IllegalArgumentException(
          "this director takes its flow hash from the NIC (--rx-hash), but the cluster hashes"
              + " flows with its own key: restart it without --rx-hash, or create the cluster with"
              + " the NICs' key (coordinator --nic-hash-key)");
    }
    if (!rxHash && nicKeyLength != 0) {
      throw new IllegalArgumentException(
          "the cluster's flow hash is the NICs' RSS hash: restart this director with --rx-hash,"
              + " on an interface whose NIC hashes with the cluster's key (ethtool -X hkey)");
    }
  }

  public SnapshotApplier(
      DirectorDataplane dataplane, Optional<Inet4Address> source4, Optional<Inet6Address> source6) {
    this.dataplane = dataplane;
    this.source4 = source4;
    this.source6 = source6;
  }

  /** The snapshot version the data plane forwards with (0: none yet). */
  public synchronized long appliedVersion() {
    return appliedVersion;
  }

  /** The services installed now, with their tables, for probing. */
  public synchronized List<ProbeTarget> probeTargets() {
    return List.copyOf(targets.values());
  }

  /** The services of the applied snapshot, for route health injection. */
  public synchronized List<Announcement> announcements() {
    return List.copyOf(announcements.values());
  }

  /** The cluster's flow-hash key, once a snapshot brought it. */
  public synchronized Optional<byte[]> hashKey() {
    return Optional.ofNullable(hashKey).map(byte[]::clone);
  }

  /** The NICs' Toeplitz key in RX-hash mode; empty otherwise. */
  public synchronized byte[] nicHashKey() {
    return nicHashKey.clone();
  }

  /** How often to probe (0: the coordinators do not ask for probes). */
  public synchronized int checkIntervalMillis() {
    return checkIntervalMillis;
  }

  public synchronized int checkTimeoutMillis() {
    return checkTimeoutMillis;
  }

  /** The table version of each service the data plane holds. */
  public synchronized ImmutableMap<String, Long> tableVersions() {
    ImmutableMap.Builder<String, Long> out = ImmutableMap.builder();
    held.forEach((name, h) -> out.put(name, h.tableVersion()));
    return out.build();
  }

  /** Applies a version sent in one message; see {@link #receive}. */
  public synchronized Applied apply(Snapshot snapshot) {
    return receive(snapshot)
        .orElseThrow(() -> new IllegalArgumentException("version sent in several messages"));
  }

  /**
   * Applies one message of a version, whole or not at all: a malformed message, or one the maps
   * cannot take, leaves the data plane and this applier as they were. Returns the acknowledgement
   * to send: after the version's last message, or at the first message that fails (the rest of that
   * version is then ignored), and nothing for a message that more of its version follow.
   */
  public synchronized Optional<Applied> receive(Snapshot message) {
    long start = System.nanoTime();
    long version = message.getVersion();
    if (message.getPart() == 0) {
      receiving = version;
      receivingFailed = false;
      named.clear();
    } else if (receivingFailed || version != receiving) {
      // The rest of a version that failed, or of one whose start this director did not see.
      return Optional.empty();
    }
    boolean last = !message.getMore();
    try {
      List<Decoded> decoded = decode(message);
      Set<String> dropped = new HashSet<>(message.getRemovedList());
      Map<ServiceKey, DirectorDataplane.Wanted> wanted = new LinkedHashMap<>();
      Set<ServiceKey> removed = new HashSet<>();
      for (String name : message.getRemovedList()) {
        Held h = held.get(name);
        if (h != null) {
          removed.add(h.key());
        }
      }
      for (Decoded service : decoded) {
        named.add(service.key());
        Optional<HopTable> table = service.table();
        Held before = held.get(service.name());
        if (before != null && !before.key().equals(service.key())) {
          // Same service, new VIP or port: the table moves with it if it was not sent.
          if (table.isEmpty()) {
            table = dataplane.table(before.key());
          }
          removed.add(before.key());
        }
        wanted.put(service.key(), new DirectorDataplane.Wanted(service.options(), table));
      }
      if (last && !message.getIncremental()) {
        // Whatever else is installed went: services deleted since, or taken over from pinned maps.
        Set<ServiceKey> unnamed = new HashSet<>(dataplane.tables().keySet());
        unnamed.removeAll(named);
        removed.addAll(unnamed);
        held.forEach(
            (name, h) -> {
              if (unnamed.contains(h.key())) {
                dropped.add(name);
              }
            });
      }
      removed.removeAll(wanted.keySet());
      byte[] nicKey = message.getSettings().getNicHashKey().toByteArray();
      if (nicKey.length > 0 && !Arrays.equals(nicKey, nicHashKey)) {
        dataplane.program().setToeplitzKey(nicKey);
        nicHashKey = nicKey;
      }
      byte[] key = message.getSettings().getFlowHashKey().toByteArray();
      int port = message.getSettings().getGuePort();
      boolean reconfigure = !Arrays.equals(key, hashKey) || port != guePort;

      dataplane.update(
          wanted,
          removed,
          reconfigure
              ? Optional.of(new DirectorConfig(key, source4, source6, port))
              : Optional.empty());

      if (reconfigure) {
        hashKey = key;
        guePort = port;
        log.info("flow hash key and GUE port {} set from the coordinator", port);
      }
      removed.forEach(k -> log.info("service {} removed", k));
      for (String name : dropped) {
        held.remove(name);
        targets.remove(name);
        announcements.remove(name);
      }
      for (Decoded service : decoded) {
        held.put(service.name(), new Held(service.key(), service.tableVersion()));
        targets.put(
            service.name(),
            new ProbeTarget(
                service.name(),
                service.key(),
                service.options(),
                dataplane.table(service.key()).orElseThrow()));
      }
      for (ServiceTable t : message.getServicesList()) {
        announcements.put(
            t.getName(),
            new Announcement(
                t.getName(),
                address(t.getVip()),
                t.getHealthyBackends(),
                Math.max(1, t.getMinHealthy())));
      }
      if (!last) {
        return Optional.empty();
      }
      checkIntervalMillis = message.getSettings().getCheckIntervalMillis();
      checkTimeoutMillis = message.getSettings().getCheckTimeoutMillis();
      appliedVersion = version;
      log.debug("version {} applied in {} ms", version, (System.nanoTime() - start) / 1_000_000);
      return Optional.of(Applied.newBuilder().setVersion(version).setSuccess(true).build());
    } catch (RuntimeException e) {
      log.warn("could not apply version {}: {}", version, e.getMessage());
      receivingFailed = true;
      return Optional.of(
          Applied.newBuilder()
              .setVersion(version)
              .setSuccess(false)
              .setError(String.valueOf(e.getMessage()))
              .build());
    }
  }

  private record Decoded(
      String name,
      ServiceKey key,
      ServiceOptions options,
      long tableVersion,
      Optional<HopTable> table) {}

  /** Checks and decodes every service of a snapshot; throws before anything is applied. */
  private List<Decoded> decode(Snapshot snapshot) {
    int rowBits = dataplane.program().rowBits();
    if (snapshot.getSettings().getRowBits() != rowBits) {
      throw new IllegalArgumentException(
          "the cluster's tables have 2^"
              + snapshot.getSettings().getRowBits()
              + " rows, this director's program 2^"
              + rowBits
              + ": restart it with --row-bits "
              + snapshot.getSettings().getRowBits());
    }
    if (snapshot.getSettings().getFlowHashKey().size() != 16) {
      throw new IllegalArgumentException("the flow hash key must have 16 bytes");
    }
    checkFlowHash(snapshot.getSettings().getNicHashKey().size());
    List<Decoded> out = new ArrayList<>();
    Set<ServiceKey> keys = new HashSet<>();
    for (ServiceTable service : snapshot.getServicesList()) {
      ServiceKey key =
          new ServiceKey(
              address(service.getVip()),
              service.getPort(),
              service.getProtocol() == Protocol.UDP ? ServiceKey.UDP : ServiceKey.TCP);
      if (!keys.add(key)) {
        throw new IllegalArgumentException("two services of the snapshot share " + key);
      }
      ServiceOptions options =
          new ServiceOptions(
              service.getHashFields() == HashFields.SOURCE_ADDRESS
                  ? ServiceOptions.HashFields.SOURCE_IP
                  : ServiceOptions.HashFields.SOURCE_IP_AND_PORT,
              service.getEncapsulation() == Encapsulation.IPIP
                  ? ServiceOptions.Encapsulation.IPIP
                  : ServiceOptions.Encapsulation.GUE);
      Optional<HopTable> table = Optional.empty();
      if (service.getHasTable()) {
        table = Optional.of(table(service, rowBits, base(service)));
      } else {
        Held h = held.get(service.getName());
        if (h == null || h.tableVersion() != service.getTableVersion()) {
          throw new IllegalArgumentException(
              "service "
                  + service.getName()
                  + ": table version "
                  + service.getTableVersion()
                  + " was not sent and is not held here");
        }
      }
      out.add(new Decoded(service.getName(), key, options, service.getTableVersion(), table));
    }
    return out;
  }

  /**
   * The cells of the table a service sent as a delta changes: the one held at its base version,
   * which the director must hold (a coordinator sends deltas only against what it sent).
   */
  private char[] base(ServiceTable service) {
    if (service.getBaseTableVersion() == 0) {
      return null;
    }
    Held h = held.get(service.getName());
    if (h == null || h.tableVersion() != service.getBaseTableVersion()) {
      throw new IllegalArgumentException(
          "service "
              + service.getName()
              + ": rows sent as changes to table version "
              + service.getBaseTableVersion()
              + ", but "
              + (h == null ? "no table" : "table version " + h.tableVersion())
              + " is held here");
    }
    return dataplane
        .table(h.key())
        .orElseThrow(
            () ->
                new IllegalStateException(
                    "service " + service.getName() + " is held, but its table is not installed"))
        .cells();
  }

  private static HopTable table(ServiceTable service, int rowBits, char[] baseCells) {
    List<InetAddress> backends = new ArrayList<>();
    for (ByteString b : service.getBackendsList()) {
      backends.add(address(b));
    }
    try {
      return HopTable.ofCells(
          rowBits,
          backends,
          baseCells == null
              ? TableRowsCodec.cells(service, rowBits, VeerAbi.MAX_HOPS)
              : TableRowsCodec.cells(service, rowBits, VeerAbi.MAX_HOPS, baseCells));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("service " + service.getName() + ": " + e.getMessage(), e);
    }
  }

  private static InetAddress address(ByteString bytes) {
    try {
      if (bytes.size() != 4 && bytes.size() != 16) {
        throw new IllegalArgumentException("an address has 4 or 16 bytes, got " + bytes.size());
      }
      return InetAddress.getByAddress(bytes.toByteArray());
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }
}
