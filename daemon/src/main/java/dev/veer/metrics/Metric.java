package dev.veer.metrics;

import static com.google.common.base.Preconditions.checkArgument;

import com.google.common.collect.ImmutableList;
import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSortedMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * One metric family as Prometheus reads it: a name, its help, counter or gauge, and samples that
 * differ by labels. Immutable.
 */
public record Metric(String name, String help, Type type, ImmutableList<Sample> samples) {
  private static final Pattern NAME = Pattern.compile("[a-zA-Z_:][a-zA-Z0-9_:]*");

  public enum Type {
    COUNTER,
    GAUGE
  }

  /** One value, with its labels. */
  public record Sample(ImmutableMap<String, String> labels, double value) {
    public static Sample of(double value) {
      return new Sample(ImmutableMap.of(), value);
    }

    /** Labels in name order, so that every scrape writes a series alike. */
    public static Sample of(Map<String, String> labels, double value) {
      return new Sample(ImmutableSortedMap.copyOf(labels), value);
    }
  }

  public Metric {
    checkArgument(NAME.matcher(name).matches(), "not a Prometheus metric name: %s", name);
    checkArgument(
        type != Type.COUNTER || name.endsWith("_total"),
        "a counter's name ends in _total: %s",
        name);
  }

  public static Metric counter(String name, String help, List<Sample> samples) {
    return new Metric(name, help, Type.COUNTER, ImmutableList.copyOf(samples));
  }

  public static Metric gauge(String name, String help, List<Sample> samples) {
    return new Metric(name, help, Type.GAUGE, ImmutableList.copyOf(samples));
  }

  public static Metric gauge(String name, String help, double value) {
    return gauge(name, help, List.of(Sample.of(value)));
  }

  /**
   * A daemon's XDP attachment: {@code <prefix>_attached} (1 while attached) and {@code
   * <prefix>_reattachments_total}.
   */
  public static List<Metric> attachment(String prefix, boolean attached, long reattachments) {
    return List.of(
        gauge(
            prefix + "_attached",
            "1 while the program is attached to its interface.",
            attached ? 1 : 0),
        counter(
            prefix + "_reattachments_total",
            "Times the program was found detached (a NIC reset, another tool, the interface"
                + " recreated) and attached again.",
            List.of(Sample.of(reattachments))));
  }

  /** The family in the Prometheus text exposition format (version 0.0.4). */
  void writeTo(StringBuilder out) {
    out.append("# HELP ")
        .append(name)
        .append(' ')
        .append(help.replace("\\", "\\\\").replace("\n", "\\n"))
        .append('\n');
    out.append("# TYPE ")
        .append(name)
        .append(' ')
        .append(type == Type.COUNTER ? "counter" : "gauge")
        .append('\n');
    for (Sample sample : samples) {
      out.append(name);
      if (!sample.labels().isEmpty()) {
        out.append('{');
        boolean first = true;
        for (Map.Entry<String, String> label : sample.labels().entrySet()) {
          if (!first) {
            out.append(',');
          }
          first = false;
          out.append(label.getKey())
              .append("=\"")
              .append(
                  label.getValue().replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n"))
              .append('"');
        }
        out.append('}');
      }
      double v = sample.value();
      out.append(' ')
          .append(
              v == Math.rint(v) && !Double.isInfinite(v)
                  ? Long.toString((long) v)
                  : Double.toString(v))
          .append('\n');
    }
  }
}
