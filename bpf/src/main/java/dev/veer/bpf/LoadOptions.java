package dev.veer.bpf;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * How {@link BpfObject#load} prepares an object between opening and loading it. Immutable;
 * each {@code with} method returns a changed copy.
 */
public final class LoadOptions {
  /** No pin root, nothing overridden. */
  public static final LoadOptions DEFAULT = new LoadOptions(null, Map.of(), Map.of());

  private final Path pinRoot;
  private final Map<String, Integer> maxEntries;
  private final Map<String, byte[]> initialValues;

  private LoadOptions(Path pinRoot, Map<String, Integer> maxEntries, Map<String, byte[]> initialValues) {
    this.pinRoot = pinRoot;
    this.maxEntries = maxEntries;
    this.initialValues = initialValues;
  }

  /**
   * Directory on a BPF filesystem for maps declared with {@code LIBBPF_PIN_BY_NAME}: a map
   * pinned there under its name is reused, otherwise the new map is pinned there. Created if
   * missing. Without it libbpf uses /sys/fs/bpf.
   */
  public LoadOptions withPinRoot(Path directory) {
    return new LoadOptions(directory, maxEntries, initialValues);
  }

  /** Overrides a map's max_entries. */
  public LoadOptions withMaxEntries(String mapName, int entries) {
    var copy = new HashMap<>(maxEntries);
    copy.put(mapName, entries);
    return new LoadOptions(pinRoot, Map.copyOf(copy), initialValues);
  }

  /**
   * Sets the initial contents of a global-data map such as ".rodata" (its {@code const volatile}
   * variables); {@code value} must have exactly the map's value size.
   */
  public LoadOptions withInitialValue(String mapName, byte[] value) {
    var copy = new HashMap<>(initialValues);
    copy.put(mapName, value.clone());
    return new LoadOptions(pinRoot, maxEntries, Map.copyOf(copy));
  }

  public Optional<Path> pinRoot() {
    return Optional.ofNullable(pinRoot);
  }

  public Map<String, Integer> maxEntries() {
    return maxEntries;
  }

  /** Map name to a copy of its initial value. */
  public Map<String, byte[]> initialValues() {
    var copy = new HashMap<String, byte[]>();
    initialValues.forEach((name, value) -> copy.put(name, value.clone()));
    return copy;
  }

  @Override
  public String toString() {
    return "LoadOptions[pinRoot=" + pinRoot + ", maxEntries=" + maxEntries + ", initialValues="
        + initialValues.keySet() + "]";
  }
}
