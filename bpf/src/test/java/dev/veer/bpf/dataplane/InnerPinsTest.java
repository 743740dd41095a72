package dev.veer.bpf.dataplane;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.net.InetAddresses;
import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.LoadOptions;
import dev.veer.bpf.abi.VeerAbi;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A pinned director program pins the inner maps it installs, so that the next program loaded on the
 * same pins reads what is installed through them, not by id (which needs CAP_SYS_ADMIN).
 */
class InnerPinsTest {
  private final Path pinRoot =
      Path.of("/sys/fs/bpf/veer-ut-inner-" + ProcessHandle.current().pid());
  private static final int ROW_BITS = VeerAbi.MIN_ROW_BITS;
  private static final ServiceKey WEB = ServiceKey.tcp(InetAddresses.forString("203.0.113.10"), 80);

  @AfterEach
  void removePins() {
    BpfSystem.removePins(pinRoot);
  }

  @Test
  void aTakingOverProgramReadsTheInstalledServicesAndTablesThroughTheirPins() {
    LoadOptions options = LoadOptions.DEFAULT.withPinRoot(pinRoot);
    ServiceEntry entry = new ServiceEntry(3, 1, ROW_BITS, 0);
    try (DirectorProgram first = DirectorProgram.load(ROW_BITS, options)) {
      first.replaceServices(Map.of(WEB, entry));
      try (TableMap table = first.newTable(ROW_BITS, VeerAbi.MAX_HOPS, 2);
          TableMap narrow = first.newTable(ROW_BITS, VeerAbi.NARROW_HOPS, 2)) {
        first.installTable(3, table);
        first.installTable(5, narrow);
      }
      assertThat(pinRoot.resolve("inner-services")).exists();
      assertThat(pinRoot.resolve("inner-table-3")).exists();
      assertThat(pinRoot.resolve("inner-table-5")).exists();

      // A change replaces the pin with the new inner map.
      first.replaceServices(Map.of(WEB, new ServiceEntry(3, 2, ROW_BITS, 0)));
      try (DirectorProgram second = DirectorProgram.load(ROW_BITS, options)) {
        assertThat(second.readServices()).containsEntry(WEB, new ServiceEntry(3, 2, ROW_BITS, 0));
        assertThat(second.readTable(3, false))
            .get()
            .satisfies(c -> assertThat(c).hasSize((1 << ROW_BITS) * VeerAbi.MAX_HOPS));
        assertThat(second.readTable(5, true))
            .get()
            .satisfies(c -> assertThat(c).hasSize((1 << ROW_BITS) * VeerAbi.MAX_HOPS));
        assertThat(second.readTable(4, false)).isEmpty();
      }

      first.removeTable(3);
      first.removeTable(5);
      assertThat(pinRoot.resolve("inner-table-3")).doesNotExist();
      assertThat(pinRoot.resolve("inner-table-5")).doesNotExist();
    }
  }

  @Test
  void aPinThatIsNotTheInstalledMapIsNotBelieved() throws Exception {
    LoadOptions options = LoadOptions.DEFAULT.withPinRoot(pinRoot);
    try (DirectorProgram first = DirectorProgram.load(ROW_BITS, options)) {
      first.replaceServices(Map.of(WEB, new ServiceEntry(1, 1, ROW_BITS, 0)));
      Path pin = pinRoot.resolve("inner-services");
      Path stale = pinRoot.resolve("stale");
      Files.move(pin, stale);
      first.replaceServices(Map.of(WEB, new ServiceEntry(2, 2, ROW_BITS, 0)));
      // As after a crash between pinning and pointing: the pin names the older map.
      Files.move(stale, pin, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      try (DirectorProgram second = DirectorProgram.load(ROW_BITS, options)) {
        assertThat(second.readServices()).containsEntry(WEB, new ServiceEntry(2, 2, ROW_BITS, 0));
      }
    }
  }
}
