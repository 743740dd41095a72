package dev.veer.bpf;

import static dev.veer.bpf.BpfObjectTest.u32;
import static dev.veer.bpf.BpfObjectTest.u64;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class BpfMapTest {
  @BeforeAll
  static void requireBpf() {
    BpfSystem.requireUsable();
  }

  @Test
  void arrayRoundTrips() {
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.ARRAY, "ut_array", 4, 8, 16))) {
      assertThat(map.name()).isEqualTo("ut_array");
      assertThat(map.type()).isEqualTo(MapType.ARRAY);
      assertThat(map.keySize()).isEqualTo(4);
      assertThat(map.valueSize()).isEqualTo(8);
      assertThat(map.maxEntries()).isEqualTo(16);
      assertThat(map.id()).isPositive();

      assertThat(map.lookup(u32(3))).hasValueSatisfying(v -> assertThat(v).isEqualTo(new byte[8]));
      map.update(u32(3), u64(0x1122334455667788L));
      assertThat(map.lookup(u32(3)))
          .hasValueSatisfying(v -> assertThat(v).isEqualTo(u64(0x1122334455667788L)));
      assertThat(map.lookup(u32(16))).isEmpty();
      assertThat(map.keys()).hasSize(16);
      assertThat(map.keys().get(15)).isEqualTo(u32(15));
    }
  }

  @Test
  void arrayErrorsNameTheProblem() {
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.ARRAY, "ut_array", 4, 8, 16))) {
      assertThatThrownBy(() -> map.lookup(new byte[2]))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage("map ut_array: key must be 4 bytes, got 2");
      assertThatThrownBy(() -> map.update(u32(0), new byte[7]))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessage("map ut_array: value must be 8 bytes, got 7");
      assertThatThrownBy(() -> map.update(u32(16), u64(1)))
          .isInstanceOfSatisfying(
              BpfException.class,
              e -> {
                assertThat(e.operation()).isEqualTo("bpf_map_update_elem(ut_array)");
                assertThat(e.errno()).isIn(BpfException.E2BIG, BpfException.EINVAL);
                assertThat(e.getMessage())
                    .startsWith("bpf_map_update_elem(ut_array) failed: ")
                    .endsWith("(errno " + e.errno() + ")");
              });
      // Array entries always exist: they cannot be deleted.
      assertThatThrownBy(() -> map.delete(u32(0)))
          .isInstanceOfSatisfying(
              BpfException.class, e -> assertThat(e.errno()).isEqualTo(BpfException.EINVAL));
      assertThatThrownBy(() -> map.lookupPerCpu(u32(0))).isInstanceOf(IllegalStateException.class);
    }
  }

  @Test
  void hashRoundTrips() {
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.HASH, "ut_hash", 4, 4, 8))) {
      assertThat(map.lookup(u32(1))).isEmpty();
      assertThat(map.keys()).isEmpty();

      map.update(u32(1), u32(100), BpfMap.UpdateMode.NOEXIST);
      map.update(u32(2), u32(200));
      assertThatThrownBy(() -> map.update(u32(1), u32(101), BpfMap.UpdateMode.NOEXIST))
          .isInstanceOfSatisfying(
              BpfException.class, e -> assertThat(e.errno()).isEqualTo(BpfException.EEXIST));
      assertThatThrownBy(() -> map.update(u32(3), u32(300), BpfMap.UpdateMode.EXIST))
          .isInstanceOfSatisfying(
              BpfException.class, e -> assertThat(e.errno()).isEqualTo(BpfException.ENOENT));
      map.update(u32(1), u32(111), BpfMap.UpdateMode.EXIST);

      assertThat(map.lookup(u32(1))).hasValueSatisfying(v -> assertThat(v).isEqualTo(u32(111)));
      assertThat(asInts(map.keys())).containsExactlyInAnyOrder(1, 2);
      assertThat(map.delete(u32(2))).isTrue();
      assertThat(map.delete(u32(2))).isFalse();
      assertThat(asInts(map.keys())).containsExactly(1);

      for (int i = 10; i < 17; i++) {
        map.update(u32(i), u32(i));
      }
      assertThatThrownBy(() -> map.update(u32(99), u32(99)))
          .isInstanceOfSatisfying(
              BpfException.class, e -> assertThat(e.errno()).isEqualTo(BpfException.E2BIG));
    }
  }

  @Test
  void updateBatchFillsALargeTableInOneCall() {
    int rows = 65_536;
    try (BpfMap map =
        BpfMap.create(MapSpec.array("ut_table", 4, 8, rows, MapSpec.BPF_F_INNER_MAP))) {
      assertThat(map.flags()).isEqualTo(MapSpec.BPF_F_INNER_MAP);
      ByteBuffer keys = ByteBuffer.allocate(rows * 4).order(ByteOrder.nativeOrder());
      ByteBuffer values = ByteBuffer.allocate(rows * 8).order(ByteOrder.nativeOrder());
      for (int i = 0; i < rows; i++) {
        keys.putInt(i);
        values.putLong(i * 3L + 1);
      }
      map.updateBatch(keys.array(), values.array(), rows);

      for (int i : new int[] {0, 1, 4242, rows - 1}) {
        assertThat(map.lookup(u32(i)))
            .hasValueSatisfying(v -> assertThat(v).isEqualTo(u64(i * 3L + 1)));
      }
      assertThatThrownBy(() -> map.updateBatch(keys.array(), values.array(), rows - 1))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("must be " + (rows - 1) * 4 + " bytes, got " + rows * 4);
    }
  }

  @Test
  void updateBatchFailureSaysHowFarItGot() {
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.ARRAY, "ut_array", 4, 4, 2))) {
      byte[] keys =
          ByteBuffer.allocate(12)
              .order(ByteOrder.nativeOrder())
              .putInt(0)
              .putInt(1)
              .putInt(7)
              .array();
      assertThatThrownBy(() -> map.updateBatch(keys, new byte[12], 3))
          .isInstanceOfSatisfying(
              BpfException.class,
              e -> {
                assertThat(e.operation()).isEqualTo("bpf_map_update_batch(ut_array)");
                assertThat(e.detail()).isEqualTo("2 of 3 entries were written");
              });
    }
  }

  @Test
  void perCpuArrayHoldsOneValuePerCpu() {
    int cpus = BpfMap.possibleCpus();
    assertThat(cpus).isPositive();
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.PERCPU_ARRAY, "ut_percpu", 4, 12, 4))) {
      byte[][] initial = map.lookupPerCpu(u32(1));
      assertThat(initial).hasNumberOfRows(cpus);
      assertThat(initial[0]).isEqualTo(new byte[12]);

      byte[][] values = new byte[cpus][12];
      for (int cpu = 0; cpu < cpus; cpu++) {
        values[cpu][0] = (byte) (cpu + 1);
        values[cpu][11] = (byte) (0x80 | cpu);
      }
      map.updatePerCpu(u32(1), values);
      assertThat(map.lookupPerCpu(u32(1))).isDeepEqualTo(values);
      assertThat(map.lookupPerCpu(u32(2))[cpus - 1]).isEqualTo(new byte[12]);

      assertThatThrownBy(() -> map.lookup(u32(1)))
          .isInstanceOf(IllegalStateException.class)
          .hasMessageContaining("lookupPerCpu");
      assertThatThrownBy(() -> map.updatePerCpu(u32(1), new byte[cpus + 1][12]))
          .isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void perCpuHashMissingKeyIsEmpty() {
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.PERCPU_HASH, "ut_pchash", 4, 8, 4))) {
      assertThat(map.lookupPerCpu(u32(5))).isEmpty();
    }
  }

  @Test
  void pinAndOpenPinned() throws Exception {
    Path pin = Path.of("/sys/fs/bpf/veer-ut-map-" + ProcessHandle.current().pid());
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.HASH, "ut_pin", 8, 8, 4))) {
      map.pin(pin);
      map.update(u64(7), u64(49));
      try (BpfMap opened = BpfMap.openPinned(pin)) {
        assertThat(opened.id()).isEqualTo(map.id());
        assertThat(opened.name()).isEqualTo("ut_pin");
        assertThat(opened.type()).isEqualTo(MapType.HASH);
        assertThat(opened.keySize()).isEqualTo(8);
        assertThat(opened.valueSize()).isEqualTo(8);
        assertThat(opened.maxEntries()).isEqualTo(4);
        assertThat(opened.lookup(u64(7))).hasValueSatisfying(v -> assertThat(v).isEqualTo(u64(49)));
      }
    } finally {
      Files.deleteIfExists(pin);
    }
    assertThatThrownBy(() -> BpfMap.openPinned(pin))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.errno()).isEqualTo(BpfException.ENOENT);
              assertThat(e.operation()).isEqualTo("bpf_obj_get(" + pin + ")");
            });
  }

  @Test
  void closedMapRefusesUse() {
    BpfMap map = BpfMap.create(MapSpec.of(MapType.ARRAY, "ut_closed", 4, 4, 1));
    map.close();
    map.close(); // idempotent
    assertThatThrownBy(() -> map.lookup(u32(0)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("map ut_closed is closed");
    assertThatThrownBy(map::fd)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("map ut_closed is closed");
    assertThatThrownBy(() -> map.update(u32(0), u32(1))).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(map::keys).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void closingAMapUnmapsItsValues() {
    BpfMap map = BpfMap.create(MapSpec.array("ut_mmap", 4, 8, 4, MapSpec.BPF_F_MMAPABLE));
    BpfMap.Mapping mapping = map.mmap();
    MemorySegment values = mapping.segment();
    values.setAtIndex(ValueLayout.JAVA_LONG, 1, 42L);
    assertThat(map.lookup(u32(1))).hasValueSatisfying(v -> assertThat(v).isEqualTo(u64(42)));

    map.close();
    map.close(); // harmless
    // A closed arena, not a read of unmapped memory (which would crash the JVM).
    assertThatThrownBy(() -> values.getAtIndex(ValueLayout.JAVA_LONG, 1))
        .isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(mapping::segment)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("the mapping of map ut_mmap is closed");
    assertThatThrownBy(map::mmap)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("map ut_mmap is closed");
    mapping.close(); // already closed with the map: harmless
  }

  @Test
  void aClosedMappingFailsCleanlyAndLeavesTheMapOpen() {
    try (BpfMap map = BpfMap.create(MapSpec.array("ut_mmap", 4, 8, 4, MapSpec.BPF_F_MMAPABLE))) {
      BpfMap.Mapping mapping = map.mmap();
      MemorySegment values = mapping.segment();
      values.setAtIndex(ValueLayout.JAVA_LONG, 3, 7L);
      mapping.close();
      mapping.close(); // harmless
      assertThatThrownBy(() -> values.setAtIndex(ValueLayout.JAVA_LONG, 3, 8L))
          .isInstanceOf(IllegalStateException.class);

      assertThat(map.lookup(u32(3))).hasValueSatisfying(v -> assertThat(v).isEqualTo(u64(7)));
      try (BpfMap.Mapping again = map.mmap()) {
        assertThat(again.segment().getAtIndex(ValueLayout.JAVA_LONG, 3)).isEqualTo(7L);
      }
    }
  }

  @Test
  void onlyMappableArraysMap() {
    try (BpfMap map = BpfMap.create(MapSpec.of(MapType.ARRAY, "ut_array", 4, 8, 4))) {
      assertThatThrownBy(map::mmap)
          .isInstanceOf(IllegalStateException.class)
          .hasMessage("ut_array is not an array created with BPF_F_MMAPABLE");
    }
  }

  @Test
  void invalidSpecsAreRejected() {
    assertThatThrownBy(() -> MapSpec.of(MapType.HASH, "a-name-that-is-far-too-long", 4, 4, 1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> BpfMap.create(MapSpec.of(MapType.HASH, "ut_zero", 0, 4, 1)))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.operation()).isEqualTo("bpf_map_create(ut_zero)");
              assertThat(e.errno()).isEqualTo(BpfException.EINVAL);
            });
  }

  private static Set<Integer> asInts(List<byte[]> keys) {
    return keys.stream()
        .map(k -> ByteBuffer.wrap(k).order(ByteOrder.nativeOrder()).getInt())
        .collect(Collectors.toSet());
  }
}
