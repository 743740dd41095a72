package dev.veer.coordinator.table;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/** Random, distinct test backends. */
final class TestBackends {
  private TestBackends() {}

  static List<Backend> ipv4(Random random, int count) {
    return random(random, count, 4);
  }

  static List<Backend> ipv6(Random random, int count) {
    return random(random, count, 16);
  }

  static byte[] seed(Random random) {
    byte[] seed = new byte[16];
    random.nextBytes(seed);
    return seed;
  }

  private static List<Backend> random(Random random, int count, int length) {
    Set<InetAddress> seen = new HashSet<>();
    List<Backend> out = new ArrayList<>();
    while (out.size() < count) {
      byte[] bytes = new byte[length];
      random.nextBytes(bytes);
      try {
        InetAddress address = InetAddress.getByAddress(bytes);
        if (seen.add(address)) {
          out.add(Backend.active(address));
        }
      } catch (UnknownHostException e) {
        throw new AssertionError(e);
      }
    }
    return out;
  }
}
