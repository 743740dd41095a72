package dev.veer.coordinator.agents;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ServiceState;
import java.util.List;
import org.junit.jupiter.api.Test;

class AgentReportsTest {
  private static ByteString address(String literal) {
    return Addresses.bytes(InetAddresses.forString(literal));
  }

  private static AgentStatus agent(String id, List<String> addresses, AgentServiceStatus... s) {
    return AgentStatus.newBuilder()
        .setId(id)
        .addAllAddresses(addresses)
        .addAllServices(List.of(s))
        .build();
  }

  private static AgentServiceStatus service(String name, long live) {
    return AgentServiceStatus.newBuilder().setService(name).setLiveConnections(live).build();
  }

  @Test
  void liveConnectionsAreFoundByAddressWhateverItsSpelling() {
    AgentReports reports =
        AgentReports.of(
            List.of(
                agent("a", List.of("198.51.100.1", "2001:db8::1"), service("web", 7)),
                agent("b", List.of("198.51.100.2"), service("web", 0), service("dns", 3))));

    assertThat(reports.liveConnections("web", "2001:0db8:0:0::1")).isEqualTo(7);
    assertThat(reports.liveConnections("web", address("198.51.100.1"))).isEqualTo(7);
    assertThat(reports.liveConnections("web", "198.51.100.2")).isZero();
    assertThat(reports.liveConnections("dns", "198.51.100.2")).isEqualTo(3);
    // An agent that does not report the service, an address no agent serves, not an address.
    assertThat(reports.liveConnections("dns", "198.51.100.1")).isEqualTo(AgentReports.UNKNOWN);
    assertThat(reports.liveConnections("web", "198.51.100.9")).isEqualTo(AgentReports.UNKNOWN);
    assertThat(reports.liveConnections("web", "proxy-1")).isEqualTo(AgentReports.UNKNOWN);
    assertThat(reports.serving(address("198.51.100.2")).orElseThrow().getId()).isEqualTo("b");
    assertThat(reports.serving(address("198.51.100.3"))).isEmpty();
  }

  @Test
  void anAddressTwoAgentsClaimBelongsToTheFirstInIdOrder() {
    AgentReports reports =
        AgentReports.of(
            List.of(
                agent("a", List.of("198.51.100.1"), service("web", 1)),
                agent("b", List.of("198.51.100.1"), service("web", 2))));

    assertThat(reports.liveConnections("web", "198.51.100.1")).isEqualTo(1);
  }

  @Test
  void flowReportsOfTheServicesBackendsOnlyAndOfTheClustersTableSize() {
    AgentServiceStatus web =
        service("web", 2).toBuilder()
            .setRows(FlowRowsCodec.encode(16, new int[] {5, 9}, new int[] {1, 1}))
            .setDataPlaneVersion(4)
            .build();
    AgentServiceStatus otherSize =
        service("web", 1).toBuilder()
            .setRows(FlowRowsCodec.encode(12, new int[] {3}, new int[] {1}))
            .build();
    AgentReports reports =
        AgentReports.of(
            List.of(
                agent("a", List.of("198.51.100.1", "198.51.100.4"), web),
                agent("b", List.of("198.51.100.2"), otherSize),
                agent("c", List.of("198.51.100.3"), service("web", 0))));
    ServiceState state =
        ServiceState.newBuilder()
            .setName("web")
            .addBackends(BackendRecord.newBuilder().setAddress(address("198.51.100.1")))
            .addBackends(BackendRecord.newBuilder().setAddress(address("198.51.100.2")))
            .addBackends(BackendRecord.newBuilder().setAddress(address("198.51.100.3")))
            .build();

    var flows = reports.flows(state, 16);

    // 198.51.100.4 is served by the same agent but is no backend; .2 reports another table size;
    // .3 reports no rows.
    assertThat(flows).containsOnlyKeys(address("198.51.100.1"));
    assertThat(flows.get(address("198.51.100.1")).rows()).containsExactly(5, 9);
    assertThat(flows.get(address("198.51.100.1")).dataPlaneVersion()).isEqualTo(4);
  }
}
