package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.XdpAttachment;
import dev.veer.testbed.TestBed.Director;
import dev.veer.testbed.cluster.InstalledTree;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Veer as its Debian packages install it: director daemons and proxy agents run from the extracted
 * packages, on the bundled Java runtime, with only the capabilities their systemd units grant; they
 * forward real connections, and a director restarted as a package upgrade restarts it (SIGTERM,
 * then the new daemon) hands over without breaking one, and so does a proxy agent replaced after a
 * crash. Run by {@code packaging/check-debs}, which builds the tree and names it in {@value
 * InstalledTree#PROPERTY}; left out of the default run.
 */
class PackagedDaemonsTest {
  static final InetSocketAddress VIP4 = new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);

  @TempDir Path logs;

  @Test
  void packagedDaemonsForwardWithTheirUnitsCapabilitiesAndAnUpgradedDirectorHandsOver()
      throws Exception {
    String root = System.getProperty(InstalledTree.PROPERTY);
    assertThat(root)
        .as(
            "the extracted packages (-D%s=DIR; packaging/check-debs sets it)",
            InstalledTree.PROPERTY)
        .isNotNull();
    InstalledTree tree = new InstalledTree(Path.of(root));
    assertThat(tree.root().resolve("usr/lib/veer/runtime/bin/java")).isExecutable();
    try (TestBed bed =
        TestBed.builder("pkg").directors(2).proxies(3).processes(logs).installed(tree).build()) {
      bed.ctl("service", "create", "web", "--vip", TestBed.VIP4.getHostAddress(), "--port", "80");
      for (int p = 0; p < 3; p++) {
        bed.ctl(
            "backend",
            "add",
            "web",
            bed.proxies().get(p).address4().getHostAddress(),
            "--state",
            "active");
      }
      bed.awaitEcmp(TestBed.VIP4);
      Traffic.BurstResult first = Traffic.burst(bed.client().handle(), VIP4, 200, 20);
      assertThat(first.failures()).isEmpty();
      assertThat(first.perServer().elementSet()).hasSize(3);

      Director before = bed.directors().get(0);
      int programBefore =
          XdpAttachment.attachedProgramId(before.ns().handle(), "eth0").orElseThrow();
      try (Traffic.LongLived traffic =
          Traffic.LongLived.start(
              bed.client().handle(), VIP4, 100, Duration.ofMillis(50), Duration.ofSeconds(60))) {
        Thread.sleep(500);
        long upgraded = traffic.mark();
        Director after = bed.restartDirector(1); // what the package's postinst does
        assertThat(XdpAttachment.attachedProgramId(after.ns().handle(), "eth0"))
            .get()
            .isNotEqualTo(programBefore);
        Thread.sleep(1000);
        // The route stayed: the router still spreads over both directors.
        assertThat(bed.routerNextHops4()).hasSize(2);
        // A proxy agent that crashes is replaced; its program forwarded on meanwhile.
        bed.killAgent(1);
        Thread.sleep(1000);
        ConnectionLoops.Result result = traffic.stop();
        assertThat(result.brokenSince(upgraded)).isEmpty();
        assertThat(result.failed()).isEmpty();
      }
      // The daemons ran from the tree, and logged as they do into the journal.
      String log = Files.readString(logs.resolve("director-1.log"));
      assertThat(log).contains("[INFO]").doesNotContain("No SLF4J providers");
      // veer ctl status shows what each director announces and its BGP sessions.
      assertThat(bed.ctl("status")).contains("ANNOUNCES").contains("established");
    }
  }
}
