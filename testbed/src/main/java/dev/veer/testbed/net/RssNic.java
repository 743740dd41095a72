package dev.veer.testbed.net;

import com.google.common.io.BaseEncoding;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * The test bed's stand-in for a NIC that hashes for RSS with Toeplitz and {@link #KEY}: a tc
 * program (nic_rss.o) on an interface's egress sets each TCP or UDP packet's skb hash, which the
 * veth hands to XDP on its peer as the RX hash, as a NIC hands its own.
 */
public final class RssNic {
  /** The RSS specification's example key, which the bed's NICs hash with. */
  public static final byte[] KEY =
      BaseEncoding.base16()
          .decode(
              "6D5A56DA255B0EC24167253D43A38FB0D0CA2BCBAE7B30B477CB2DA38030F20C6A42B73BBEAC01FA");

  private RssNic() {}

  /** Makes what {@code ifname} in {@code ns} sends arrive at its peer as from such a NIC. */
  public static void hashOnEgress(Namespace ns, String ifname) {
    Path object = extract();
    try {
      ns.exec("tc", "qdisc", "add", "dev", ifname, "clsact");
      ns.exec(
          "tc",
          "filter",
          "add",
          "dev",
          ifname,
          "egress",
          "bpf",
          "direct-action",
          "object-file",
          object.toString(),
          "section",
          "tc");
    } finally {
      try {
        Files.deleteIfExists(object);
      } catch (IOException e) {
        // a temporary file left behind
      }
    }
  }

  /** nic_rss.o, out of the class path into a file that tc can read. */
  private static Path extract() {
    try (InputStream in = RssNic.class.getResourceAsStream("/bpf/nic_rss.o")) {
      if (in == null) {
        throw new IllegalStateException("nic_rss.o is not on the class path");
      }
      Path file = Files.createTempFile("veer-nic_rss", ".o");
      Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
