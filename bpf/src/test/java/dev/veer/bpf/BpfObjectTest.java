package dev.veer.bpf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.NoSuchElementException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BpfObjectTest {
  private static final int XDP_DROP = 1;
  private static final int XDP_PASS = 2;
  private static final int XDP_TX = 3;

  @BeforeAll
  static void requireBpf() {
    BpfSystem.requireUsable();
  }

  static byte[] frame() {
    byte[] frame = new byte[64];
    byte[] dst = {0x02, 0, 0, 0, 0, 0x01};
    byte[] src = {0x02, 0, 0, 0, 0, 0x02};
    System.arraycopy(dst, 0, frame, 0, 6);
    System.arraycopy(src, 0, frame, 6, 6);
    frame[12] = 0x08; // IPv4 ethertype; the rest is a recognisable pattern
    for (int i = 14; i < frame.length; i++) {
      frame[i] = (byte) i;
    }
    return frame;
  }

  @Test
  void floorSwapsMacsAndTransmits() {
    try (BpfObject floor = BpfObject.load("/bpf/floor.o")) {
      BpfProgram program = floor.program("veer_floor");
      assertThat(program.name()).isEqualTo("veer_floor");
      assertThat(program.fd()).isPositive();
      assertThat(program.id()).isPositive();

      byte[] in = frame();
      TestRunResult result = program.testRun(TestRunRequest.of(in));

      assertThat(result.retval()).isEqualTo(XDP_TX);
      byte[] out = result.packetOut();
      assertThat(out).hasSize(64);
      assertThat(Arrays.copyOfRange(out, 0, 6)).isEqualTo(Arrays.copyOfRange(in, 6, 12));
      assertThat(Arrays.copyOfRange(out, 6, 12)).isEqualTo(Arrays.copyOfRange(in, 0, 6));
      assertThat(Arrays.copyOfRange(out, 12, 64)).isEqualTo(Arrays.copyOfRange(in, 12, 64));
      assertThat(result.durationNs()).isPositive();
    }
  }

  @Test
  void repeatedRunAndTooShortPacket() {
    try (BpfObject floor = BpfObject.load("/bpf/floor.o")) {
      TestRunResult result =
          floor.program("veer_floor").testRun(TestRunRequest.of(frame()).withRepeat(1000));
      assertThat(result.retval()).isEqualTo(XDP_TX);
      assertThat(result.durationNs()).isPositive();
      // Shorter than an Ethernet header: the kernel refuses to run XDP on it.
      assertThatThrownBy(() -> floor.program("veer_floor").testRun(TestRunRequest.of(new byte[10])))
          .isInstanceOf(BpfException.class)
          .hasMessageStartingWith("bpf_prog_test_run_opts(veer_floor) failed: ");
    }
  }

  @Test
  void unknownProgramAndMapNameTheAvailableOnes() {
    try (BpfObject floor = BpfObject.load("/bpf/floor.o")) {
      assertThat(floor.name()).isEqualTo("floor.o");
      assertThat(floor.programNames()).containsExactly("veer_floor");
      assertThatThrownBy(() -> floor.program("nope"))
          .isInstanceOf(NoSuchElementException.class)
          .hasMessage("floor.o has no program 'nope'; programs: [veer_floor]");
      assertThatThrownBy(() -> floor.map("nope"))
          .isInstanceOf(NoSuchElementException.class)
          .hasMessageContaining("floor.o has no map 'nope'");
    }
  }

  @Test
  void closedObjectRefusesUse() {
    BpfObject floor = BpfObject.load("/bpf/floor.o");
    BpfProgram program = floor.program("veer_floor");
    floor.close();
    floor.close(); // idempotent
    assertThatThrownBy(program::fd)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("closed");
    assertThatThrownBy(() -> floor.program("veer_floor")).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void missingFileIsAReadableError() {
    assertThatThrownBy(() -> BpfObject.load(Path.of("/nonexistent/veer.o")))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.operation()).isEqualTo("bpf_object__open_file(/nonexistent/veer.o)");
              assertThat(e.errno()).isEqualTo(BpfException.ENOENT);
              assertThat(e.getMessage())
                  .startsWith(
                      "bpf_object__open_file(/nonexistent/veer.o) failed: No such file or directory (errno 2)");
            });
    assertThatThrownBy(() -> BpfObject.load("/bpf/nonexistent.o"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("/bpf/nonexistent.o");
  }

  @Test
  void notAnElfFileIsAReadableError(@TempDir Path dir) throws Exception {
    Path junk = Files.writeString(dir.resolve("junk.o"), "this is not an ELF file");
    assertThatThrownBy(() -> BpfObject.load(junk))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.operation()).isEqualTo("bpf_object__open_file(" + junk + ")");
              assertThat(e.errno()).isPositive();
              assertThat(e.getMessage())
                  .contains(" failed: ")
                  .contains("(errno " + e.errno() + ")");
              assertThat(e.detail()).contains("libbpf");
            });
  }

  @Test
  void verifierRejectionCarriesTheVerifierLog(@TempDir Path dir) throws Exception {
    Path object = TestObjects.compile("unverifiable", dir);
    assertThatThrownBy(() -> BpfObject.load(object))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.operation()).isEqualTo("bpf_object__load(unverifiable.o)");
              assertThat(e.errno()).isEqualTo(BpfException.EACCES);
              assertThat(e.detail())
                  .contains("BEGIN PROG LOAD LOG")
                  .contains("invalid access to packet");
              assertThat(e.getMessage()).contains("invalid access to packet");
            });
  }

  @Test
  void optionsSetRodataMaxEntriesAndPinRoot(@TempDir Path dir) throws Exception {
    Path object = TestObjects.compile("maps", dir);
    Path pinRoot = Path.of("/sys/fs/bpf/veer-ut-" + ProcessHandle.current().pid());
    LoadOptions options =
        LoadOptions.DEFAULT
            .withPinRoot(pinRoot)
            .withMaxEntries("ut_sized", 64)
            .withInitialValue(".rodata", u32(XDP_DROP));
    byte[] key = u32(0);
    try (BpfObject first = BpfObject.load(object, options)) {
      assertThat(first.map("ut_sized").maxEntries()).isEqualTo(64);
      assertThat(Files.exists(pinRoot.resolve("ut_pinned"))).isTrue();
      BpfMap pinned = first.map("ut_pinned");
      pinned.update(key, u64(41));

      // The second object reuses the pinned map instead of creating its own.
      try (BpfObject second = BpfObject.load(object, options)) {
        BpfMap reused = second.map("ut_pinned");
        assertThat(reused.id()).isEqualTo(pinned.id());
        TestRunResult run = second.program("ut_count").testRun(TestRunRequest.of(frame()));
        assertThat(run.retval()).isEqualTo(XDP_DROP);
        assertThat(pinned.lookup(key)).hasValueSatisfying(v -> assertThat(v).isEqualTo(u64(42)));
      }
      // Without the .rodata override the program keeps its compiled-in verdict.
      try (BpfObject plain = BpfObject.load(object, LoadOptions.DEFAULT.withPinRoot(pinRoot))) {
        assertThat(plain.map("ut_sized").maxEntries()).isEqualTo(4);
        assertThat(plain.program("ut_count").testRun(TestRunRequest.of(frame())).retval())
            .isEqualTo(XDP_PASS);
      }
    } finally {
      Files.deleteIfExists(pinRoot.resolve("ut_pinned"));
      Files.deleteIfExists(pinRoot);
    }
  }

  @Test
  void badOptionsAreRejectedBeforeLoading(@TempDir Path dir) throws Exception {
    Path object = TestObjects.compile("maps", dir);
    assertThatThrownBy(() -> BpfObject.load(object, LoadOptions.DEFAULT.withMaxEntries("nope", 1)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'nope'")
        .hasMessageContaining("ut_sized");
    assertThatThrownBy(
            () ->
                BpfObject.load(
                    object, LoadOptions.DEFAULT.withInitialValue(".rodata", new byte[3])))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("must be 4 bytes, got 3");
  }

  static byte[] u32(int value) {
    return ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(value).array();
  }

  static byte[] u64(long value) {
    return ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).putLong(value).array();
  }
}
