package dev.veer.bpf;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * The libbpf and kernel structs this library fills or reads, declared field by field (LP64, as in
 * the libbpf 1.1 and uapi headers) so that code reaches fields by name. Padding is explicit; {@link
 * MemoryLayout#structLayout} rejects a field that would be misaligned.
 *
 * <p>Each field handle takes just the struct's segment. The libbpf opts structs begin with {@code
 * size_t sz}, which {@link #allocateOpts} sets: libbpf reads no further than that.
 */
final class Structs {
  /** BPF_OBJ_NAME_LEN: kernel object names, NUL included. */
  static final int OBJ_NAME_LEN = 16;

  private Structs() {}

  /** struct bpf_object_open_opts (libbpf.h), up to kernel_log_level. */
  static final class ObjectOpenOpts {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_LONG.withName("sz"),
            ADDRESS.withName("object_name"),
            JAVA_BOOLEAN.withName("relaxed_maps"),
            MemoryLayout.paddingLayout(7),
            ADDRESS.withName("pin_root_path"),
            MemoryLayout.paddingLayout(4), // __u32 :32, where attach_prog_fd was
            MemoryLayout.paddingLayout(4),
            ADDRESS.withName("kconfig"),
            ADDRESS.withName("btf_custom_path"),
            ADDRESS.withName("kernel_log_buf"),
            JAVA_LONG.withName("kernel_log_size"),
            JAVA_INT.withName("kernel_log_level"),
            MemoryLayout.paddingLayout(4));
    static final VarHandle OBJECT_NAME = field(LAYOUT, "object_name");
    static final VarHandle PIN_ROOT_PATH = field(LAYOUT, "pin_root_path");

    private ObjectOpenOpts() {}
  }

  /** struct bpf_map_create_opts (bpf.h). */
  static final class MapCreateOpts {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_LONG.withName("sz"),
            JAVA_INT.withName("btf_fd"),
            JAVA_INT.withName("btf_key_type_id"),
            JAVA_INT.withName("btf_value_type_id"),
            JAVA_INT.withName("btf_vmlinux_value_type_id"),
            JAVA_INT.withName("inner_map_fd"),
            JAVA_INT.withName("map_flags"),
            JAVA_LONG.withName("map_extra"),
            JAVA_INT.withName("numa_node"),
            JAVA_INT.withName("map_ifindex"));
    static final VarHandle MAP_FLAGS = field(LAYOUT, "map_flags");

    private MapCreateOpts() {}
  }

  /** struct bpf_map_batch_opts (bpf.h). */
  static final class MapBatchOpts {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_LONG.withName("sz"),
            JAVA_LONG.withName("elem_flags"),
            JAVA_LONG.withName("flags"));

    private MapBatchOpts() {}
  }

  /** struct bpf_map_info (uapi linux/bpf.h). */
  static final class MapInfo {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_INT.withName("type"),
            JAVA_INT.withName("id"),
            JAVA_INT.withName("key_size"),
            JAVA_INT.withName("value_size"),
            JAVA_INT.withName("max_entries"),
            JAVA_INT.withName("map_flags"),
            MemoryLayout.sequenceLayout(OBJ_NAME_LEN, JAVA_BYTE).withName("name"),
            JAVA_INT.withName("ifindex"),
            JAVA_INT.withName("btf_vmlinux_value_type_id"),
            JAVA_LONG.withName("netns_dev"),
            JAVA_LONG.withName("netns_ino"),
            JAVA_INT.withName("btf_id"),
            JAVA_INT.withName("btf_key_type_id"),
            JAVA_INT.withName("btf_value_type_id"),
            MemoryLayout.paddingLayout(4), // __u32 :32
            JAVA_LONG.withName("map_extra"));
    static final VarHandle TYPE = field(LAYOUT, "type");
    static final VarHandle ID = field(LAYOUT, "id");
    static final VarHandle KEY_SIZE = field(LAYOUT, "key_size");
    static final VarHandle VALUE_SIZE = field(LAYOUT, "value_size");
    static final VarHandle MAX_ENTRIES = field(LAYOUT, "max_entries");
    static final VarHandle MAP_FLAGS = field(LAYOUT, "map_flags");

    private MapInfo() {}
  }

  /**
   * struct bpf_prog_info (uapi linux/bpf.h), up to and including run_cnt: the kernel fills no more
   * than the length it is given.
   */
  static final class ProgInfo {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_INT.withName("type"),
            JAVA_INT.withName("id"),
            MemoryLayout.sequenceLayout(8, JAVA_BYTE).withName("tag"),
            JAVA_INT.withName("jited_prog_len"),
            JAVA_INT.withName("xlated_prog_len"),
            JAVA_LONG.withName("jited_prog_insns"),
            JAVA_LONG.withName("xlated_prog_insns"),
            JAVA_LONG.withName("load_time"),
            JAVA_INT.withName("created_by_uid"),
            JAVA_INT.withName("nr_map_ids"),
            JAVA_LONG.withName("map_ids"),
            MemoryLayout.sequenceLayout(OBJ_NAME_LEN, JAVA_BYTE).withName("name"),
            JAVA_INT.withName("ifindex"),
            JAVA_INT.withName("gpl_compatible"), // a 1-bit field and 31 bits of padding
            JAVA_LONG.withName("netns_dev"),
            JAVA_LONG.withName("netns_ino"),
            JAVA_INT.withName("nr_jited_ksyms"),
            JAVA_INT.withName("nr_jited_func_lens"),
            JAVA_LONG.withName("jited_ksyms"),
            JAVA_LONG.withName("jited_func_lens"),
            JAVA_INT.withName("btf_id"),
            JAVA_INT.withName("func_info_rec_size"),
            JAVA_LONG.withName("func_info"),
            JAVA_INT.withName("nr_func_info"),
            JAVA_INT.withName("nr_line_info"),
            JAVA_LONG.withName("line_info"),
            JAVA_LONG.withName("jited_line_info"),
            JAVA_INT.withName("nr_jited_line_info"),
            JAVA_INT.withName("line_info_rec_size"),
            JAVA_INT.withName("jited_line_info_rec_size"),
            JAVA_INT.withName("nr_prog_tags"),
            JAVA_LONG.withName("prog_tags"),
            JAVA_LONG.withName("run_time_ns"),
            JAVA_LONG.withName("run_cnt"));
    static final VarHandle ID = field(LAYOUT, "id");
    static final VarHandle RUN_TIME_NS = field(LAYOUT, "run_time_ns");
    static final VarHandle RUN_CNT = field(LAYOUT, "run_cnt");

    private ProgInfo() {}
  }

  /** struct bpf_test_run_opts (bpf.h). */
  static final class TestRunOpts {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_LONG.withName("sz"),
            ADDRESS.withName("data_in"),
            ADDRESS.withName("data_out"),
            JAVA_INT.withName("data_size_in"),
            JAVA_INT.withName("data_size_out"),
            ADDRESS.withName("ctx_in"),
            ADDRESS.withName("ctx_out"),
            JAVA_INT.withName("ctx_size_in"),
            JAVA_INT.withName("ctx_size_out"),
            JAVA_INT.withName("retval"),
            JAVA_INT.withName("repeat"),
            JAVA_INT.withName("duration"),
            JAVA_INT.withName("flags"),
            JAVA_INT.withName("cpu"),
            JAVA_INT.withName("batch_size"));
    static final VarHandle DATA_IN = field(LAYOUT, "data_in");
    static final VarHandle DATA_OUT = field(LAYOUT, "data_out");
    static final VarHandle DATA_SIZE_IN = field(LAYOUT, "data_size_in");
    static final VarHandle DATA_SIZE_OUT = field(LAYOUT, "data_size_out");
    static final VarHandle CTX_IN = field(LAYOUT, "ctx_in");
    static final VarHandle CTX_SIZE_IN = field(LAYOUT, "ctx_size_in");
    static final VarHandle RETVAL = field(LAYOUT, "retval");
    static final VarHandle REPEAT = field(LAYOUT, "repeat");
    static final VarHandle DURATION = field(LAYOUT, "duration");

    private TestRunOpts() {}
  }

  /** struct xdp_md (uapi linux/bpf.h), an XDP program's context. */
  static final class XdpMd {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_INT.withName("data"),
            JAVA_INT.withName("data_end"),
            JAVA_INT.withName("data_meta"),
            JAVA_INT.withName("ingress_ifindex"),
            JAVA_INT.withName("rx_queue_index"),
            JAVA_INT.withName("egress_ifindex"));
    static final VarHandle DATA_END = field(LAYOUT, "data_end");
    static final VarHandle INGRESS_IFINDEX = field(LAYOUT, "ingress_ifindex");
    static final VarHandle RX_QUEUE_INDEX = field(LAYOUT, "rx_queue_index");

    private XdpMd() {}
  }

  /** struct bpf_xdp_attach_opts (libbpf.h). */
  static final class XdpAttachOpts {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_LONG.withName("sz"),
            JAVA_INT.withName("old_prog_fd"),
            MemoryLayout.paddingLayout(4));

    /** With it set, libbpf adds XDP_FLAGS_REPLACE: only that program is replaced or detached. */
    static final VarHandle OLD_PROG_FD = field(LAYOUT, "old_prog_fd");

    private XdpAttachOpts() {}
  }

  /** struct bpf_xdp_query_opts (libbpf.h, libbpf 1.1). */
  static final class XdpQueryOpts {
    static final StructLayout LAYOUT =
        MemoryLayout.structLayout(
            JAVA_LONG.withName("sz"),
            JAVA_INT.withName("prog_id"),
            JAVA_INT.withName("drv_prog_id"),
            JAVA_INT.withName("hw_prog_id"),
            JAVA_INT.withName("skb_prog_id"),
            JAVA_BYTE.withName("attach_mode"),
            MemoryLayout.paddingLayout(7));
    static final VarHandle PROG_ID = field(LAYOUT, "prog_id");
    static final VarHandle DRV_PROG_ID = field(LAYOUT, "drv_prog_id");
    static final VarHandle HW_PROG_ID = field(LAYOUT, "hw_prog_id");
    static final VarHandle SKB_PROG_ID = field(LAYOUT, "skb_prog_id");

    private XdpQueryOpts() {}
  }

  /** A zeroed libbpf opts struct with its {@code sz} set, as libbpf's LIBBPF_OPTS macro makes. */
  static MemorySegment allocateOpts(Arena arena, StructLayout layout) {
    MemorySegment opts = arena.allocate(layout);
    opts.set(JAVA_LONG, layout.byteOffset(groupElement("sz")), layout.byteSize());
    return opts;
  }

  /** A char array field (such as a kernel object name) up to its first NUL. */
  static String string(MemorySegment struct, StructLayout layout, String field) {
    long offset = layout.byteOffset(groupElement(field));
    long size = layout.select(groupElement(field)).byteSize();
    byte[] raw = struct.asSlice(offset, size).toArray(JAVA_BYTE);
    int end = 0;
    while (end < raw.length && raw[end] != 0) {
      end++;
    }
    return new String(raw, 0, end, StandardCharsets.US_ASCII);
  }

  /** A handle on one field of a struct at the start of a segment: (segment) -> value. */
  private static VarHandle field(StructLayout layout, String name) {
    return MethodHandles.insertCoordinates(layout.varHandle(groupElement(name)), 1, 0L);
  }
}
