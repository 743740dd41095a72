package dev.veer.bpf;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * How {@link BpfObject#load} prepares an object between opening and loading it. Immutable; each
 * {@code with} method returns a changed copy.
 */
public final class LoadOptions {
  /** No pin root, nothing overridden. */
  public static final LoadOptions DEFAULT =
      new LoadOptions(null, Map.of(), Map.of(), Map.of(), OptionalInt.empty());

  private final Path pinRoot;
  private final Map<String, Integer> maxEntries;
  private final Map<String, byte[]> initialValues;
  private final Map<String, MapSpec> innerMaps;
  private final OptionalInt device;

  private LoadOptions(
      Path pinRoot,
      Map<String, Integer> maxEntries,
      Map<String, byte[]> initialValues,
      Map<String, MapSpec> innerMaps,
      OptionalInt device) {
    this.pinRoot = pinRoot;
    this.maxEntries = maxEntries;
    this.initialValues = initialValues;
    this.innerMaps = innerMaps;
    this.device = device;
  }

  /**
   * Binds every program of the object to the device {@code ifindex} (BPF_F_XDP_DEV_BOUND_ONLY), so
   * that it may call that driver's XDP metadata kfuncs; it can then be attached to that device
   * only. Load in the device's network namespace.
   */
  public LoadOptions withDevice(int ifindex) {
    return new LoadOptions(pinRoot, maxEntries, initialValues, innerMaps, OptionalInt.of(ifindex));
  }

  /** The device the programs are bound to, if any. */
  public OptionalInt device() {
    return device;
  }

  /**
   * Directory on a BPF filesystem for maps declared with {@code LIBBPF_PIN_BY_NAME}: a map pinned
   * there under its name is reused, otherwise the new map is pinned there. Created if missing.
   * Without it no map is pinned.
   */
  public LoadOptions withPinRoot(Path directory) {
    return new LoadOptions(directory, maxEntries, initialValues, innerMaps, device);
  }

  /** Overrides a map's max_entries. */
  public LoadOptions withMaxEntries(String mapName, int entries) {
    var copy = new HashMap<>(maxEntries);
    copy.put(mapName, entries);
    return new LoadOptions(pinRoot, Map.copyOf(copy), initialValues, innerMaps, device);
  }

  /**
   * Sets the initial contents of a global-data map such as ".rodata" (its {@code const volatile}
   * variables); {@code value} must have exactly the map's value size.
   */
  public LoadOptions withInitialValue(String mapName, byte[] value) {
    var copy = new HashMap<>(initialValues);
    copy.put(mapName, value.clone());
    return new LoadOptions(pinRoot, maxEntries, Map.copyOf(copy), innerMaps, device);
  }

  /**
   * Replaces the inner-map template of a map-in-map (e.g. to size it at load time); the verifier
   * then knows the inner maps' exact shape.
   */
  public LoadOptions withInnerMap(String outerMapName, MapSpec template) {
    var copy = new HashMap<>(innerMaps);
    copy.put(outerMapName, template);
    return new LoadOptions(pinRoot, maxEntries, initialValues, Map.copyOf(copy), device);
  }

  public Map<String, MapSpec> innerMaps() {
    return innerMaps;
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
    return "LoadOptions[pinRoot="
        + pinRoot
        + ", maxEntries="
        + maxEntries
        + ", initialValues="
        + initialValues.keySet()
        + ", innerMaps="
        + innerMaps
        + ", device="
        + device
        + "]";
  }
}
