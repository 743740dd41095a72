package dev.veer.coordinator.agents;

import com.google.common.net.InetAddresses;
import dev.veer.proto.admin.v1.AgentServiceStatus;
import dev.veer.proto.admin.v1.AgentStatus;
import java.net.InetAddress;
import java.util.List;

/** A backend's live connections as its proxy agent last reported them. */
public final class LiveConnections {
  /** No agent reports on this backend and service. */
  public static final long UNKNOWN = -1;

  private LiveConnections() {}

  /**
   * The count the agent serving {@code address} reports for {@code service}, or {@link #UNKNOWN}.
   */
  public static long of(List<AgentStatus> agents, String service, String address) {
    InetAddress wanted = InetAddresses.forString(address);
    for (AgentStatus agent : agents) {
      boolean serves =
          agent.getAddressesList().stream().map(InetAddresses::forString).anyMatch(wanted::equals);
      if (serves) {
        return agent.getServicesList().stream()
            .filter(s -> s.getService().equals(service))
            .mapToLong(AgentServiceStatus::getLiveConnections)
            .findFirst()
            .orElse(UNKNOWN);
      }
    }
    return UNKNOWN;
  }
}
