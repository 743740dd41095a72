package dev.veer.testbed.survival;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.Shell;
import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.Backend;
import dev.veer.proto.admin.v1.ClusterStatus;
import dev.veer.proto.admin.v1.CoordinatorStatus;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.DeleteServiceRequest;
import dev.veer.proto.admin.v1.GetServiceRequest;
import dev.veer.proto.admin.v1.GetStatusRequest;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.admin.v1.SetBackendWeightRequest;
import dev.veer.proto.admin.v1.UpdateServiceRequest;
import dev.veer.proto.types.v1.BackendState;
import dev.veer.proto.types.v1.Balance;
import dev.veer.proto.types.v1.Health;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.testbed.Await;
import dev.veer.testbed.ConnectionLoops;
import dev.veer.testbed.TestBed;
import dev.veer.testbed.TestBed.Proxy;
import dev.veer.testbed.Traffic;
import dev.veer.testbed.cluster.CoordinatorProcess;
import dev.veer.testbed.cluster.FailoverAdmin;
import dev.veer.testbed.cluster.ZooKeeperEnsemble;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.BooleanSupplier;
import org.apache.curator.test.InstanceSpec;
import org.apache.curator.test.TestingCluster;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The promise under every change an operator makes: a three-node ZooKeeper ensemble, three
 * coordinators, three director daemons (two in the router's ECMP set) and five proxy hosts with
 * agents, every daemon a JVM of its own as on real hosts, service "web" on proxies 1-3. Each
 * scenario runs alone under {@link #connections} long-lived TCP connections, each sending a request
 * every 100 ms and checking every answer, and reports how many connections broke and requests
 * failed. Between scenarios the cluster is put back as it was.
 */
public final class SurvivalSuite implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(SurvivalSuite.class);
  static final InetSocketAddress VIP4 = new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);
  static final int CHECK_INTERVAL_MILLIS = 200;
  static final Duration SETTLE = Duration.ofMillis(1500);

  private final int connections;

  /**
   * How fast the scenarios of many changes go: 1 is the timing (a change every 20 s in the
   * rolling restart, 5-60 s apart in the random walk), 0.1 ten times as fast (CI).
   */
  private final double pace;

  private final Path logs;
  private final TestingCluster zookeeper;
  private final List<CoordinatorProcess> coordinators = new ArrayList<>();
  private final FailoverAdmin admin;
  private final TestBed bed;
  private int nextCoordinator = 1;

  /**
   * One scenario's outcome: how many connections broke (failed, or gave no answer after the change
   * had converged), counted once every request in flight was answered or timed out; and how many
   * were expected to (those a scenario takes away on purpose, such as a dead service's).
   */
  public record Outcome(
      String scenario,
      int connections,
      int broken,
      int expectedBroken,
      long answered,
      String note) {
    /** Whether exactly the connections expected to break broke. */
    public boolean kept() {
      return broken == expectedBroken;
    }
  }

  private SurvivalSuite(
      int connections,
      double pace,
      Path logs,
      TestingCluster zookeeper,
      FailoverAdmin admin,
      TestBed bed) {
    this.connections = connections;
    this.pace = pace;
    this.logs = logs;
    this.zookeeper = zookeeper;
    this.admin = admin;
    this.bed = bed;
  }

  public static SurvivalSuite start(int connections) throws Exception {
    return start(connections, 1);
  }

  /** The suite with the scenarios of many changes at {@code pace} (see {@link #pace}). */
  public static SurvivalSuite start(int connections, double pace) throws Exception {
    Path logs = Files.createTempDirectory("veer-survival");
    TestingCluster zookeeper = ZooKeeperEnsemble.start(3);
    List<CoordinatorProcess> started = new ArrayList<>();
    for (int c = 1; c <= 3; c++) {
      started.add(coordinator("c" + c, zookeeper, logs));
    }
    FailoverAdmin admin =
        new FailoverAdmin(started.stream().map(CoordinatorProcess::target).toList());
    TestBed bed = null;
    try {
      awaitCoordinators(admin, 3);
      bed =
          TestBed.builder("surv")
              .directors(3)
              .proxies(5)
              .coordinators(started.stream().map(CoordinatorProcess::target).toList())
              .processes(logs)
              .build();
      SurvivalSuite suite = new SurvivalSuite(connections, pace, logs, zookeeper, admin, bed);
      suite.coordinators.addAll(started);
      suite.nextCoordinator = 4;
      admin.call(
          s ->
              s.createService(
                  CreateServiceRequest.newBuilder()
                      .setSpec(
                          ServiceSpec.newBuilder()
                              .setName("web")
                              .setVip(TestBed.VIP4.getHostAddress())
                              .setPort(TestBed.SERVICE_PORT)
                              .setProtocol(Protocol.TCP))
                      .build()));
      suite.reset();
      return suite;
    } catch (Exception | Error e) {
      if (bed != null) {
        bed.close();
      }
      admin.close();
      for (CoordinatorProcess c : started) {
        c.close();
      }
      zookeeper.close();
      throw e;
    }
  }

  private static CoordinatorProcess coordinator(String id, TestingCluster zookeeper, Path logs)
      throws IOException {
    return CoordinatorProcess.start(
        id,
        zookeeper.getConnectString(),
        logs,
        "--check-interval-ms",
        Integer.toString(CHECK_INTERVAL_MILLIS),
        "--check-timeout-ms",
        "100",
        "--health-threshold",
        "2");
  }

  /** A scenario the suite can run by name. */
  @FunctionalInterface
  interface Scenario {
    Outcome run() throws Exception;
  }

  /** Every scenario of the issue, in an order that needs the fewest repairs. */
  private java.util.LinkedHashMap<String, Scenario> scenarios() {
    java.util.LinkedHashMap<String, Scenario> all = new java.util.LinkedHashMap<>();
    all.put("add-proxy", this::addAProxy);
    all.put("drain-remove-proxy", this::drainThenRemoveAProxy);
    all.put("add-and-drain", this::addOneAndDrainAnotherAtOnce);
    all.put("add-director", this::addADirector);
    all.put("remove-director", this::removeADirector);
    all.put("director-host-dies", this::aDirectorHostDiesSilently);
    all.put("director-link-down", this::aDirectorsLinkGoesDown);
    all.put("director-speaker-killed", this::aDirectorsSpeakerIsKilled);
    all.put("director-nic-reset", this::aDirectorsNicResets);
    all.put("restart-director", this::restartADirectorDaemon);
    all.put("kill-director", this::killADirectorDaemon);
    all.put("kill-agent", this::killAProxyAgent);
    all.put("kill-leader", this::killTheLeaderCoordinator);
    all.put("stop-zookeeper-node", this::stopAZooKeeperNode);
    all.put("rolling-restart", this::rollingRestart);
    all.put("random-walk", this::randomWalk);
    all.put("weights", this::weightsAndBalanceChange);
    all.put("thousand-services", this::aThousandServicesAndTheLeaderKilledDuringARollingChange);
    all.put("kill-proxy-service", this::killAProxysService);
    all.put("black-hole-proxy", this::blackHoleAProxy);
    return all;
  }

  /** The scenarios whose names contain {@code filter} ("" for all), in order. */
  public List<Outcome> run(String filter) throws Exception {
    List<Outcome> out = new ArrayList<>();
    for (var e : scenarios().entrySet()) {
      if (e.getKey().contains(filter)) {
        out.add(e.getValue().run());
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException(
          "no scenario matches '" + filter + "'; scenarios: " + scenarios().keySet());
    }
    return out;
  }

  /**
   * The control: proxy 1's answers go nowhere (a blackhole route towards the clients). Exactly the
   * connections it served must be counted broken, which proves that the count sees a connection
   * whose packets are silently dropped.
   */
  Outcome blackHoleAProxy() throws Exception {
    log.info("scenario: black-hole a proxy (control)");
    Proxy victim = bed.proxies().get(0);
    int onVictim;
    ConnectionLoops.Result result;
    long holed;
    try (Traffic.LongLived traffic = settledTraffic()) {
      onVictim = traffic.perServer().count(victim.name());
      victim.ns().exec("ip", "route", "add", "blackhole", TestBed.CLIENT4.getHostAddress() + "/32");
      holed = traffic.mark();
      Thread.sleep(SETTLE.toMillis());
      result = traffic.stop();
    } finally {
      victim
          .ns()
          .tryExec("ip", "route", "del", "blackhole", TestBed.CLIENT4.getHostAddress() + "/32");
    }
    List<ConnectionLoops.Connection> broken = result.brokenSince(holed);
    long others = broken.stream().filter(c -> !victim.name().equals(c.server())).count();
    Outcome outcome =
        new Outcome(
            "black-hole a proxy (control: its connections must count as broken)",
            connections,
            broken.size(),
            onVictim,
            result.answered(),
            String.format(
                Locale.ROOT,
                "%d connections were on %s, whose replies were dropped; %d broken connections were elsewhere",
                onVictim,
                victim.name(),
                others));
    log.info("{}", outcome);
    reset();
    return outcome;
  }

  @FunctionalInterface
  interface Action {
    String run(Traffic.LongLived traffic) throws Exception;
  }

  private Outcome scenario(String name, Action action) throws Exception {
    return scenario(name, action, () -> "");
  }

  /** What a scenario does once its connections have closed; returns a note. */
  @FunctionalInterface
  interface Afterwards {
    String run() throws Exception;
  }

  private Outcome scenario(String name, Action action, Duration runtime) throws Exception {
    return scenario(name, action, () -> "", runtime);
  }

  private Outcome scenario(String name, Action action, Afterwards afterwards) throws Exception {
    return scenario(name, action, afterwards, Duration.ofSeconds(120));
  }

  private Outcome scenario(String name, Action action, Afterwards afterwards, Duration runtime)
      throws Exception {
    log.info("scenario: {}", name);
    String note;
    ConnectionLoops.Result result;
    long converged;
    try (Traffic.LongLived traffic = settledTraffic(runtime)) {
      note = action.run(traffic);
      awaitConverged();
      converged = traffic.mark();
      Thread.sleep(SETTLE.toMillis());
      result = traffic.stop();
    }
    List<ConnectionLoops.Connection> broken = result.brokenSince(converged);
    broken.stream().limit(5).forEach(f -> log.warn("{}: {}", name, f));
    note += afterwards.run();
    note += "; longest stall " + result.longestAnswerMillis() + " ms";
    Outcome outcome = new Outcome(name, connections, broken.size(), 0, result.answered(), note);
    log.info("{}", outcome);
    reset();
    return outcome;
  }

  Outcome addAProxy() throws Exception {
    return scenario(
        "add a proxy",
        traffic -> {
          addBackend(4, BackendState.FILLING);
          return "proxy-4 added (filling)";
        });
  }

  Outcome drainThenRemoveAProxy() throws Exception {
    return scenario(
        "drain, then remove a proxy",
        traffic -> {
          setState(3, BackendState.DRAINING);
          return "proxy-3 drained under traffic";
        },
        () -> {
          // The connections have closed: the drain ends by itself, and the proxy goes without
          // force.
          await(
              "proxy-3's drain to end",
              () ->
                  service().getBackendsList().stream()
                      .anyMatch(
                          b ->
                              b.getAddress().equals(address(3))
                                  && b.getState() == BackendState.INACTIVE),
              Duration.ofSeconds(20));
          admin.call(
              s ->
                  s.removeBackend(
                      RemoveBackendRequest.newBuilder()
                          .setService("web")
                          .setAddress(address(3))
                          .build()));
          awaitConverged();
          Traffic.BurstResult after = Traffic.burst(bed.client().handle(), VIP4, 200, 20);
          if (!after.failures().isEmpty() || after.perServer().count("proxy-3") > 0) {
            throw new IllegalStateException("after removing proxy-3: " + after);
          }
          return "; its drain ended when its last connection closed, it was removed without force, and 200 new"
              + " connections all reached the others";
        });
  }

  Outcome addOneAndDrainAnotherAtOnce() throws Exception {
    return scenario(
        "add one proxy and drain another at once",
        traffic -> {
          addBackend(4, BackendState.FILLING);
          setState(2, BackendState.DRAINING);
          return "proxy-4 added and proxy-2 drained back to back";
        });
  }

  /**
   * Rolling maintenance, the most common thing operators do: each of the five proxies drained, then
   * active again, one change every 20 s (times the pace), twice round. Proxies 4 and 5 join the
   * service first.
   */
  Outcome rollingRestart() throws Exception {
    addBackend(4, BackendState.ACTIVE);
    addBackend(5, BackendState.ACTIVE);
    awaitHealthy();
    awaitConverged();
    Duration step = paced(Duration.ofSeconds(20));
    return scenario(
        "rolling restart: each of 5 proxies drained, then active again, twice round",
        traffic -> {
          int changes = 0;
          for (int round = 0; round < 2; round++) {
            for (int p = 1; p <= 5; p++) {
              setState(p, BackendState.DRAINING);
              Thread.sleep(step.toMillis());
              setState(p, BackendState.ACTIVE);
              Thread.sleep(step.toMillis());
              changes += 2;
            }
          }
          return changes + " changes, one every " + step.toMillis() + " ms" + retention();
        },
        Duration.ofSeconds(120 + 20 * step.toSeconds()));
  }

  /**
   * Weights and balance changed under 1,000 connections, one change every 10 s (times the pace):
   * proxy-1 to 300 and proxy-2 to 50, the service to bounded balance, proxy-3 to 200, then all back
   * (rendezvous, 100 each). Each change moves rows between proxies; their previous primaries stay
   * as later hops, so no connection may break.
   */
  Outcome weightsAndBalanceChange() throws Exception {
    Duration step = paced(Duration.ofSeconds(10));
    return scenario(
        "weights and balance changed: 8 changes",
        traffic -> {
          setWeight(1, 300);
          Thread.sleep(step.toMillis());
          setWeight(2, 50);
          Thread.sleep(step.toMillis());
          Service heaviest = service();
          setBalance(Balance.BOUNDED);
          Thread.sleep(step.toMillis());
          setWeight(3, 200);
          Thread.sleep(step.toMillis());
          Service bounded = service();
          setWeight(1, 100);
          Thread.sleep(step.toMillis());
          setBalance(Balance.RENDEZVOUS);
          Thread.sleep(step.toMillis());
          setWeight(2, 100);
          Thread.sleep(step.toMillis());
          setWeight(3, 100);
          Thread.sleep(step.toMillis());
          return "rows as primary at weights 300/50/100 (rendezvous): "
              + shares(heaviest)
              + "; at 300/50/200 (bounded): "
              + shares(bounded)
              + "; one change every "
              + step.toMillis()
              + " ms"
              + retention();
        },
        Duration.ofSeconds(120 + 8 * step.toSeconds()));
  }

  /** Each backend's share of the rows as primary, in percent. */
  private static String shares(Service service) {
    int rows = service.getBackendsList().stream().mapToInt(Backend::getPrimaryRows).sum();
    return service.getBackendsList().stream()
        .map(b -> String.format(Locale.ROOT, "%.1f%%", 100.0 * b.getPrimaryRows() / rows))
        .collect(java.util.stream.Collectors.joining("/"));
  }

  /**
   * A random walk of 20 changes 5-60 s apart (times the pace): proxies drained, activated, set
   * inactive, added (4 and 5) and removed when their drain has ended; at least two proxies stay
   * eligible. Prints its seed; {@code -Dveer.survival.seed=N} replays the walk.
   */
  Outcome randomWalk() throws Exception {
    long seed = Long.getLong("veer.survival.seed", System.nanoTime());
    java.util.Random random = new java.util.Random(seed);
    Duration longest = paced(Duration.ofSeconds(60));
    return scenario(
        "random walk: 20 changes 5-60 s apart",
        traffic -> {
          List<String> done = new ArrayList<>();
          for (int change = 0; change < 20; change++) {
            done.add(randomChange(random));
            long wait = 5_000 + random.nextInt(55_001);
            Thread.sleep(Math.max(100, Math.round(wait * pace)));
          }
          log.info("random walk (seed {}): {}", seed, done);
          return "seed " + seed + ": " + String.join(", ", done) + retention();
        },
        Duration.ofSeconds(120 + 20 * longest.toSeconds()));
  }

  /** One random change of the walk, drawn from those that change something; returns what it did. */
  private String randomChange(java.util.Random random) {
    List<Backend> backends = service().getBackendsList();
    long eligible = backends.stream().filter(SurvivalSuite::takesNewConnections).count();
    List<java.util.function.Supplier<String>> choices = new ArrayList<>();
    for (int p = 1; p <= bed.proxies().size(); p++) {
      int proxy = p;
      String address = address(p);
      Backend backend =
          backends.stream().filter(b -> b.getAddress().equals(address)).findFirst().orElse(null);
      if (backend == null) {
        BackendState state = random.nextBoolean() ? BackendState.FILLING : BackendState.ACTIVE;
        choices.add(() -> changed(() -> addBackend(proxy, state), "add proxy-" + proxy, state));
      } else if (takesNewConnections(backend)) {
        if (eligible > 2) {
          choices.add(
              () ->
                  changed(
                      () -> setState(proxy, BackendState.DRAINING),
                      "proxy-" + proxy,
                      BackendState.DRAINING));
          choices.add(
              () ->
                  changed(
                      () -> setState(proxy, BackendState.INACTIVE),
                      "proxy-" + proxy,
                      BackendState.INACTIVE));
        }
      } else {
        choices.add(
            () ->
                changed(
                    () -> setState(proxy, BackendState.ACTIVE),
                    "proxy-" + proxy,
                    BackendState.ACTIVE));
        if (backend.getState() == BackendState.INACTIVE) {
          choices.add(() -> removeUnforced(proxy));
        }
      }
    }
    return choices.get(random.nextInt(choices.size())).get();
  }

  private static boolean takesNewConnections(Backend b) {
    return b.getState() == BackendState.ACTIVE || b.getState() == BackendState.FILLING;
  }

  private static String changed(Runnable change, String what, BackendState state) {
    change.run();
    return what + " " + state.name().toLowerCase(Locale.ROOT);
  }

  /** Removes an inactive proxy without force: refused while its proxy reports flows. */
  private String removeUnforced(int proxy) {
    try {
      admin.call(
          s ->
              s.removeBackend(
                  RemoveBackendRequest.newBuilder()
                      .setService("web")
                      .setAddress(address(proxy))
                      .build()));
      return "remove proxy-" + proxy;
    } catch (io.grpc.StatusRuntimeException e) {
      if (e.getStatus().getCode() != io.grpc.Status.Code.FAILED_PRECONDITION) {
        throw e;
      }
      return "remove proxy-" + proxy + " refused (it still has connections)";
    }
  }

  /** What the service's retention held at the end of a scenario, for its note. */
  private String retention() {
    Service web = service();
    return String.format(
        Locale.ROOT,
        "; at the end %d generations awaited reports, %d rows kept a backend by its flows, %d rows"
            + " and %d flows were out of hops",
        web.getRetainedGenerations(),
        web.getBackendsList().stream().mapToInt(Backend::getRetainedRows).sum(),
        web.getRowsOutOfHops(),
        web.getFlowsOutOfHops());
  }

  private Duration paced(Duration duration) {
    return Duration.ofMillis(Math.max(100, Math.round(duration.toMillis() * pace)));
  }

  /**
   * Director 1's host stops answering while its carrier stays up: its daemon and its speaker
   * frozen, everything it sends lost at the router. The router must drop it (BFD) and its flows go
   * on through the other director; after 2 s the host comes back.
   */
  Outcome aDirectorHostDiesSilently() throws Exception {
    TestBed.Director d = bed.directors().get(0);
    return directorFailure(
        "a director host dies silently (carrier up, nothing answers)",
        () -> {
          bed.cutOffDirector(1, true);
          d.process().orElseThrow().freeze(true);
          bed.speaker(1).freeze(true);
        },
        () -> {
          bed.cutOffDirector(1, false);
          bed.speaker(1).freeze(false);
          d.process().orElseThrow().freeze(false);
        },
        "director-1 frozen and cut off: the router dropped it (BFD) after");
  }

  /** Director 1's link goes down at the router, and comes back after 2 s. */
  Outcome aDirectorsLinkGoesDown() throws Exception {
    return directorFailure(
        "a director's link goes down",
        () -> bed.router().exec("ip", "link", "set", "d1", "down"),
        () -> {
          bed.router().exec("ip", "link", "set", "d1", "up");
          // IPv6 addresses go with an interface that is set down.
          bed.router()
              .exec("ip", "-6", "addr", "replace", "2001:db8:d1::1/64", "dev", "d1", "nodad");
        },
        "the router's link to director-1 went down: its route dropped it after");
  }

  /** Director 1's BGP speaker is killed, and started again after 2 s. */
  Outcome aDirectorsSpeakerIsKilled() throws Exception {
    return directorFailure(
        "a director's speaker is killed",
        () -> bed.speaker(1).kill(),
        () -> bed.restartSpeaker(1),
        "director-1's BIRD was SIGKILLed: the router dropped it after");
  }

  /**
   * Director 1's NIC resets, as {@code ethtool -r} does on some drivers: its own link goes down and
   * its XDP program is lost; 2 s later the link comes back, and the director must attach its
   * program again by itself before it announces again.
   */
  Outcome aDirectorsNicResets() throws Exception {
    TestBed.Director d = bed.directors().get(0);
    return directorFailure(
        "a director's NIC resets (link flap, program lost)",
        () -> {
          bed.setDirectorLink(1, false);
          dev.veer.bpf.XdpAttachment.detachAll(d.ns().handle(), "eth0");
        },
        () -> bed.setDirectorLink(1, true),
        "director-1's own link went down and its program was detached: the router dropped it after");
  }

  /** A step of a director failure. */
  @FunctionalInterface
  interface Step {
    void run() throws Exception;
  }

  /**
   * Director 1 fails ({@code fail}) under traffic; the router must drop it from its route, which is
   * timed; 2 s later it recovers ({@code recover}) and the router takes it back.
   */
  private Outcome directorFailure(String name, Step fail, Step recover, String dropped)
      throws Exception {
    TestBed.Director d = bed.directors().get(0);
    return scenario(
        name,
        traffic -> {
          long start = System.nanoTime();
          fail.run();
          long detected = awaitOutOfRoute(d, start);
          Thread.sleep(2000);
          recover.run();
          bed.setEcmp(bed.directors().subList(0, 2));
          return dropped + " " + detected + " ms; back after 2 s";
        });
  }

  /**
   * Waits until the router's route no longer names {@code d}; returns the ms since {@code start}.
   */
  private long awaitOutOfRoute(TestBed.Director d, long start) throws InterruptedException {
    String address = d.address4().getHostAddress();
    await(
        "the router to drop " + d.name(),
        () -> !bed.routerNextHops4().contains(address),
        Duration.ofSeconds(30));
    return (System.nanoTime() - start) / 1_000_000;
  }

  Outcome addADirector() throws Exception {
    return scenario(
        "add a director to the ECMP set",
        traffic -> {
          bed.setEcmp(bed.directors());
          return "director-3 joined the router's ECMP set";
        });
  }

  Outcome removeADirector() throws Exception {
    return scenario(
        "remove a director from the ECMP set",
        traffic -> {
          bed.setEcmp(List.of(bed.directors().get(0)));
          return "director-2 left the router's ECMP set";
        });
  }

  Outcome restartADirectorDaemon() throws Exception {
    return scenario(
        "restart a director daemon (SIGTERM)",
        traffic -> {
          bed.restartDirector(1);
          return "director-1's daemon handed over on SIGTERM and a new process took its pinned program and maps over";
        });
  }

  /** SIGKILL: the program stays attached with its tables, and a new daemon takes its pins over. */
  Outcome killADirectorDaemon() throws Exception {
    return scenario(
        "kill a director daemon (SIGKILL) and restart it",
        traffic -> {
          bed.killDirector(1);
          return "director-1's daemon was SIGKILLed and a new process took its pinned program and maps over";
        });
  }

  /**
   * SIGKILL of proxy 1's agent: its program stays attached and its pinned sockops link keeps the
   * flow table true until a new agent replaces both.
   */
  Outcome killAProxyAgent() throws Exception {
    return scenario(
        "kill a proxy agent (SIGKILL) and restart it",
        traffic -> {
          bed.killAgent(1);
          long links = sockopsLinks();
          if (links != bed.proxies().size()) {
            throw new IllegalStateException(
                links
                    + " sockops links attached for "
                    + bed.proxies().size()
                    + " agents: the dead agent's link was not replaced");
          }
          return "proxy-1's agent was SIGKILLed under traffic; a new agent replaced its program and its pinned"
              + " flow-table link ("
              + links
              + " sockops links for "
              + links
              + " agents after)";
        });
  }

  /** Sockops links attached on this machine: one per live agent when nothing else uses them. */
  private static long sockopsLinks() {
    return Shell.run("bpftool", "link", "show").lines().filter(l -> l.contains("sock_ops")).count();
  }

  Outcome killTheLeaderCoordinator() throws Exception {
    return scenario(
        "kill the leader coordinator (SIGKILL)",
        traffic -> {
          CoordinatorProcess leader = leader();
          leader.kill();
          addBackend(4, BackendState.FILLING);
          return leader.id() + " killed; then proxy-4 added through the survivors";
        });
  }

  /**
   * How many services the cluster of {@link
   * #aThousandServicesAndTheLeaderKilledDuringARollingChange} holds.
   */
  private static final int MANY_SERVICES = 1000;

  /**
   * A cluster of 1,000 services: beside web, 999 UDP services on web's VIP (ports 1001 on), each
   * with proxies 1 to 3 as backends and a table of its own (every director holds 1,000 tables).
   * Then a rolling change of web under its connections, each of proxies 1 to 3 drained and made
   * active again, and the leader coordinator killed in the middle of it.
   */
  Outcome aThousandServicesAndTheLeaderKilledDuringARollingChange() throws Exception {
    long start = System.nanoTime();
    forEachOfMany(
        (stub, i) -> {
          CreateServiceRequest.Builder request =
              CreateServiceRequest.newBuilder()
                  .setSpec(
                      ServiceSpec.newBuilder()
                          .setName(manyName(i))
                          .setVip(TestBed.VIP4.getHostAddress())
                          .setPort(1000 + i)
                          .setProtocol(Protocol.UDP));
          for (int p = 1; p <= 3; p++) {
            request.addBackends(
                Backend.newBuilder().setAddress(address(p)).setState(BackendState.ACTIVE));
          }
          stub.createService(request.build());
        });
    long created = System.nanoTime();
    await(
        "directors converged on " + MANY_SERVICES + " services",
        this::directorsConverged,
        Duration.ofSeconds(300));
    long converged = System.nanoTime();
    Duration step = paced(Duration.ofSeconds(20));
    return scenario(
        "1,000 services: the leader coordinator killed during a rolling change of one of them",
        traffic -> {
          String killed = "";
          int changes = 0;
          for (int p = 1; p <= 3; p++) {
            setState(p, BackendState.DRAINING);
            Thread.sleep(step.toMillis());
            if (p == 2) {
              CoordinatorProcess leader = leader();
              leader.kill();
              killed = leader.id();
            }
            setState(p, BackendState.ACTIVE);
            Thread.sleep(step.toMillis());
            changes += 2;
          }
          return String.format(
              Locale.ROOT,
              "%d services created in %d s, on every director %d s later; %d changes of web, one"
                  + " every %d ms; leader %s killed after the third",
              MANY_SERVICES,
              (created - start) / 1_000_000_000,
              (converged - created) / 1_000_000_000,
              changes,
              step.toMillis(),
              killed);
        },
        () -> {
          forEachOfMany(
              (stub, i) ->
                  stub.deleteService(
                      DeleteServiceRequest.newBuilder()
                          .setName(manyName(i))
                          .setForce(true)
                          .build()));
          long deleted = System.nanoTime();
          await(
              "directors converged on the services left",
              this::directorsConverged,
              Duration.ofSeconds(120));
          return String.format(
              Locale.ROOT,
              "; deleted, and gone from every director %d s later",
              (System.nanoTime() - deleted) / 1_000_000_000);
        });
  }

  /**
   * One admin call for each of the many services but web, in turn. A call that timed out is tried
   * again on the next coordinator, so its answer may be that the first try did it already
   * (ALREADY_EXISTS, NOT_FOUND): that is success here.
   */
  private void forEachOfMany(
      java.util.function.ObjIntConsumer<AdminServiceGrpc.AdminServiceBlockingStub> call) {
    for (int i = 1; i < MANY_SERVICES; i++) {
      int service = i;
      try {
        admin.call(
            stub -> {
              call.accept(stub, service);
              return null;
            });
      } catch (io.grpc.StatusRuntimeException e) {
        if (e.getStatus().getCode() != io.grpc.Status.Code.ALREADY_EXISTS
            && e.getStatus().getCode() != io.grpc.Status.Code.NOT_FOUND) {
          throw e;
        }
      }
    }
  }

  private static String manyName(int i) {
    return String.format(Locale.ROOT, "udp-%04d", i);
  }

  Outcome stopAZooKeeperNode() throws Exception {
    return scenario(
        "stop one node of the ZooKeeper ensemble",
        traffic -> {
          InstanceSpec victim = zookeeper.getInstances().iterator().next();
          zookeeper.killServer(victim);
          addBackend(4, BackendState.FILLING);
          zookeeper.restartServer(victim);
          return "ZooKeeper node "
              + victim.getPort()
              + " stopped; proxy-4 added meanwhile; node restarted";
        });
  }

  /**
   * Proxy 1's service dies: only its connections may break, and new connections must succeed again
   * within 3 check intervals (plus the tables' propagation).
   */
  Outcome killAProxysService() throws Exception {
    log.info("scenario: kill a proxy host's service");
    int onProxy1;
    ConnectionLoops.Result result;
    long recoveredMillis;
    try (Traffic.LongLived traffic = settledTraffic()) {
      onProxy1 = traffic.perServer().count("proxy-1");
      long killed = System.nanoTime();
      bed.proxies().get(0).server().close();
      recoveredMillis = -1;
      while (System.nanoTime() - killed < Duration.ofSeconds(10).toNanos()) {
        Traffic.BurstResult burst = Traffic.burst(bed.client().handle(), VIP4, 50, 25);
        if (burst.failures().isEmpty()) {
          recoveredMillis = (System.nanoTime() - killed) / 1_000_000;
          break;
        }
      }
      Thread.sleep(SETTLE.toMillis());
      result = traffic.stop();
    }
    int broken = result.failed().size();
    Outcome outcome =
        new Outcome(
            "kill a proxy host's service",
            connections,
            broken,
            onProxy1,
            result.answered(),
            String.format(
                Locale.ROOT,
                "%d connections were on proxy-1 and only those may break; new connections all"
                    + " succeeded again after %d ms (%.1f check intervals)",
                onProxy1,
                recoveredMillis,
                recoveredMillis / (double) CHECK_INTERVAL_MILLIS));
    log.info("{}", outcome);
    reset();
    return outcome;
  }

  /**
   * The scenarios' traffic: {@link #connections} long-lived connections through the VIP, a request
   * every 100 ms each, running for {@link #SETTLE} before it is returned.
   */
  private Traffic.LongLived settledTraffic() throws IOException, InterruptedException {
    return settledTraffic(Duration.ofSeconds(120));
  }

  private Traffic.LongLived settledTraffic(Duration runtime)
      throws IOException, InterruptedException {
    Traffic.LongLived traffic =
        Traffic.LongLived.start(
            bed.client().handle(), VIP4, connections, Duration.ofMillis(100), runtime);
    try {
      Thread.sleep(SETTLE.toMillis());
    } catch (InterruptedException e) {
      traffic.close();
      throw e;
    }
    return traffic;
  }

  private void addBackend(int proxy, BackendState state) {
    admin.call(
        s ->
            s.addBackend(
                AddBackendRequest.newBuilder()
                    .setService("web")
                    .setAddress(address(proxy))
                    .setState(state)
                    .build()));
  }

  private void setState(int proxy, BackendState state) {
    admin.call(
        s ->
            s.setBackendState(
                SetBackendStateRequest.newBuilder()
                    .setService("web")
                    .setAddress(address(proxy))
                    .setState(state)
                    .build()));
  }

  private void setWeight(int proxy, int weight) {
    admin.call(
        s ->
            s.setBackendWeight(
                SetBackendWeightRequest.newBuilder()
                    .setService("web")
                    .setAddress(address(proxy))
                    .setWeight(weight)
                    .build()));
  }

  private void setBalance(Balance balance) {
    ServiceSpec spec = service().getSpec();
    if (spec.getBalance() != balance) {
      admin.call(
          s ->
              s.updateService(
                  UpdateServiceRequest.newBuilder()
                      .setSpec(spec.toBuilder().setBalance(balance))
                      .build()));
    }
  }

  private String address(int proxy) {
    return bed.proxies().get(proxy - 1).address4().getHostAddress();
  }

  private CoordinatorProcess leader() throws InterruptedException {
    for (int i = 0; i < 100; i++) {
      ClusterStatus status = admin.call(s -> s.getStatus(GetStatusRequest.getDefaultInstance()));
      for (CoordinatorStatus c : status.getCoordinatorsList()) {
        if (c.getLeader()) {
          return coordinators.stream()
              .filter(p -> p.id().equals(c.getId()))
              .findFirst()
              .orElseThrow();
        }
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException("no leader coordinator");
  }

  /**
   * Back to the start: proxies 1-3 active and healthy, every service up, both first directors in
   * ECMP, three live coordinators, all directors at the current version. Drains in progress are
   * waited out (there is no traffic now), then the drained backends removed.
   */
  private void reset() throws Exception {
    for (Proxy p : bed.proxies()) {
      if (!p.server().isOpen()) {
        bed.restartServer(p.id());
      }
    }
    coordinators.removeIf(c -> !c.alive());
    while (coordinators.size() < 3) {
      CoordinatorProcess fresh = coordinator("c" + nextCoordinator++, zookeeper, logs);
      coordinators.add(fresh);
    }
    await(
        "drains to end",
        () ->
            service().getBackendsList().stream()
                .noneMatch(b -> b.getState() == BackendState.DRAINING),
        Duration.ofSeconds(20));
    for (Backend b : service().getBackendsList()) {
      if (!isCore(b.getAddress())) {
        admin.call(
            s ->
                s.removeBackend(
                    RemoveBackendRequest.newBuilder()
                        .setService("web")
                        .setAddress(b.getAddress())
                        .setForce(true)
                        .build()));
      }
    }
    setBalance(Balance.RENDEZVOUS);
    for (int p = 1; p <= 3; p++) {
      int proxy = p;
      Backend backend =
          service().getBackendsList().stream()
              .filter(b -> b.getAddress().equals(address(proxy)))
              .findFirst()
              .orElse(null);
      if (backend == null) {
        addBackend(proxy, BackendState.ACTIVE);
      } else {
        setState(proxy, BackendState.ACTIVE);
        if (backend.getWeight() != 100) {
          setWeight(proxy, 100);
        }
      }
    }
    awaitHealthy();
    // With BGP, the router's route follows the announcements: a healthy service first.
    bed.setEcmp(bed.directors().subList(0, 2));
    awaitConverged();
  }

  private void awaitHealthy() throws InterruptedException {
    await(
        "every backend healthy",
        () -> service().getBackendsList().stream().allMatch(b -> b.getHealth() == Health.HEALTHY),
        Duration.ofSeconds(20));
  }

  private boolean isCore(String address) {
    for (int p = 1; p <= 3; p++) {
      if (address(p).equals(address)) {
        return true;
      }
    }
    return false;
  }

  private Service service() {
    return admin.call(s -> s.getService(GetServiceRequest.newBuilder().setName("web").build()));
  }

  private void awaitConverged() throws InterruptedException {
    await("directors converged", this::directorsConverged, Duration.ofSeconds(30));
  }

  private boolean directorsConverged() {
    ClusterStatus status = admin.call(s -> s.getStatus(GetStatusRequest.getDefaultInstance()));
    return status.getDirectorsCount() == bed.directors().size()
        && status.getDirectorsList().stream()
            .allMatch(d -> d.getAppliedVersion() == status.getVersion());
  }

  private static void awaitCoordinators(FailoverAdmin admin, int count)
      throws InterruptedException {
    await(
        count + " coordinators",
        () -> {
          try {
            return admin
                    .call(s -> s.getStatus(GetStatusRequest.getDefaultInstance()))
                    .getCoordinatorsCount()
                >= count;
          } catch (RuntimeException e) {
            return false;
          }
        },
        Duration.ofSeconds(60));
  }

  private static void await(String what, BooleanSupplier condition, Duration timeout)
      throws InterruptedException {
    Await.until(what, condition, timeout);
  }

  /** The outcomes as the markdown table docs/survival.md shows. */
  public static String table(List<Outcome> outcomes) {
    StringBuilder sb = new StringBuilder();
    sb.append(
        "| scenario | connections | broken | expected to break | requests answered | what happened |\n");
    sb.append("|---|---|---|---|---|---|\n");
    for (Outcome o : outcomes) {
      sb.append(
          String.format(
              Locale.ROOT,
              "| %s | %,d | %d | %d | %,d | %s |%n",
              o.scenario(),
              o.connections(),
              o.broken(),
              o.expectedBroken(),
              o.answered(),
              o.note()));
    }
    return sb.toString();
  }

  public static void main(String[] args) throws Exception {
    int connections = 1000;
    double pace = 1;
    String only = "";
    Path out = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--connections" -> connections = Integer.parseInt(args[++i]);
        case "--pace" -> pace = Double.parseDouble(args[++i]);
        case "--out" -> out = Path.of(args[++i]);
        case "--scenario" -> only = args[++i];
        default -> {
          System.err.println(
              "usage: ./veer survival [--connections N] [--scenario NAME-PART] [--pace F]"
                  + " [--out FILE]");
          System.exit(2);
        }
      }
    }
    BpfSystem.requireUsable();
    String report;
    boolean kept;
    try (SurvivalSuite suite = SurvivalSuite.start(connections, pace)) {
      List<Outcome> outcomes = suite.run(only);
      report = table(outcomes);
      kept = outcomes.stream().allMatch(Outcome::kept);
      if (kept && System.getenv("VEER_KEEP_LOGS") == null) {
        suite.deleteLogs();
      } else {
        System.err.println("the daemons' logs are in " + suite.logs());
      }
    }
    System.out.print(report);
    if (out != null) {
      Files.writeString(out, report);
    }
    if (!kept) {
      System.err.println("survival: connections broke that should not have (see the table)");
    }
    System.exit(kept ? 0 : 1);
  }

  @Override
  public void close() throws Exception {
    try {
      bed.close();
    } finally {
      admin.close();
      for (CoordinatorProcess c : coordinators) {
        c.close();
      }
      zookeeper.close();
    }
  }

  /** Where the daemons' logs are: kept for a look when a scenario went wrong. */
  public Path logs() {
    return logs;
  }

  /** Removes the daemons' logs. */
  public void deleteLogs() throws IOException {
    try (var files = Files.walk(logs)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    }
  }
}
