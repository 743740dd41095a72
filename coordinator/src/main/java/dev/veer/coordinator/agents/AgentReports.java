package dev.veer.coordinator.agents;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.net.InetAddresses;
import com.google.protobuf.ByteString;
import dev.veer.coordinator.admin.Addresses;
import dev.veer.coordinator.retention.FlowReport;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import dev.veer.proto.state.v1.BackendRecord;
import dev.veer.proto.state.v1.ServiceState;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The proxy agents' latest reports, indexed once by backend address and service, so that asking
 * about every backend of every service costs one pass over the reports rather than one per backend:
 * at 1,000 services a cluster status used to scan every agent's every service once per backend.
 *
 * <p>An address is served by the first agent, in member id order, that lists it.
 */
public final class AgentReports {
  /** No agent reports on this backend and service. */
  public static final long UNKNOWN = -1;

  private record Agent(AgentStatus status, ImmutableMap<String, AgentServiceStatus> services) {}

  private final ImmutableList<AgentStatus> all;
  private final ImmutableMap<ByteString, Agent> byAddress;

  private AgentReports(List<AgentStatus> all, Map<ByteString, Agent> byAddress) {
    this.all = ImmutableList.copyOf(all);
    this.byAddress = ImmutableMap.copyOf(byAddress);
  }

  public static AgentReports of(List<AgentStatus> agents) {
    Map<ByteString, Agent> byAddress = new HashMap<>();
    for (AgentStatus status : agents) {
      Map<String, AgentServiceStatus> services = new HashMap<>();
      for (AgentServiceStatus s : status.getServicesList()) {
        services.putIfAbsent(s.getService(), s);
      }
      Agent agent = new Agent(status, ImmutableMap.copyOf(services));
      for (String literal : status.getAddressesList()) {
        if (InetAddresses.isInetAddress(literal)) {
          byAddress.putIfAbsent(Addresses.bytes(InetAddresses.forString(literal)), agent);
        }
      }
    }
    return new AgentReports(agents, byAddress);
  }

  /** Every report, in member id order. */
  public ImmutableList<AgentStatus> all() {
    return all;
  }

  /** The report of the agent serving {@code address}, if one does. */
  public Optional<AgentStatus> serving(ByteString address) {
    Agent agent = byAddress.get(address);
    return agent == null ? Optional.empty() : Optional.of(agent.status());
  }

  /** The live connections the agent serving {@code address} reports for {@code service}. */
  public long liveConnections(String service, ByteString address) {
    AgentServiceStatus status = status(service, address);
    return status == null ? UNKNOWN : status.getLiveConnections();
  }

  /**
   * The connections the agent serving {@code address} reports {@code service} is behind on, or
   * {@link #UNKNOWN}.
   */
  public long waiting(String service, ByteString address) {
    AgentServiceStatus status = status(service, address);
    return status == null ? UNKNOWN : status.getWaiting();
  }

  /** As {@link #liveConnections(String, ByteString)}, for an address literal. */
  public long liveConnections(String service, String address) {
    return InetAddresses.isInetAddress(address)
        ? liveConnections(service, Addresses.bytes(InetAddresses.forString(address)))
        : UNKNOWN;
  }

  /**
   * The latest flow report of each backend of {@code service} whose proxy reports on it, for tables
   * of 2^{@code rowBits} rows, by backend address. Reports for another table size (the cluster's
   * row count just changed) or that cannot be read are left out: those backends count as
   * unreported.
   */
  public ImmutableMap<ByteString, FlowReport> flows(ServiceState service, int rowBits) {
    Map<ByteString, FlowReport> out = new HashMap<>();
    Map<AgentServiceStatus, Optional<FlowReport>> decoded = new IdentityHashMap<>();
    for (BackendRecord backend : service.getBackendsList()) {
      AgentServiceStatus status = status(service.getName(), backend.getAddress());
      if (status == null || !status.hasRows()) {
        continue;
      }
      decoded
          .computeIfAbsent(status, s -> FlowReport.decode(s, rowBits))
          .ifPresent(report -> out.put(backend.getAddress(), report));
    }
    return ImmutableMap.copyOf(out);
  }

  private AgentServiceStatus status(String service, ByteString address) {
    Agent agent = byAddress.get(address);
    return agent == null ? null : agent.services().get(service);
  }
}
