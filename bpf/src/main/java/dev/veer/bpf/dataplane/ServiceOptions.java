package dev.veer.bpf.dataplane;

import dev.veer.bpf.abi.VeerAbi;

/**
 * Per-service data-plane behaviour: which source fields pick the row and how packets are
 * encapsulated. IPIP/ip6ip6 sends to the primary only: there is no hop list, so no second-chance
 * forwarding for such a service.
 */
public record ServiceOptions(HashFields hashFields, Encapsulation encapsulation) {
  public static final ServiceOptions DEFAULT =
      new ServiceOptions(HashFields.SOURCE_IP_AND_PORT, Encapsulation.GUE);

  public enum HashFields {
    SOURCE_IP,
    SOURCE_IP_AND_PORT
  }

  public enum Encapsulation {
    GUE,
    IPIP
  }

  /** The VEER_SVC_* bits of struct veer_service. */
  public int flags() {
    int flags = 0;
    if (hashFields == HashFields.SOURCE_IP_AND_PORT) {
      flags |= VeerAbi.SVC_HASH_SRC_PORT;
    }
    if (encapsulation == Encapsulation.IPIP) {
      flags |= VeerAbi.SVC_ENCAP_IPIP;
    }
    return flags;
  }
}
