package dev.veer.bpf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class FdTest {
  @Test
  void closesOnceAndRefusesUseAfterClose() {
    Fd fd = Libc.open("/dev/null", Libc.O_RDONLY | Libc.O_CLOEXEC);
    int number = fd.intValue();
    assertThat(Files.exists(Path.of("/proc/self/fd/" + number))).isTrue();
    assertThat(fd.isClosed()).isFalse();

    fd.close();
    assertThat(fd.isClosed()).isTrue();
    // A second close(2) would fail with EBADF, or close whatever has since got the number.
    fd.close();
    assertThatThrownBy(fd::intValue)
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("fd " + number + " from open(/dev/null) is closed");
    assertThat(fd).hasToString("Fd[" + number + " from open(/dev/null), closed]");
  }

  @Test
  void failedOpenSaysWhatAndWhy() {
    assertThatThrownBy(() -> Libc.open("/nonexistent/veer", Libc.O_RDONLY))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.operation()).isEqualTo("open(/nonexistent/veer)");
              assertThat(e.errno()).isEqualTo(BpfException.ENOENT);
            });
  }

  @Test
  void refusesANegativeNumber() {
    assertThatThrownBy(() -> new Fd(-1, "test")).isInstanceOf(IllegalArgumentException.class);
  }
}
