package dev.veer.bpf.dataplane;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.common.net.InetAddresses;
import dev.veer.bpf.abi.VeerAbi;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class FlatTableTest {
  static final int SLOT = 36;
  static final int VALUE = 24;
  static final FlatTable TABLE = FlatTable.PEERS;
  static final int CAPACITY = TABLE.capacity();

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
    for (InetAddress first :
        new InetAddress[] {
          InetAddresses.forString("203.0.113.0"), InetAddresses.forString("2001:db8::1")
        }) {
      Map<byte[], byte[]> entries = consecutive(first, CAPACITY, 80);
      byte[] slots = TABLE.layout(entries, SLOT, VALUE);
      for (byte[] key : entries.keySet()) {
        assertThat(find(slots, key))
            .as("key %s", InetAddresses.increment(first))
            .isGreaterThanOrEqualTo(0);
      }
    }
  }

  @Test
  void holdsManyPortsOfOneVip() {
    InetAddress vip = InetAddresses.forString("203.0.113.10");
    Map<byte[], byte[]> entries = new LinkedHashMap<>();
    for (int port = 1; port <= CAPACITY; port++) {
      byte[] value = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(port).array();
      entries.put(ServiceKey.tcp(vip, port).encode(), value);
    }
    byte[] slots = TABLE.layout(entries, SLOT, VALUE);

    int used = 0;
    for (int slot = 0; slot < TABLE.slots(); slot++) {
      used += ByteBuffer.wrap(slots).order(ByteOrder.LITTLE_ENDIAN).getInt(slot * SLOT + 20);
    }
    assertThat(used).isEqualTo(CAPACITY);
    for (Map.Entry<byte[], byte[]> e : entries.entrySet()) {
      int slot = scan(slots, e.getKey());
      int port = ByteBuffer.wrap(e.getValue()).order(ByteOrder.LITTLE_ENDIAN).getInt();
      assertThat(slot).as("port %d is in some slot", port).isGreaterThanOrEqualTo(0);
      assertThat((slot - veerFlatHome(e.getKey())) & (TABLE.slots() - 1))
          .as("distance of port %d from its home", port)
          .isLessThan(VeerAbi.FLAT_PROBES);
      assertThat(find(slots, e.getKey())).as("port %d", port).isEqualTo(slot);
      assertThat(Arrays.copyOfRange(slots, slot * SLOT + VALUE, slot * SLOT + VALUE + 12))
          .isEqualTo(e.getValue());
    }
    byte[] absent = ServiceKey.tcp(vip, CAPACITY + 1).encode();
    assertThat(scan(slots, absent)).isEqualTo(-1);
    assertThat(find(slots, absent)).isEqualTo(-1);
  }

  @Test
  void refusesMoreThanItsCapacityWithoutWritingAnything() {
    assertThatThrownBy(
            () ->
                TABLE.layout(
                    consecutive(InetAddresses.forString("10.0.0.0"), CAPACITY + 1, 80),
                    SLOT,
                    VALUE))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("at most " + CAPACITY);
  }

  /** The slot holding {@code key}, by looking at every slot; -1 if none does. */
  static int scan(byte[] slots, byte[] key) {
    for (int slot = 0; slot < TABLE.slots(); slot++) {
      if (slots[slot * SLOT + 20] != 0
          && Arrays.equals(slots, slot * SLOT, slot * SLOT + 20, key, 0, 20)) {
        return slot;
      }
    }
    return -1;
  }

  /**
   * veer_flat_home() of veer_flat.h, transcribed here rather than calling FlatTable.home so that
   * the tests check it: little-endian words, unsigned 32-bit arithmetic kept in longs.
   */
  static int veerFlatHome(byte[] key) {
    long h = 0;
    for (int w = 0; w < 5; w++) {
      long word = 0;
      for (int b = 3; b >= 0; b--) {
        word = word << 8 | key[4 * w + b] & 0xff;
      }
      int r = 7 * w;
      h = (h + (r == 0 ? word : (word << r | word >>> (32 - r)) & U32)) & U32;
    }
    h ^= h >>> 16;
    h = h * 0x85ebca6bL & U32;
    h ^= h >>> 13;
    h = h * 0xc2b2ae35L & U32;
    h ^= h >>> 16;
    return (int) (h & (TABLE.slots() - 1));
  }

  private static final long U32 = 0xffffffffL;

  /** The data plane's lookup, in Java: probe from the home slot. */
  static int find(byte[] slots, byte[] key) {
    ByteBuffer b = ByteBuffer.wrap(slots).order(ByteOrder.LITTLE_ENDIAN);
    int home = veerFlatHome(key);
    for (int i = 0; i < VeerAbi.FLAT_PROBES; i++) {
      int slot = (home + i) & (TABLE.slots() - 1);
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
