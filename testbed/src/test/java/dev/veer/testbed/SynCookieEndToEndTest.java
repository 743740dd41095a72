package dev.veer.testbed;

import static org.assertj.core.api.Assertions.assertThat;

import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.ServiceKey;
import dev.veer.coordinator.table.BackendState;
import dev.veer.testbed.TestBed.Proxy;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Proxies without a flow table: the kernel checks the SYN cookie of every handshake's last packet
 * (with a table, the listener tells the table of its cookies: see EndToEndTest).
 */
class SynCookieEndToEndTest {
  @Test
  void withoutAFlowTableTheKernelRecognisesItsSynCookies() throws Exception {
    try (TestBed bed =
        TestBed.builder("cookie").directors(1).proxies(2).withoutFlowTables().build()) {
      Map<InetAddress, BackendState> backends = new LinkedHashMap<>();
      bed.proxies().forEach(p -> backends.put(p.address4(), BackendState.ACTIVE));
      bed.installTables(ServiceKey.tcp(TestBed.VIP4, TestBed.SERVICE_PORT), Tables.build(backends));
      for (Proxy p : bed.proxies()) {
        p.ns().sysctl("net.ipv4.tcp_syncookies", "2");
        assertThat(p.dataplane().flowTableComplete()).isFalse();
      }
      Traffic.BurstResult result =
          Traffic.burst(
              bed.client().handle(),
              new InetSocketAddress(TestBed.VIP4, TestBed.SERVICE_PORT),
              60,
              10);
      assertThat(result.failures()).isEmpty();
      long cookies =
          bed.proxies().stream()
              .mapToLong(p -> p.dataplane().verdicts().get(ProxyVerdict.PRX_DELIVER_SYNCOOKIE))
              .sum();
      assertThat(cookies).isGreaterThanOrEqualTo(60);
    }
  }
}
