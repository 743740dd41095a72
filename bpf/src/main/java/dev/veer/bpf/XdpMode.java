package dev.veer.bpf;

/** Where an XDP program runs. */
public enum XdpMode {
  /** In the driver (XDP_FLAGS_DRV_MODE); fails if the driver has no XDP support. */
  NATIVE(1 << 2),
  /** In the generic network stack (XDP_FLAGS_SKB_MODE); works everywhere, slower. */
  GENERIC(1 << 1),
  /** Native if the driver supports it, generic otherwise; the kernel picks. */
  ANY(0);

  final int flags;

  XdpMode(int flags) {
    this.flags = flags;
  }
}
