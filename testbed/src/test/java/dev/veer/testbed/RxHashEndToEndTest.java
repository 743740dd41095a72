package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.net.InetAddresses;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.abi.VeerAbi.RxHashSource;
import dev.veer.coordinator.Coordinator;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.LookupFlowRequest;
import dev.veer.testbed.net.RssNic;
import dev.veer.testbed.wire.Ipv4Header;
import dev.veer.testbed.wire.Packets;
import dev.veer.testbed.wire.RawIpSender;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * RX-hash mode in the test bed: two directors take the flow hash from their NICs (the router's
 * stand-ins hash with Toeplitz and the cluster's key). The coordinators' lookup names, for every
 * flow, the proxy the data plane sent it to; ICMP about a connection reaches the proxy that holds
 * it; and long-lived connections moved from one director to the other by the router keep their
 * rows: none breaks.
 */
class RxHashEndToEndTest {
  private static final Logger log = LoggerFactory.getLogger(RxHashEndToEndTest.class);
  private static final InetSocketAddress VIP4 =
      new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT);

  @TempDir Path dataDir;

  /** Each proxy's count of delivered inner packets that are not TCP (ICMP among them). */
  private static Map<String, Long> notTcpDeliveries(TestBed bed) {
    Map<String, Long> out = new HashMap<>();
    for (TestBed.Proxy p : bed.proxies()) {
      out.put(p.name(), p.dataplane().verdicts().get(ProxyVerdict.PRX_DELIVER_NOT_TCP));
    }
    return out;
  }

  /** ICMP errors the directors steered by the NICs' hash of the quoted tuple. */
  private static long quotedHashes(TestBed bed) {
    return bed.directors().stream()
        .mapToLong(d -> d.dataplane().program().rxHashSources().get(RxHashSource.RXH_QUOTED))
        .sum();
  }

  @Test
  void directorsAndTheLookupAgreeOnEveryFlowsRow() throws Exception {
    try (Coordinator coordinator =
            Coordinator.start(
                Coordinator.Config.local("c1", dataDir)
                    .withCluster(
                        Coordinator.ClusterDefaults.DEFAULT
                            .withChecks(200, 100, 2)
                            .withNicHashKey(RssNic.KEY)));
        TestBed bed =
            TestBed.builder("rxhash")
                .coordinators(List.of("127.0.0.1:" + coordinator.port()))
                .agents()
                .rxHash()
                .build()) {
      ManagedChannel channel =
          Transport.channel("127.0.0.1:" + coordinator.port(), Optional.empty());
      try {
        AdminServiceGrpc.AdminServiceBlockingStub admin = AdminServiceGrpc.newBlockingStub(channel);
        WebService.create(admin, bed, 4);
        assertThat(
                admin
                    .getStatus(dev.veer.proto.admin.v1.GetStatusRequest.getDefaultInstance())
                    .getSettings()
                    .getNicHash())
            .as("the cluster's flow hash is the NICs'")
            .isTrue();
        Map<String, String> proxyOf = new HashMap<>();
        bed.proxies().forEach(p -> proxyOf.put(p.address4().getHostAddress(), p.name()));

        // The lookup (Java's Toeplitz) names the proxy the NIC's hash led the data plane to.
        int agreed = 0;
        for (int port = 42000; port < 42100; port++) {
          String server = Traffic.from(bed.client().handle(), port, VIP4);
          String primary =
              admin
                  .lookupFlow(
                      LookupFlowRequest.newBuilder()
                          .setService("web")
                          .setClientAddress(TestBed.CLIENT4.getHostAddress())
                          .setClientPort(port)
                          .build())
                  .getHops(0);
          assertThat(proxyOf.get(InetAddresses.toAddrString(InetAddresses.forString(primary))))
              .as("the proxy of client port %s", port)
              .isEqualTo(server);
          agreed++;
        }
        log.info("lookup and data plane agreed on {} of 100 flows", agreed);

        // ICMP "fragmentation needed" about a connection reaches the proxy that holds it: the
        // director computes the NICs' Toeplitz over the quoted tuple itself.
        try (ClientConnection held = ClientConnection.bound(bed.client().handle(), 43000)) {
          held.connect(VIP4, Traffic.TIMEOUT_MILLIS);
          String owner = held.exchange("held");
          Map<String, Long> before = notTcpDeliveries(bed);
          long quotedBefore = quotedHashes(bed);
          byte[] quoted =
              java.util.Arrays.copyOf(
                  Packets.ipv4(
                      Ipv4Header.of(TestBed.VIP4, TestBed.CLIENT4, Packets.PROTO_TCP),
                      Packets.tcp(
                          TestBed.VIP4,
                          TestBed.CLIENT4,
                          TestBed.SERVICE_PORT,
                          43000,
                          Packets.TCP_ACK,
                          1,
                          1,
                          new byte[0])),
                  28);
          java.net.Inet4Address pathRouter =
              (java.net.Inet4Address) InetAddresses.forString("198.51.100.3");
          byte[] icmp = Packets.icmp(pathRouter, TestBed.VIP4, 3, 4, 1400, quoted);
          RawIpSender.send(
              bed.client().handle(),
              TestBed.VIP4,
              Packets.ipv4(Ipv4Header.of(pathRouter, TestBed.VIP4, Packets.PROTO_ICMP), icmp));
          Await.until(
              "the ICMP error delivered by a proxy",
              () -> quotedHashes(bed) > quotedBefore,
              Duration.ofSeconds(5));
          Thread.sleep(200);
          Map<String, Long> after = notTcpDeliveries(bed);
          for (String proxy : after.keySet()) {
            assertThat(after.get(proxy) - before.get(proxy))
                .as("ICMP delivered by %s (the connection's is %s)", proxy, owner)
                .isEqualTo(proxy.equals(owner) ? 1 : 0);
          }
        }

        // Both directors choose the same row for a flow: moved from one to the other, none breaks.
        bed.setEcmp(bed.directors().subList(0, 1));
        try (Traffic.LongLived longLived =
            Traffic.LongLived.start(
                bed.client().handle(), VIP4, 300, Duration.ofMillis(200), Duration.ofSeconds(60))) {
          Thread.sleep(Duration.ofSeconds(2));
          bed.setEcmp(bed.directors().subList(1, 2));
          Thread.sleep(Duration.ofSeconds(2));
          long mark = longLived.mark();
          Thread.sleep(Duration.ofSeconds(2));
          ConnectionLoops.Result result = longLived.stop();
          log.info(
              "300 connections moved from director-1 to director-2: {} answers, broken {}",
              result.answered(),
              result.brokenSince(mark));
          assertThat(result.brokenSince(mark)).isEmpty();
        }
        for (TestBed.Director d : bed.directors()) {
          EnumMap<RxHashSource, Long> sources = d.dataplane().program().rxHashSources();
          log.info("{}: flow hashes from {}", d.name(), sources);
          assertThat(sources.get(RxHashSource.RXH_NIC)).isPositive();
          assertThat(sources.get(RxHashSource.RXH_NO_PORTS)).isZero();
          assertThat(sources.get(RxHashSource.RXH_UNAVAILABLE)).isZero();
        }
      } finally {
        channel.shutdownNow();
      }
    }
  }
}
