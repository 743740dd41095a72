package dev.veer.bpf.dataplane;

import dev.veer.bpf.BpfMap;
import dev.veer.bpf.BpfSystem;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Pins of the inner maps a pinned program's map-in-maps point at, beside its other pins, so that a
 * daemon taking over opens them by path: opening a map by its id needs {@code CAP_SYS_ADMIN}, which
 * a daemon confined to its unit's capabilities should not hold. A pin is replaced atomically
 * (pinned under a name of its own, then renamed) before the outer map points at the new inner map;
 * a reader uses a pin only when it is the map the outer map points at, so a crash between the two
 * steps is harmless.
 */
final class InnerPins {
  private static final String PREFIX = "inner-";

  private final Path dir;

  private InnerPins(Path dir) {
    this.dir = dir;
  }

  /** Pins under {@code pinRoot}, if the program is pinned. */
  static Optional<InnerPins> under(Optional<Path> pinRoot) {
    return pinRoot.map(InnerPins::new);
  }

  /** Makes {@code name}'s pin {@code map}. */
  void pin(String name, BpfMap map) {
    BpfSystem.replacePin(dir.resolve(PREFIX + name), map::pin);
  }

  void unpin(String name) {
    try {
      Files.deleteIfExists(dir.resolve(PREFIX + name));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove the pin " + name + ": " + e.getMessage(), e);
    }
  }

  /**
   * The inner map with id {@code id}: through {@code name}'s pin when that is the map, else by id
   * (pins made before this existed, or a crash between pinning and pointing; needs {@code
   * CAP_SYS_ADMIN}).
   */
  static BpfMap open(Optional<InnerPins> pins, String name, int id) {
    if (pins.isPresent()) {
      Path pin = pins.get().dir.resolve(PREFIX + name);
      if (Files.exists(pin)) {
        BpfMap pinned = BpfMap.openPinned(pin);
        if (pinned.id() == id) {
          return pinned;
        }
        pinned.close();
      }
    }
    return BpfMap.openById(id);
  }
}
