package dev.veer.proxy.dataplane;

import dev.veer.bpf.NetworkNamespace;
import dev.veer.bpf.XdpAttachment;
import dev.veer.bpf.XdpMode;
import dev.veer.bpf.abi.VeerAbi.ProxyVerdict;
import dev.veer.bpf.dataplane.NeighbourKeeper;
import dev.veer.bpf.dataplane.ProxyProgram;
import java.net.InetAddress;
import java.util.EnumMap;
import java.util.Optional;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A proxy's data plane: the GUE decapsulation / second-chance program,
 * optionally attached to an interface, and its allow-list of directors and
 * proxies.
 */
public final class ProxyDataplane implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ProxyDataplane.class);

  private final ProxyProgram program;
  private final Optional<XdpAttachment> attachment;
  private final Optional<NeighbourKeeper> neighbours;

  private ProxyDataplane(ProxyProgram program, Optional<XdpAttachment> attachment,
      Optional<NeighbourKeeper> neighbours) {
    this.program = program;
    this.attachment = attachment;
    this.neighbours = neighbours;
  }

  /** Loads and configures the proxy program without attaching it (for BPF_PROG_TEST_RUN). */
  public static ProxyDataplane detached(int guePort) {
    return create(guePort, Optional.empty(), null, null);
  }

  /** Loads, configures and attaches the proxy program to an interface in a namespace. */
  public static ProxyDataplane attach(NetworkNamespace ns, String ifname, XdpMode mode, int guePort) {
    return create(guePort, Optional.of(ns), ifname, mode);
  }

  private static ProxyDataplane create(int guePort, Optional<NetworkNamespace> ns, String ifname, XdpMode mode) {
    ProxyProgram program = ProxyProgram.load();
    try {
      program.configure(guePort);
      Optional<XdpAttachment> attachment =
          ns.map(n -> XdpAttachment.attach(program.program(), n, ifname, mode));
      attachment.ifPresent(a -> log.info("proxy program attached to {} ({} mode)", ifname, mode));
      return new ProxyDataplane(program, attachment, ns.map(NeighbourKeeper::new));
    } catch (RuntimeException e) {
      program.close();
      throw e;
    }
  }

  public ProxyProgram program() {
    return program;
  }

  /**
   * Makes the allow-list exactly {@code peers}, in one atomic swap, and keeps
   * the next hops towards them resolved for second-chance forwarding.
   */
  public void setPeers(Set<InetAddress> peers) {
    program.setAllowed(peers);
    neighbours.ifPresent(n -> peers.forEach(n::keep));
  }

  public EnumMap<ProxyVerdict, Long> verdicts() {
    return program.verdicts();
  }

  @Override
  public synchronized void close() {
    try {
      attachment.ifPresent(XdpAttachment::close);
    } finally {
      program.close();
    }
  }
}
