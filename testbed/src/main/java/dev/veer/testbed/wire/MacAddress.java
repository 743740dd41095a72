package dev.veer.testbed.wire;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.base.Splitter;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

/** A 48-bit Ethernet address. */
public record MacAddress(byte[] bytes) {
  public MacAddress {
    checkArgument(bytes.length == 6, "a MAC address has 6 bytes, got %s", bytes.length);
    bytes = bytes.clone();
  }

  /** Parses {@code aa:bb:cc:dd:ee:ff}. */
  public static MacAddress parse(String text) {
    List<String> parts = Splitter.on(':').splitToList(text.trim());
    checkArgument(parts.size() == 6, "not a MAC address: %s", text);
    byte[] b = new byte[6];
    for (int i = 0; i < 6; i++) {
      b[i] = (byte) Integer.parseInt(parts.get(i), 16);
    }
    return new MacAddress(b);
  }

  @Override
  public byte[] bytes() {
    return bytes.clone();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MacAddress m && Arrays.equals(bytes, m.bytes);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(bytes);
  }

  @Override
  public String toString() {
    return HexFormat.ofDelimiter(":").formatHex(bytes);
  }
}
