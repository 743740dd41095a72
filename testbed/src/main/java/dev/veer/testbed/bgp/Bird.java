package dev.veer.testbed.bgp;

import com.google.common.collect.ImmutableList;
import dev.veer.bpf.Shell;
import dev.veer.director.routes.SpeakerConfig;
import dev.veer.testbed.net.Namespace;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A BIRD 2 BGP speaker running in a test-bed namespace, configured by Veer: on the router, one that
 * peers with every director and installs the VIP routes they announce as ECMP routes; on a
 * director, one that announces the host routes the director daemon puts into its announcement table
 * (route health injection). BFD on every session, so a dead director is dropped within a few
 * hundred milliseconds. Driven through its control socket ({@code birdc}).
 */
public final class Bird implements AutoCloseable {
  /** The router's AS; every director shares one AS, so their paths are equal and merged. */
  public static final int ROUTER_AS = 65000;

  public static final int DIRECTOR_AS = 65001;

  /** The kernel table a director daemon announces into, and its speaker reads. */
  public static final int ANNOUNCE_TABLE = 100;

  /**
   * BFD in the bed: a session is down after 3 missed packets 100 ms apart, as a packaged director's
   * default. At 50 ms, a router starved of CPU for 150 ms by the bed's JVMs (two cores shared by a
   * dozen daemons and 1,000 connections opening at once) dropped every director at once.
   */
  public static final Duration BFD_INTERVAL = Duration.ofMillis(100);

  /** Speakers run SCHED_FIFO at this priority, as a BFD speaker should on a busy host. */
  private static final String REALTIME_PRIORITY = "50";

  public static final int BFD_MULTIPLIER = 3;

  private final Namespace namespace;
  private final Path directory;
  private final Process process;

  private Bird(Namespace namespace, Path directory, Process process) {
    this.namespace = namespace;
    this.directory = directory;
    this.process = process;
  }

  /**
   * The router's speaker: a session with each director at its IPv4 address (for the IPv4 VIPs) and
   * its IPv6 address (for the IPv6 VIPs); equal routes become one multipath kernel route.
   */
  public static Bird router(
      Namespace ns,
      Inet4Address routerId,
      List<Inet4Address> directors4,
      List<Inet6Address> directors6) {
    StringBuilder config =
        new StringBuilder()
            .append("log stderr all;\n")
            .append("router id ")
            .append(routerId.getHostAddress())
            .append(";\n")
            .append("protocol device { }\n")
            .append("protocol bfd { interface \"*\" { min rx interval ")
            .append(BFD_INTERVAL.toMillis())
            .append(" ms; min tx interval ")
            .append(BFD_INTERVAL.toMillis())
            .append(" ms; multiplier ")
            .append(BFD_MULTIPLIER)
            .append("; }; }\n")
            // ECMP: equal routes from several directors become one multipath kernel route.
            .append("protocol kernel { ipv4 { import none; export all; }; merge paths on; }\n")
            .append("protocol kernel { ipv6 { import none; export all; }; merge paths on; }\n");
    for (String family : List.of("4", "6")) {
      config
          .append("template bgp director")
          .append(family)
          .append(" { local as ")
          .append(ROUTER_AS)
          // A session that failed (BFD, a link flap) comes back within a second, not BIRD's
          // default minute.
          .append("; bfd on; hold time 3; connect retry time 1; error wait time 1, 5; ipv")
          .append(family)
          .append(" { import all; export none; }; }\n");
    }
    for (int i = 0; i < directors4.size(); i++) {
      config
          .append("protocol bgp d")
          .append(i + 1)
          .append(" from director4 { neighbor ")
          .append(directors4.get(i).getHostAddress())
          .append(" as ")
          .append(DIRECTOR_AS)
          .append("; }\n");
    }
    for (int i = 0; i < directors6.size(); i++) {
      config
          .append("protocol bgp d")
          .append(i + 1)
          .append("v6 from director6 { neighbor ")
          .append(directors6.get(i).getHostAddress())
          .append(" as ")
          .append(DIRECTOR_AS)
          .append("; }\n");
    }
    return start(ns, config.toString());
  }

  /**
   * A director's speaker, configured as a packaged director's is ({@link SpeakerConfig}): announces
   * to the router at {@code router4} and {@code router6} what the director daemon puts into table
   * {@link #ANNOUNCE_TABLE}, with itself as next hop.
   */
  public static Bird director(
      Namespace ns, Inet4Address self, Inet4Address router4, Inet6Address router6) {
    return start(
        ns,
        new SpeakerConfig(
                self,
                DIRECTOR_AS,
                ImmutableList.of(router4, router6),
                ROUTER_AS,
                ANNOUNCE_TABLE,
                BFD_INTERVAL,
                BFD_MULTIPLIER)
            .bird());
  }

  /**
   * Where the speaker in {@code ns} keeps its files and control socket: known before it starts, so
   * that a director daemon can be pointed at the socket.
   */
  public static Path controlSocket(Namespace ns) {
    return directoryOf(ns).resolve("bird.ctl");
  }

  private static Path directoryOf(Namespace ns) {
    return Path.of(System.getProperty("java.io.tmpdir"), "veer-bird-" + ns.name());
  }

  private static Bird start(Namespace ns, String config) {
    try {
      Path dir = Files.createDirectories(directoryOf(ns));
      Files.writeString(dir.resolve("bird.conf"), config);
      List<String> command = new ArrayList<>(List.of("ip", "netns", "exec", ns.name()));
      if (Shell.tryRun("chrt", "-f", REALTIME_PRIORITY, "true").exitCode() == 0) {
        command.addAll(List.of("chrt", "-f", REALTIME_PRIORITY));
      }
      command.addAll(
          List.of(
              "bird",
              "-f",
              "-c",
              dir.resolve("bird.conf").toString(),
              "-s",
              dir.resolve("bird.ctl").toString(),
              "-P",
              dir.resolve("bird.pid").toString()));
      Process process =
          new ProcessBuilder(command)
              .redirectErrorStream(true)
              .redirectOutput(dir.resolve("bird.log").toFile())
              .start();
      Bird bird = new Bird(ns, dir, process);
      try {
        bird.awaitControlSocket();
      } catch (RuntimeException e) {
        bird.close();
        throw e;
      }
      return bird;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start BIRD in " + ns.name(), e);
    }
  }

  private void awaitControlSocket() {
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (Shell.tryRun("birdc", "-s", socket().toString(), "show", "status").exitCode() != 0) {
      if (!process.isAlive() || System.nanoTime() > deadline) {
        throw new IllegalStateException("BIRD did not start in " + namespace.name() + ": " + log());
      }
      sleep(50);
    }
  }

  /** What {@code birdc} answers to {@code command}, e.g. "show protocols". */
  public String show(String... command) {
    String[] args = new String[command.length + 3];
    args[0] = "birdc";
    args[1] = "-s";
    args[2] = socket().toString();
    System.arraycopy(command, 0, args, 3, command.length);
    return Shell.run(args);
  }

  /** SIGSTOP (true) or SIGCONT (false): a speaker that stops answering, as on a frozen host. */
  public void freeze(boolean frozen) {
    Shell.run("kill", frozen ? "-STOP" : "-CONT", Long.toString(process.pid()));
  }

  /** Stops the speaker dead (SIGKILL): its sessions drop, as when it crashes. */
  public void kill() {
    process.destroyForcibly();
    try {
      process.waitFor(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  public Namespace namespace() {
    return namespace;
  }

  public Path socket() {
    return directory.resolve("bird.ctl");
  }

  /** The speaker's log so far. */
  public String log() {
    try {
      return Files.readString(directory.resolve("bird.log"));
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  private static void sleep(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
    try (var files = Files.walk(directory)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException e) {
      // a temporary directory; nothing depends on it
    }
  }
}
