package dev.veer.transport;

/** What a caller of a Veer gRPC service may do. */
public enum Role {
  /** Every admin call, reads and writes. */
  ADMIN,
  /** Admin reads only: services, status, tables, flow lookups. */
  READER,
  /** The director sync stream. */
  DIRECTOR,
  /** The proxy-agent stream. */
  AGENT
}
