package dev.veer.bpf;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * What a network device's driver offers XDP programs, asked of the kernel's generic-netlink
 * "netdev" family (NETDEV_CMD_DEV_GET): here, whether its programs can read the RX hash.
 */
public final class NetdevFeatures {
  private static final int NLMSG_HDRLEN = 16;
  private static final int GENL_HDRLEN = 4;
  private static final int NLM_F_REQUEST = 1;
  private static final int NLMSG_ERROR = 2;
  private static final int GENL_ID_CTRL = 0x10;
  private static final int CTRL_CMD_GETFAMILY = 3;
  private static final int CTRL_ATTR_FAMILY_ID = 1;
  private static final int CTRL_ATTR_FAMILY_NAME = 2;
  private static final int NETDEV_CMD_DEV_GET = 1;
  private static final int NETDEV_A_DEV_IFINDEX = 1;
  private static final int NETDEV_A_DEV_XDP_RX_METADATA_FEATURES = 5;

  /** NETDEV_XDP_RX_METADATA_HASH. */
  private static final long RX_METADATA_HASH = 2;

  private NetdevFeatures() {}

  /**
   * Whether XDP programs on {@code ifname} in {@code ns} can read its RX hash ({@code
   * bpf_xdp_metadata_rx_hash}): the driver says so through the netdev family. False where the
   * kernel has no such family or the driver no such feature.
   */
  public static boolean xdpRxHash(NetworkNamespace ns, String ifname) {
    int ifindex = ns.ifindex(ifname);
    return ns.call(() -> rxMetadata(ifindex).orElse(0) & RX_METADATA_HASH) != 0;
  }

  /** The device's XDP RX metadata features, in the calling thread's namespace. */
  private static OptionalLong rxMetadata(int ifindex) {
    try (Fd socket =
        Libc.socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, Libc.NETLINK_GENERIC)) {
      OptionalInt family = familyId(socket, "netdev");
      if (family.isEmpty()) {
        return OptionalLong.empty();
      }
      ByteBuffer attrs = attributes(8);
      putAttribute(
          attrs,
          NETDEV_A_DEV_IFINDEX,
          ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(ifindex).array());
      ByteBuffer reply = request(socket, family.getAsInt(), NETDEV_CMD_DEV_GET, attrs);
      if (reply == null) {
        return OptionalLong.empty();
      }
      ByteBuffer value = attribute(reply, NETDEV_A_DEV_XDP_RX_METADATA_FEATURES);
      return value == null ? OptionalLong.of(0) : OptionalLong.of(value.getLong(0));
    }
  }

  private static OptionalInt familyId(Fd socket, String name) {
    byte[] cName = (name + "\0").getBytes(StandardCharsets.US_ASCII);
    ByteBuffer attrs = attributes(4 + align(cName.length));
    putAttribute(attrs, CTRL_ATTR_FAMILY_NAME, cName);
    ByteBuffer reply = request(socket, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attrs);
    ByteBuffer id = reply == null ? null : attribute(reply, CTRL_ATTR_FAMILY_ID);
    return id == null ? OptionalInt.empty() : OptionalInt.of(id.getShort(0) & 0xffff);
  }

  /** Sends one generic-netlink request; its reply's attributes, or null for an error reply. */
  private static ByteBuffer request(Fd socket, int type, int command, ByteBuffer attrs) {
    attrs.flip();
    int length = NLMSG_HDRLEN + GENL_HDRLEN + attrs.remaining();
    ByteBuffer message = ByteBuffer.allocate(length).order(ByteOrder.nativeOrder());
    message
        .putInt(length)
        .putShort((short) type)
        .putShort((short) NLM_F_REQUEST)
        .putInt(1)
        .putInt(0);
    message.put((byte) command).put((byte) 1).putShort((short) 0);
    message.put(attrs);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment out = arena.allocate(length);
      MemorySegment.copy(message.array(), 0, out, ValueLayout.JAVA_BYTE, 0, length);
      Libc.send(socket, out);
      MemorySegment in = arena.allocate(8192);
      int received = (int) Libc.recv(socket, in);
      ByteBuffer reply =
          ByteBuffer.wrap(in.asSlice(0, received).toArray(ValueLayout.JAVA_BYTE))
              .order(ByteOrder.nativeOrder());
      if (received < NLMSG_HDRLEN || (reply.getShort(4) & 0xffff) == NLMSG_ERROR) {
        return null;
      }
      int end = Math.min(received, reply.getInt(0));
      reply.position(NLMSG_HDRLEN + GENL_HDRLEN).limit(end);
      return reply.slice().order(ByteOrder.nativeOrder());
    }
  }

  private static ByteBuffer attributes(int capacity) {
    return ByteBuffer.allocate(capacity).order(ByteOrder.nativeOrder());
  }

  private static void putAttribute(ByteBuffer to, int type, byte[] payload) {
    to.putShort((short) (4 + payload.length)).putShort((short) type).put(payload);
    while (to.position() % 4 != 0) {
      to.put((byte) 0);
    }
  }

  /** The payload of the attribute {@code type} among {@code attrs}, or null. */
  private static ByteBuffer attribute(ByteBuffer attrs, int type) {
    int at = 0;
    while (at + 4 <= attrs.limit()) {
      int length = attrs.getShort(at) & 0xffff;
      if (length < 4 || at + length > attrs.limit()) {
        return null;
      }
      if ((attrs.getShort(at + 2) & 0x3fff) == type) {
        return attrs.slice(at + 4, length - 4).order(ByteOrder.nativeOrder());
      }
      at += align(length);
    }
    return null;
  }

  private static int align(int length) {
    return (length + 3) & ~3;
  }
}
