package dev.veer.testbed.packet;

import static dev.veer.testbed.lab.PacketLab.CLIENT4;
import static dev.veer.testbed.lab.PacketLab.PEERS4;
import static dev.veer.testbed.lab.PacketLab.SELF4;
import static dev.veer.testbed.lab.PacketLab.VIP4;
import static dev.veer.testbed.packet.Frames.XDP_PASS;
import static dev.veer.testbed.packet.Frames.syn;
import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.proxy.dataplane.ProxyDataplane;
import dev.veer.testbed.lab.PacketLab;
import java.net.Inet4Address;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A proxy agent that crashes leaves its program attached; the next one replaces it in one step. The
 * new program must not drop everything until a coordinator answers: it takes over the allow-list
 * and the served table its predecessor pinned.
 */
class ProxyRestartTest {
  static final Inet4Address ME4 = PEERS4.get(2);

  @Test
  void aRestartedAgentsProgramStartsWithItsPredecessorsAllowListAndServedTable() throws Exception {
    try (PacketLab lab = PacketLab.create("prx-restart")) {
      Path pins = lab.namespace().pinDirectory();
      ProxyDataplane crashed = attach(lab, pins);
      ProxyDataplane next = null;
      try {
        crashed.setPeers(Set.of(SELF4));
        crashed.setServed(Set.of(ServiceKey.tcp(VIP4, 80)));
        // The first agent dies without closing anything; the next one has heard nothing yet.
        next = attach(lab, pins);
        byte[] frame =
            ProxyPacketTest.fromDirector(SELF4, ME4, 0, List.of(), syn(CLIENT4, 40000, VIP4, 80));
        assertThat(lab.run(next.program().program(), frame).retval()).isEqualTo(XDP_PASS);
        assertThat(next.verdicts().get(ProxyVerdict.PRX_DELIVER_SYN)).isEqualTo(1);
      } finally {
        if (next != null) {
          next.close();
        }
        crashed.close();
      }
      // Closing (SIGTERM) takes the proxy out of service: nothing is left for a later agent.
      assertThat(pins).doesNotExist();
    }
  }

  static ProxyDataplane attach(PacketLab lab, Path pins) {
    return ProxyDataplane.attach(
        lab.handle(),
        PacketLab.IFNAME,
        XdpMode.NATIVE,
        VeerAbi.GUE_PORT_DEFAULT,
        List.of(ME4),
        Optional.of(pins),
        VeerAbi.FLOWS_DEFAULT);
  }
}
