package dev.veer.director.routes;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.time.Duration;
import java.util.List;

/**
 * The BIRD 2 configuration of a director host's BGP speaker, rendered from the director's own
 * settings so that nobody edits the speaker's files: it learns the host routes the director daemon
 * puts into the announcement table ({@link RouteAnnouncer}) and announces them, with this host as
 * next hop, to every peer (an IPv4 peer carries the IPv4 VIPs, an IPv6 peer the IPv6 VIPs), with
 * BFD on every session. It imports nothing.
 */
public record SpeakerConfig(
    Inet4Address routerId,
    long localAs,
    ImmutableList<InetAddress> peers,
    long peerAs,
    int announceTable,
    Duration bfdInterval,
    int bfdMultiplier) {

  /** BFD off: a dead director is then noticed only when the session's hold time runs out. */
  public static final Duration NO_BFD = Duration.ZERO;

  public SpeakerConfig {
    checkArgument(isAs(localAs), "the local AS must be 1..4294967294, not %s", localAs);
    checkArgument(isAs(peerAs), "the peer AS must be 1..4294967294, not %s", peerAs);
    checkArgument(!peers.isEmpty(), "the speaker needs at least one peer (--bgp-peers)");
    checkArgument(
        announceTable >= 1 && announceTable < 253,
        "the announcement table is a kernel routing table 1..252, not %s",
        announceTable);
    checkArgument(
        bfdInterval.isZero() || (bfdInterval.toMillis() >= 10 && bfdInterval.toMillis() <= 10_000),
        "the BFD interval is 10..10000 ms (0: no BFD), not %s ms",
        bfdInterval.toMillis());
    checkArgument(
        bfdMultiplier >= 1 && bfdMultiplier <= 255,
        "the BFD multiplier is 1..255, not %s",
        bfdMultiplier);
  }

  private static boolean isAs(long as) {
    return as >= 1 && as <= 4_294_967_294L;
  }

  /** The protocol name of the session with the {@code index}-th peer (from 1): what birdc shows. */
  public static String sessionName(int index) {
    return "uplink" + (index == 1 ? "" : Integer.toString(index));
  }

  /** The configuration file's text. */
  public String bird() {
    boolean bfd = !bfdInterval.isZero();
    StringBuilder out =
        new StringBuilder()
            .append("# Written by Veer from the director's settings; edit those, not this file.\n")
            .append("log stderr all;\n")
            .append("router id ")
            .append(routerId.getHostAddress())
            .append(";\n")
            .append("ipv4 table veer4;\n")
            .append("ipv6 table veer6;\n")
            .append("protocol device { }\n");
    if (bfd) {
      out.append("protocol bfd { interface \"*\" { min rx interval ")
          .append(bfdInterval.toMillis())
          .append(" ms; min tx interval ")
          .append(bfdInterval.toMillis())
          .append(" ms; multiplier ")
          .append(bfdMultiplier)
          .append("; }; }\n");
    }
    // learn: take the routes another program (the director daemon) put into the kernel table.
    for (String family : List.of("4", "6")) {
      out.append("protocol kernel announced")
          .append(family)
          .append(" { ipv")
          .append(family)
          .append(" { table veer")
          .append(family)
          .append("; import all; export none; }; kernel table ")
          .append(announceTable)
          .append("; learn; }\n");
    }
    for (int i = 0; i < peers.size(); i++) {
      InetAddress peer = peers.get(i);
      String family = peer instanceof Inet6Address ? "6" : "4";
      out.append("protocol bgp ")
          .append(sessionName(i + 1))
          .append(" { local as ")
          .append(localAs)
          .append("; neighbor ")
          .append(peer.getHostAddress())
          .append(" as ")
          .append(peerAs)
          .append(";")
          .append(bfd ? " bfd on;" : "")
          // A session that failed (BFD, a link flap) comes back within seconds, not BIRD's
          // default minute.
          .append(" hold time 3; connect retry time 1; error wait time 1, 5; ipv")
          .append(family)
          .append(" { table veer")
          .append(family)
          .append("; import none; export all; next hop self; }; }\n");
    }
    return out.toString();
  }
}
