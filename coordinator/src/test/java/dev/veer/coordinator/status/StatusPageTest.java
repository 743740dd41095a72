package dev.veer.coordinator.status;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.coordinator.Coordinator;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Protocol;
import io.grpc.stub.StreamObserver;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The status page rendered by a real browser: Debian's Chromium, headless. */
class StatusPageTest {
  @TempDir Path dir;

  /** Answers of the admin API's handlers, called directly. */
  static <T> StreamObserver<T> ignore() {
    return new StreamObserver<>() {
      @Override
      public void onNext(T value) {}

      @Override
      public void onError(Throwable t) {
        throw new AssertionError(t);
      }

      @Override
      public void onCompleted() {}
    };
  }

  @Test
  void theBrowserShowsServicesBackendsAndTheirShareOfTheTable() throws Exception {
    try (Coordinator coordinator =
            Coordinator.start(Coordinator.Config.local("c1", dir.resolve("data")));
        StatusPage page =
            StatusPage.start(new InetSocketAddress("127.0.0.1", 0), coordinator.admin())) {
      coordinator
          .admin()
          .createService(
              CreateServiceRequest.newBuilder()
                  .setSpec(
                      ServiceSpec.newBuilder()
                          .setName("web")
                          .setVip("203.0.113.10")
                          .setPort(80)
                          .setProtocol(Protocol.TCP))
                  .build(),
              ignore());
      for (String backend : List.of("192.0.2.134", "192.0.2.138")) {
        coordinator
            .admin()
            .addBackend(
                AddBackendRequest.newBuilder()
                    .setService("web")
                    .setAddress(backend)
                    .setState(BackendState.ACTIVE)
                    .build(),
                ignore());
      }
      String dom = render("http://127.0.0.1:" + page.port() + "/");
      assertThat(dom)
          .contains("web  203.0.113.10:80/tcp")
          .contains("192.0.2.134")
          .contains("192.0.2.138")
          .contains("state version")
          .contains("class=\"bar\"")
          .contains("leader");
      // Two backends share the rows about evenly.
      assertThat(dom).containsPattern("(4[5-9]|5[0-5])\\.\\d%");
    }
  }

  /** The page's DOM after its script ran, from headless Chromium. */
  static String render(String url) throws Exception {
    Path chromium = Path.of("/usr/bin/chromium");
    assertThat(chromium).as("Debian's chromium (./veer setup installs it)").exists();
    Path profile = Files.createTempDirectory("veer-chromium");
    Process process =
        new ProcessBuilder(
                chromium.toString(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--user-data-dir=" + profile,
                "--virtual-time-budget=5000",
                "--dump-dom",
                url)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    byte[] out = process.getInputStream().readAllBytes();
    assertThat(process.waitFor(60, TimeUnit.SECONDS)).isTrue();
    try (var files = Files.walk(profile)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
    return new String(out, StandardCharsets.UTF_8);
  }
}
