package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.veer.bpf.Structs.ProgInfo;
import dev.veer.bpf.Structs.TestRunOpts;
import dev.veer.bpf.Structs.XdpMd;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/** A loaded BPF program, owned by its {@link BpfObject}: valid until the object is closed. */
public final class BpfProgram {
  /** XDP may grow a packet at the front by up to its headroom (XDP_PACKET_HEADROOM). */
  private static final int XDP_HEADROOM = 256;

  /** A non-fragmented XDP test packet lives in one page, whatever the program makes of it. */
  private static final int PAGE = 4096;

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
   * Runs the program in the kernel on a copy of the request's packet (BPF_PROG_TEST_RUN). Maps the
   * program uses are the real ones: its side effects on them stay.
   */
  public TestRunResult testRun(TestRunRequest request) {
    byte[] packet = request.packet();
    int outCapacity = Math.max(packet.length + XDP_HEADROOM, PAGE);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment in = arena.allocate(Math.max(packet.length, 1));
      MemorySegment.copy(packet, 0, in, JAVA_BYTE, 0, packet.length);
      MemorySegment out = arena.allocate(outCapacity);
      MemorySegment opts = Structs.allocateOpts(arena, TestRunOpts.LAYOUT);
      TestRunOpts.DATA_IN.set(opts, in);
      TestRunOpts.DATA_OUT.set(opts, out);
      TestRunOpts.DATA_SIZE_IN.set(opts, packet.length);
      TestRunOpts.DATA_SIZE_OUT.set(opts, outCapacity);
      request
          .xdpContext()
          .ifPresent(
              context -> {
                // data and data_meta stay 0: the packet starts at 0, without metadata.
                MemorySegment ctx = arena.allocate(XdpMd.LAYOUT);
                XdpMd.DATA_END.set(ctx, packet.length);
                XdpMd.INGRESS_IFINDEX.set(ctx, context.ingressIfindex());
                XdpMd.RX_QUEUE_INDEX.set(ctx, context.rxQueueIndex());
                TestRunOpts.CTX_IN.set(opts, ctx);
                TestRunOpts.CTX_SIZE_IN.set(opts, (int) ctx.byteSize());
              });
      TestRunOpts.REPEAT.set(opts, request.repeat());
      Libbpf.progTestRunOpts(
          fd(), opts, name, () -> "packet of " + packet.length + " bytes, " + request.xdpContext());
      int outLength = (int) TestRunOpts.DATA_SIZE_OUT.get(opts);
      return new TestRunResult(
          (int) TestRunOpts.RETVAL.get(opts),
          out.asSlice(0, Math.min(outLength, outCapacity)).toArray(JAVA_BYTE),
          Integer.toUnsignedLong((int) TestRunOpts.DURATION.get(opts)));
    }
  }

  /**
   * Pins the program at {@code path} on a BPF filesystem, keeping it loaded beyond this process.
   */
  public void pin(Path path) {
    Libbpf.objPin(fd(), path, name);
  }

  @Override
  public String toString() {
    return "BpfProgram[" + name + ", id " + id + "]";
  }

  /**
   * How long the kernel has run this program and how often, while run-time statistics were on
   * ({@link BpfSystem#runTimeStatistics}).
   */
  public RunStats runStats() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment info = Libbpf.objGetInfoByFd(fd(), ProgInfo.LAYOUT, arena, name);
      return new RunStats((long) ProgInfo.RUN_TIME_NS.get(info), (long) ProgInfo.RUN_CNT.get(info));
    }
  }

  /** A program's accumulated run time and run count. */
  public record RunStats(long runTimeNanos, long runs) {
    /** The mean run time of the runs since {@code earlier}; NaN if there were none. */
    public double meanNanosSince(RunStats earlier) {
      long n = runs - earlier.runs;
      return n == 0 ? Double.NaN : (double) (runTimeNanos - earlier.runTimeNanos) / n;
    }
  }

  static int programId(int fd, String name) {
    try (Arena arena = Arena.ofConfined()) {
      return (int) ProgInfo.ID.get(Libbpf.objGetInfoByFd(fd, ProgInfo.LAYOUT, arena, name));
    }
  }
}
