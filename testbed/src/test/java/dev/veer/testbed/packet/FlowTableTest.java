package dev.veer.testbed.packet;

import static dev.veer.testbed.lab.PacketLab.PEERS4;
import static dev.veer.testbed.lab.PacketLab.SELF4;
import static dev.veer.testbed.lab.PacketLab.VIP4;
import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.BpfSystem;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.Await;
import dev.veer.testbed.lab.PacketLab;
import dev.veer.testbed.wire.Packets;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * When the proxy's flow table may answer "not ours" by itself: only while it holds every connection
 * of the namespace. Sockets older than the table keep it from that until they end, unless they are
 * on endpoints no tunnelled packet is for.
 */
class FlowTableTest {
  static final Path CGROUP =
      BpfSystem.cgroupV2Root().orElseThrow(() -> new IllegalStateException("no cgroup v2"));

  static ProxyDataplane proxy(PacketLab lab) {
    return proxy(lab, VeerAbi.FLOWS_DEFAULT);
  }

  static ProxyDataplane proxy(PacketLab lab, int entries) {
    ProxyDataplane proxy =
        ProxyDataplane.detached(
            VeerAbi.GUE_PORT_DEFAULT,
            List.of(PEERS4.get(2)),
            Optional.of(new ProxyDataplane.FlowTracking(CGROUP, lab.handle(), entries)));
    proxy.setServed(Set.of(ServiceKey.tcp(VIP4, 8000)));
    proxy.setPeers(Set.of(SELF4, PEERS4.get(0), PEERS4.get(1), PEERS4.get(2)));
    return proxy;
  }

  static ProxyVerdict verdict(PacketLab lab, ProxyDataplane proxy, int clientPort) {
    byte[] inner = Frames.ack(SELF4, clientPort, VIP4, 8000, "data");
    EnumMap<ProxyVerdict, Long> before = proxy.verdicts();
    lab.run(
        proxy.program().program(),
        ProxyPacketTest.fromDirector(SELF4, PEERS4.get(2), 0, List.of(PEERS4.get(0)), inner));
    EnumMap<ProxyVerdict, Long> after = proxy.verdicts();
    return before.keySet().stream()
        .filter(v -> !after.get(v).equals(before.get(v)))
        .findFirst()
        .orElseThrow();
  }

  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    Await.until(what, condition, java.time.Duration.ofSeconds(5));
  }

  @Test
  void aTableOlderThanEverySocketIsCompleteAndItsMissesAreForwarded() throws Exception {
    try (PacketLab lab = PacketLab.create("flows-new");
        ProxyDataplane proxy = proxy(lab);
        ServerSocketChannel listener =
            lab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(8000)));
        SocketChannel client =
            lab.call(() -> SocketChannel.open().bind(new InetSocketAddress(SELF4, 0)))) {
      assertThat(proxy.flowTableComplete()).isTrue();
      client.connect(new InetSocketAddress(VIP4, 8000));
      try (SocketChannel accepted = listener.accept()) {
        int port = ((InetSocketAddress) client.getLocalAddress()).getPort();
        assertThat(verdict(lab, proxy, port)).isEqualTo(ProxyVerdict.PRX_DELIVER_FLOW);
        assertThat(verdict(lab, proxy, port + 1))
            .as("a flow of no socket")
            .isEqualTo(ProxyVerdict.PRX_FORWARD);
      }
    }
  }

  /**
   * A client's new connection can reuse the tuple of one whose server side is in TIME_WAIT here
   * (the server closed first). Its SYN draws a challenge ACK, the client answers with a reset, and
   * that reset must reach the TIME_WAIT socket, which is not in the table: a complete table does
   * not decide for resets. Without this the client's SYNs time out.
   */
  @Test
  void aResetReachesATimeWaitSocketEvenWhenTheTableIsComplete() throws Exception {
    try (PacketLab lab = PacketLab.create("flows-tw");
        ProxyDataplane proxy = proxy(lab);
        ServerSocketChannel listener =
            lab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(8000)))) {
      assertThat(proxy.flowTableComplete()).isTrue();
      int flowsBefore = proxy.flowCount();
      SocketChannel client =
          lab.call(() -> SocketChannel.open().bind(new InetSocketAddress(SELF4, 0)));
      client.connect(new InetSocketAddress(VIP4, 8000));
      int port = ((InetSocketAddress) client.getLocalAddress()).getPort();
      listener.accept().close(); // the server closes first: its side ends in TIME_WAIT
      client.close();
      await("the connection to leave the flow table", () -> proxy.flowCount() == flowsBefore);
      assertThat(proxy.flowTableComplete()).isTrue();

      byte[] reset = Frames.tcpPacket(SELF4, port, VIP4, 8000, Packets.TCP_RST, new byte[0]);
      EnumMap<ProxyVerdict, Long> before = proxy.verdicts();
      lab.run(
          proxy.program().program(),
          ProxyPacketTest.fromDirector(SELF4, PEERS4.get(2), 0, List.of(PEERS4.get(0)), reset));
      assertThat(proxy.verdicts().get(ProxyVerdict.PRX_DELIVER_SOCKET))
          .as("the reset delivered to the TIME_WAIT socket")
          .isEqualTo(before.get(ProxyVerdict.PRX_DELIVER_SOCKET) + 1);
      // Anything else of that tuple is still nobody's here.
      assertThat(verdict(lab, proxy, port)).isEqualTo(ProxyVerdict.PRX_FORWARD);
    }
  }

  @Test
  void aFullTableStopsAnsweringForMissesAndTheKernelFindsWhatDidNotFit() throws Exception {
    try (PacketLab lab = PacketLab.create("flows-full");
        ProxyDataplane proxy = proxy(lab, 2);
        ServerSocketChannel listener =
            lab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(8000)))) {
      assertThat(proxy.flowTableComplete()).isTrue();
      List<SocketChannel> open = new java.util.ArrayList<>();
      try {
        for (int i = 0; i < 3; i++) {
          SocketChannel client =
              lab.call(() -> SocketChannel.open().bind(new InetSocketAddress(SELF4, 0)));
          open.add(client);
          client.connect(new InetSocketAddress(VIP4, 8000));
          open.add(listener.accept());
        }
        // Three connections in a table of two: an insert failed, so a miss proves nothing now.
        assertThat(proxy.flowTableComplete()).isFalse();
        int third = ((InetSocketAddress) open.get(4).getLocalAddress()).getPort();
        assertThat(verdict(lab, proxy, third))
            .isIn(ProxyVerdict.PRX_DELIVER_FLOW, ProxyVerdict.PRX_DELIVER_SOCKET);
        assertThat(
                List.of(0, 2, 4).stream()
                    .map(
                        i -> {
                          try {
                            return verdict(
                                lab,
                                proxy,
                                ((InetSocketAddress) open.get(i).getLocalAddress()).getPort());
                          } catch (java.io.IOException e) {
                            throw new java.io.UncheckedIOException(e);
                          }
                        }))
            .contains(ProxyVerdict.PRX_DELIVER_SOCKET)
            .doesNotContain(ProxyVerdict.PRX_FORWARD);
      } finally {
        for (SocketChannel c : open) {
          c.close();
        }
      }
    }
  }

  @Test
  void socketsOlderThanTheTableKeepMissesOnTheSocketLookupUntilTheyEnd() throws Exception {
    try (PacketLab lab = PacketLab.create("flows-old")) {
      ServerSocketChannel listener =
          lab.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(8000)));
      SocketChannel older =
          lab.call(() -> SocketChannel.open().bind(new InetSocketAddress(SELF4, 0)));
      older.connect(new InetSocketAddress(VIP4, 8000));
      SocketChannel olderAccepted = listener.accept();
      try (ProxyDataplane proxy = proxy(lab)) {
        assertThat(proxy.flowTableComplete()).isFalse();
        int port = ((InetSocketAddress) older.getLocalAddress()).getPort();
        assertThat(verdict(lab, proxy, port))
            .as("found by the kernel")
            .isEqualTo(ProxyVerdict.PRX_DELIVER_SOCKET);

        // Older sockets on endpoints no tunnelled packet is for do not count.
        proxy.serveEndpoints(Set.of(new InetSocketAddress(VIP4, 9000)));
        await("complete once only other endpoints have older sockets", proxy::flowTableComplete);
        proxy.serveEndpoints(Set.of(new InetSocketAddress(VIP4, 8000)));
        proxy.distrustFlowTable(java.time.Duration.ZERO);
        Thread.sleep(1500);
        assertThat(proxy.flowTableComplete()).as("the served endpoint has older sockets").isFalse();

        // Once they have ended (the listener too: it could not tell of its SYN cookies).
        olderAccepted.close();
        older.close();
        listener.close();
        await("complete once the older sockets are gone", proxy::flowTableComplete);
      }
    }
  }
}
