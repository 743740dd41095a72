package dev.veer.bpf;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.Structs.MapBatchOpts;
import dev.veer.bpf.Structs.MapCreateOpts;
import dev.veer.bpf.Structs.MapInfo;
import dev.veer.bpf.Structs.ObjectOpenOpts;
import dev.veer.bpf.Structs.ProgInfo;
import dev.veer.bpf.Structs.TestRunOpts;
import dev.veer.bpf.Structs.XdpAttachOpts;
import dev.veer.bpf.Structs.XdpMd;
import dev.veer.bpf.Structs.XdpQueryOpts;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The layouts against sizeof and offsetof of the libbpf 1.1 and uapi headers on x86-64. */
class StructsTest {
  @Test
  void layoutsMatchTheCHeaders() {
    assertStruct(
        ObjectOpenOpts.LAYOUT,
        80,
        "object_name",
        8,
        "relaxed_maps",
        16,
        "pin_root_path",
        24,
        "kconfig",
        40,
        "kernel_log_level",
        72);
    assertStruct(
        MapCreateOpts.LAYOUT,
        48,
        "inner_map_fd",
        24,
        "map_flags",
        28,
        "map_extra",
        32,
        "map_ifindex",
        44);
    assertStruct(MapBatchOpts.LAYOUT, 24, "elem_flags", 8, "flags", 16);
    assertStruct(
        MapInfo.LAYOUT,
        88,
        "map_flags",
        20,
        "name",
        24,
        "netns_dev",
        48,
        "btf_id",
        64,
        "map_extra",
        80);
    // Up to run_cnt: the kernel's struct goes on (232 bytes in 6.x headers).
    assertStruct(
        ProgInfo.LAYOUT,
        208,
        "id",
        4,
        "load_time",
        40,
        "map_ids",
        56,
        "name",
        64,
        "run_time_ns",
        192,
        "run_cnt",
        200);
    assertStruct(
        TestRunOpts.LAYOUT,
        80,
        "data_in",
        8,
        "data_size_out",
        28,
        "ctx_in",
        32,
        "ctx_size_in",
        48,
        "retval",
        56,
        "repeat",
        60,
        "duration",
        64,
        "batch_size",
        76);
    assertStruct(XdpMd.LAYOUT, 24, "data_end", 4, "ingress_ifindex", 12, "rx_queue_index", 16);
    assertStruct(XdpAttachOpts.LAYOUT, 16, "old_prog_fd", 8);
    assertStruct(XdpQueryOpts.LAYOUT, 32, "prog_id", 8, "skb_prog_id", 20, "attach_mode", 24);
  }

  @Test
  void optsCarryTheirSizeAndFieldsLandWhereCExpectsThem() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment opts = Structs.allocateOpts(arena, TestRunOpts.LAYOUT);
      TestRunOpts.REPEAT.set(opts, 1000);
      assertThat(opts.get(ValueLayout.JAVA_LONG, 0)).isEqualTo(80);
      assertThat(opts.get(ValueLayout.JAVA_INT, 60)).isEqualTo(1000);
      assertThat(opts.asSlice(8, 52).toArray(ValueLayout.JAVA_BYTE)).containsOnly(0);
    }
  }

  @Test
  void namesEndAtTheirNulOrTheirArray() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment info = arena.allocate(MapInfo.LAYOUT);
      info.asSlice(24, 16)
          .copyFrom(MemorySegment.ofArray("flows".getBytes(StandardCharsets.US_ASCII)));
      assertThat(Structs.string(info, MapInfo.LAYOUT, "name")).isEqualTo("flows");
      info.asSlice(24, 16).fill((byte) 'x');
      assertThat(Structs.string(info, MapInfo.LAYOUT, "name")).isEqualTo("x".repeat(16));
    }
  }

  private static void assertStruct(StructLayout layout, long size, Object... fieldsAndOffsets) {
    assertThat(layout.byteSize()).as("sizeof").isEqualTo(size);
    for (int i = 0; i < fieldsAndOffsets.length; i += 2) {
      String field = (String) fieldsAndOffsets[i];
      assertThat(layout.byteOffset(groupElement(field)))
          .as("offsetof %s", field)
          .isEqualTo(((Integer) fieldsAndOffsets[i + 1]).longValue());
    }
  }
}
