package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/** A loaded BPF program, owned by its {@link BpfObject}: valid until the object is closed. */
public final class BpfProgram {
  /** XDP may grow a packet at the front by up to its headroom (XDP_PACKET_HEADROOM). */
  private static final int XDP_HEADROOM = 256;
  /** A non-fragmented XDP test packet lives in one page, whatever the program makes of it. */
  private static final int PAGE = 4096;
  private static final long TEST_RUN_OPTS_SIZE = 80;
  private static final long XDP_MD_SIZE = 24;
  private static final int PROG_INFO_PREFIX = 8;

  private final BpfObject owner;
  private final MemorySegment handle;
  private final String name;
  private final int fd;
  private final int id;

  private BpfProgram(BpfObject owner, MemorySegment handle, String name, int fd, int id) {
    this.owner = owner;
    this.handle = handle;
    this.name = name;
    this.fd = fd;
    this.id = id;
  }

  static BpfProgram ofObject(BpfObject owner, MemorySegment program) {
    String name = Libbpf.programName(program);
    int fd = Libbpf.programFd(program);
    return new BpfProgram(owner, program, name, fd, programId(fd, name));
  }

  /** libbpf's {@code struct bpf_program *}; valid until the object is closed. */
  MemorySegment handle() {
    owner.ensureOpen();
    return handle;
  }

  public String name() {
    return name;
  }

  /** The program's fd; valid until its object is closed. */
  public int fd() {
    owner.ensureOpen();
    return fd;
  }

  /** The kernel's id of the program, as XDP queries report it. */
  public int id() {
    return id;
  }

  /**
   * Runs the program in the kernel on a copy of the request's packet (BPF_PROG_TEST_RUN). Maps
   * the program uses are the real ones: its side effects on them stay.
   */
  public TestRunResult testRun(TestRunRequest request) {
    byte[] packet = request.packet();
    int outCapacity = Math.max(packet.length + XDP_HEADROOM, PAGE);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment in = arena.allocate(Math.max(packet.length, 1));
      MemorySegment.copy(packet, 0, in, JAVA_BYTE, 0, packet.length);
      MemorySegment out = arena.allocate(outCapacity);
      // struct bpf_test_run_opts (bpf/bpf.h), 80 bytes on LP64.
      MemorySegment opts = arena.allocate(TEST_RUN_OPTS_SIZE, 8);
      opts.set(JAVA_LONG, 0, TEST_RUN_OPTS_SIZE); // sz
      opts.set(ADDRESS, 8, in); // data_in
      opts.set(ADDRESS, 16, out); // data_out
      opts.set(JAVA_INT, 24, packet.length); // data_size_in
      opts.set(JAVA_INT, 28, outCapacity); // data_size_out
      request.xdpContext().ifPresent(context -> {
        // struct xdp_md: data and data_meta 0 (no metadata), data_end = packet length.
        MemorySegment ctx = arena.allocate(XDP_MD_SIZE, 4);
        ctx.set(JAVA_INT, 4, packet.length); // data_end
        ctx.set(JAVA_INT, 12, context.ingressIfindex());
        ctx.set(JAVA_INT, 16, context.rxQueueIndex());
        opts.set(ADDRESS, 32, ctx); // ctx_in
        opts.set(JAVA_INT, 48, (int) XDP_MD_SIZE); // ctx_size_in
      });
      opts.set(JAVA_INT, 60, request.repeat()); // repeat
      int err = Libbpf.progTestRunOpts(fd(), opts);
      if (err < 0) {
        throw new BpfException("bpf_prog_test_run_opts(" + name + ")", -err,
            "packet of " + packet.length + " bytes, " + request.xdpContext());
      }
      int outLength = opts.get(JAVA_INT, 28);
      return new TestRunResult(opts.get(JAVA_INT, 56),
          out.asSlice(0, Math.min(outLength, outCapacity)).toArray(JAVA_BYTE),
          Integer.toUnsignedLong(opts.get(JAVA_INT, 64)));
    }
  }

  /** Pins the program at {@code path} on a BPF filesystem, keeping it loaded beyond this process. */
  public void pin(Path path) {
    try (Arena arena = Arena.ofConfined()) {
      int err = Libbpf.objPin(fd(), arena.allocateFrom(path.toString()));
      if (err < 0) {
        throw new BpfException("bpf_obj_pin(" + name + ")", -err, path.toString());
      }
    }
  }

  @Override
  public String toString() {
    return "BpfProgram[" + name + ", id " + id + "]";
  }

  private static int programId(int fd, String name) {
    try (Arena arena = Arena.ofConfined()) {
      // The kernel fills at most info_len bytes; type and id are the first two fields.
      MemorySegment info = arena.allocate(PROG_INFO_PREFIX, 8);
      MemorySegment length = arena.allocate(JAVA_INT);
      length.set(JAVA_INT, 0, PROG_INFO_PREFIX);
      int err = Libbpf.objGetInfoByFd(fd, info, length);
      if (err < 0) {
        throw new BpfException("bpf_obj_get_info_by_fd(" + name + ")", -err);
      }
      return info.get(JAVA_INT, 4);
    }
  }
}
