package dev.veer.bpf.dataplane;

/** Per-service counters summed over CPUs (struct veer_service_stats). */
public record ServiceStats(long packets, long bytes, long drops) {
  static final int SIZE = 24;
  public static final ServiceStats ZERO = new ServiceStats(0, 0, 0);
}
