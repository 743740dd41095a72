package dev.veer.ctl;

import dev.veer.proto.admin.v1.ClusterStatus;
import dev.veer.proto.admin.v1.CoordinatorStatus;
import dev.veer.proto.admin.v1.DirectorStatus;
import dev.veer.proto.admin.v1.GetStatusRequest;
import java.io.PrintWriter;
import java.time.Instant;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;

@Command(
    name = "status",
    description =
        "Coordinators, directors and the versions they run, proxy agents and what"
            + " they report.")
final class StatusCommand implements Runnable {
  @ParentCommand VeerCtl ctl;

  @Override
  public void run() {
    try (AdminClient client = ctl.client()) {
      ClusterStatus status = client.call(s -> s.getStatus(GetStatusRequest.getDefaultInstance()));
      ctl.print(
          status,
          () -> {
            PrintWriter out = ctl.out();
            out.printf(
                "state version %d; tables of 2^%d rows; GUE port %d; settle %d s; flow hash %s%n",
                status.getVersion(),
                status.getSettings().getRowBits(),
                status.getSettings().getGuePort(),
                status.getSettings().getSettleSeconds(),
                status.getSettings().getNicHash() ? "the NICs' RX hash (Toeplitz)" : "keyed");
            out.printf("%n%-20s %-28s %s%n", "COORDINATOR", "ADDRESS", "ROLE");
            for (CoordinatorStatus c : status.getCoordinatorsList()) {
              out.printf(
                  "%-20s %-28s %s%n",
                  c.getId(), c.getAddress(), c.getLeader() ? "leader" : "follower");
            }
            long converged =
                status.getDirectorsList().stream()
                    .filter(d -> d.getAppliedVersion() == status.getVersion())
                    .count();
            out.printf(
                "%n%-20s %-11s %-20s %-20s %-8s %s%n",
                "DIRECTOR", "MODE", "ADDRESS", "COORDINATOR", "VERSION", "SINCE");
            for (DirectorStatus d : status.getDirectorsList()) {
              out.printf(
                  "%-20s %-11s %-20s %-20s %-8d %s%s%n",
                  d.getId(),
                  d.getCoLocated() ? "co-located" : "director",
                  d.getAddress(),
                  d.getCoordinator(),
                  d.getAppliedVersion(),
                  Instant.ofEpochMilli(d.getAppliedAtMillis()),
                  d.getError().isEmpty() ? "" : "  ERROR: " + d.getError());
            }
            out.printf(
                "%n%d of %d directors run version %d%n",
                converged, status.getDirectorsCount(), status.getVersion());
            if (status.getDirectorsList().stream().anyMatch(DirectorStatus::getAnnouncing)) {
              out.printf("%n%-20s %-24s %-28s %s%n", "DIRECTOR", "ANNOUNCES", "BGP", "LAST CHANGE");
              for (DirectorStatus d : status.getDirectorsList()) {
                out.printf(
                    "%-20s %-24s %-28s %s%n",
                    d.getId(),
                    !d.getAnnouncing()
                        ? "(no route injection)"
                        : d.getAnnouncedCount() == 0
                            ? "nothing"
                            : String.join(",", d.getAnnouncedList()),
                    sessions(d),
                    d.getAnnouncementChange());
              }
            }
            if (status.getRetentionCount() > 0) {
              out.printf(
                  "%n%-20s %-12s %-14s %-16s %s%n",
                  "SERVICE",
                  "GENERATIONS",
                  "EVIDENCE ROWS",
                  "ROWS OUT OF HOPS",
                  "FLOWS OUT OF HOPS");
              for (var r : status.getRetentionList()) {
                out.printf(
                    "%-20s %-12d %-14d %-16d %d%s%n",
                    r.getService(),
                    r.getRetainedGenerations(),
                    r.getEvidenceRows(),
                    r.getRowsOutOfHops(),
                    r.getFlowsOutOfHops(),
                    r.getFlowsOutOfHops() > 0 ? "  <- these flows break" : "");
              }
            }
            if (status.getAgentsCount() > 0) {
              out.printf(
                  "%n%-20s %-11s %-20s %-12s %-10s %-8s %s%n",
                  "PROXY AGENT", "MODE", "COORDINATOR", "SERVICE", "HEALTH", "LIVE", "DETAIL");
              for (var agent : status.getAgentsList()) {
                for (var service : agent.getServicesList()) {
                  out.printf(
                      "%-20s %-11s %-20s %-12s %-10s %-8d %s%n",
                      agent.getId(),
                      agent.getCoLocated() ? "co-located" : "proxy",
                      agent.getCoordinator(),
                      service.getService(),
                      service
                          .getHealth()
                          .name()
                          .toLowerCase(java.util.Locale.ROOT)
                          .replace("health_", ""),
                      service.getLiveConnections(),
                      service.getDetail());
                }
              }
            }
          });
    }
  }

  /** A director's BGP sessions in a few words: "2/2 established", or what is wrong. */
  private static String sessions(DirectorStatus d) {
    if (!d.getSpeakerRead()) {
      return "(speaker not read)";
    }
    if (!d.getSpeakerProblem().isEmpty()) {
      return "SPEAKER UNREACHABLE";
    }
    long up = d.getBgpSessionsList().stream().filter(s -> s.getEstablished()).count();
    StringBuilder out = new StringBuilder(up + "/" + d.getBgpSessionsCount() + " established");
    d.getBgpSessionsList().stream()
        .filter(s -> !s.getEstablished())
        .forEach(s -> out.append(", ").append(s.getName()).append(": ").append(s.getInfo()));
    return out.toString();
  }
}
