package dev.veer.proxy.evidence;

import dev.veer.bpf.dataplane.FlowHash;
import dev.veer.bpf.dataplane.ServiceOptions;
import dev.veer.proto.FlowRowsCodec;
import dev.veer.proto.proxy.v1.AgentUpdate;
import dev.veer.proto.proxy.v1.LoadReport;
import dev.veer.proto.proxy.v1.ServiceLoad;
import dev.veer.proto.proxy.v1.ServiceTarget;
import dev.veer.proto.types.v1.HashFields;
import dev.veer.proxy.dataplane.SocketTable;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.TreeMap;

/**
 * The evidence a proxy gives the coordinators: per service, its live connections and the table rows
 * they hash to, computed exactly as the directors map a flow to a row (the keyed flow hash over the
 * client's address and, as the service says, port). A connection counts while packets of it can
 * still arrive: every TCP state but listening, TIME_WAIT and closed; connections from the host
 * itself (its health checks) do not count.
 */
public final class ServiceFlows {
  private static final int LISTEN = 0x0A;

  private ServiceFlows() {}

  /**
   * The load report for {@code update}'s services from {@code sockets}, stamped with {@code
   * dataPlaneVersion}: the version the agent had seen before it read the sockets. Without the flow
   * hash key (a coordinator that does not send it), only the counts.
   */
  public static LoadReport report(
      List<SocketTable.Entry> sockets, AgentUpdate update, long dataPlaneVersion) {
    FlowHash hash =
        update.getFlowHashKey().size() == 16
            ? FlowHash.of(
                update.getFlowHashKey().toByteArray(), update.getNicHashKey().toByteArray())
            : null;
    int rowBits = update.getRowBits();
    LoadReport.Builder out = LoadReport.newBuilder().setDataPlaneVersion(dataPlaneVersion);
    for (ServiceTarget target : update.getServicesList()) {
      InetAddress vip = vip(target);
      ServiceOptions.HashFields fields =
          target.getHashFields() == HashFields.SOURCE_ADDRESS
              ? ServiceOptions.HashFields.SOURCE_IP
              : ServiceOptions.HashFields.SOURCE_IP_AND_PORT;
      TreeMap<Integer, Integer> rows = new TreeMap<>();
      long connections = 0;
      long waiting = 0;
      for (SocketTable.Entry s : sockets) {
        if (s.localPort() == target.getPort()
            && (s.local().equals(vip) || s.local().isAnyLocalAddress())
            && (s.state() == SocketTable.LISTEN
                ? s.receiveQueue() > 0
                : carriesPackets(s.state()) && s.receiveQueue() > 0)) {
          // Not yet accepted, or a request not yet read: the service is behind.
          waiting += s.state() == SocketTable.LISTEN ? s.receiveQueue() : 1;
        }
        if (!carriesPackets(s.state())
            || s.localPort() != target.getPort()
            || !s.local().equals(vip)
            || fromThisHost(s.remote(), vip)) {
          continue;
        }
        connections++;
        if (hash != null && rowBits > 0) {
          int row =
              FlowHash.row(
                  hash.hash(s.remote(), s.remotePort(), vip, target.getPort(), fields), rowBits);
          rows.merge(row, 1, Integer::sum);
        }
      }
      ServiceLoad.Builder load =
          ServiceLoad.newBuilder()
              .setService(target.getName())
              .setLiveConnections(connections)
              .setWaiting(waiting);
      if (hash != null && rowBits > 0) {
        load.setRows(
            FlowRowsCodec.encode(
                rowBits,
                rows.keySet().stream().mapToInt(Integer::intValue).toArray(),
                rows.values().stream().mapToInt(Integer::intValue).toArray()));
      }
      out.addServices(load);
    }
    return out.build();
  }

  /**
   * The agent's own health check (a connection from the VIP to itself) and other local clients:
   * their packets never cross a director.
   */
  private static boolean fromThisHost(InetAddress remote, InetAddress vip) {
    return remote.equals(vip) || remote.isLoopbackAddress() || remote.isAnyLocalAddress();
  }

  private static boolean carriesPackets(int state) {
    return state != LISTEN && state != SocketTable.TIME_WAIT && state != SocketTable.CLOSE;
  }

  private static InetAddress vip(ServiceTarget target) {
    try {
      return InetAddress.getByAddress(target.getVip().toByteArray());
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("not an address: " + target.getVip(), e);
    }
  }
}
