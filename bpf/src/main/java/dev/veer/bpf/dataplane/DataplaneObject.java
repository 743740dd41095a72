package dev.veer.bpf.dataplane;

/**
 * The BPF objects a data plane is loaded from, and the XDP program of each. A co-located host loads
 * {@link #CO_LOCATED} in both daemons: its maps are pinned by name, so the director's and the
 * proxy's halves are one set of maps, and the director attaches the one program.
 */
public enum DataplaneObject {
  DIRECTOR("/bpf/director.o", "veer_director"),
  /**
   * The director with the NIC's RX hash as its flow hash; loaded bound to its interface ({@link
   * dev.veer.bpf.LoadOptions#withDevice}).
   */
  DIRECTOR_RX_HASH("/bpf/director_rx.o", "veer_director"),
  PROXY("/bpf/proxy.o", "veer_proxy"),
  CO_LOCATED("/bpf/colocated.o", "veer_colocated");

  private final String resource;
  private final String program;

  DataplaneObject(String resource, String program) {
    this.resource = resource;
    this.program = program;
  }

  /** The object's class-path resource. */
  public String resource() {
    return resource;
  }

  /** The XDP program's name in the object. */
  public String program() {
    return program;
  }
}
