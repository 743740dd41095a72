package dev.veer.bpf.dataplane;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.net.InetAddresses;
import dev.veer.bpf.abi.VeerAbi;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class FlatTableTest {
  static final int SLOT = 36;
  static final int VALUE = 24;
  static final int CAPACITY = FlatTable.CAPACITY;

  /** Consecutive addresses: the plan an operator is most likely to use. */
  static Map<byte[], byte[]> consecutive(InetAddress first, int count, int port) {
    Map<byte[], byte[]> entries = new LinkedHashMap<>();
    InetAddress a = first;
    for (int i = 0; i < count; i++) {
      entries.put(ServiceKey.tcp(a, port).encode(), new byte[12]);
      a = InetAddresses.increment(a);
    }
    return entries;
  }

  @Test
  void holdsItsFullCapacityOfConsecutiveIpv4AndIpv6Keys() {
    for (InetAddress first : new InetAddress[] {InetAddresses.forString("203.0.113.0"),
        InetAddresses.forString("2001:db8::1")}) {
      Map<byte[], byte[]> entries = consecutive(first, CAPACITY, 80);
      byte[] slots = FlatTable.layout(entries, SLOT, VALUE);
      for (byte[] key : entries.keySet()) {
        assertThat(find(slots, key)).as("key %s", InetAddresses.increment(first)).isGreaterThanOrEqualTo(0);
      }
    }
  }

  @Test
  void holdsManyPortsOfOneVip() {
    Map<byte[], byte[]> entries = new LinkedHashMap<>();
    for (int port = 1; port <= CAPACITY; port++) {
      entries.put(ServiceKey.tcp(InetAddresses.forString("203.0.113.10"), port).encode(), new byte[12]);
    }
    FlatTable.layout(entries, SLOT, VALUE);
  }

  @Test
  void refusesMoreThanItsCapacityWithoutWritingAnything() {
    assertThatThrownBy(() -> FlatTable.layout(consecutive(InetAddresses.forString("10.0.0.0"), CAPACITY + 1, 80),
        SLOT, VALUE)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("at most " + CAPACITY);
  }

  /** The data plane's lookup, in Java: probe from the home slot. */
  static int find(byte[] slots, byte[] key) {
    ByteBuffer b = ByteBuffer.wrap(slots).order(ByteOrder.LITTLE_ENDIAN);
    int home = FlatTable.home(key);
    for (int i = 0; i < VeerAbi.FLAT_PROBES; i++) {
      int slot = (home + i) & (VeerAbi.FLAT_SLOTS - 1);
      if (b.getInt(slot * SLOT + 20) == 0) {
        return -1;
      }
      if (ByteBuffer.wrap(slots, slot * SLOT, 20).equals(ByteBuffer.wrap(key))) {
        return slot;
      }
    }
    return -1;
  }
}
