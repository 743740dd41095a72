package dev.veer.director.routes;

import com.google.common.collect.ImmutableList;
import dev.veer.metrics.Metric;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The BGP sessions of the host's speaker, read every second from BIRD's control socket ({@code show
 * protocols}), for metrics and the coordinators' status: announcing routes is useless while no
 * session is established, and an operator must see that from Veer, not only from the speaker.
 */
public final class SpeakerSessions implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(SpeakerSessions.class);
  private static final Duration PERIOD = Duration.ofSeconds(1);
  private static final int MAX_REPLY_LINES = 10_000;

  /** One BGP session: BIRD's protocol name, its state and BIRD's words for it. */
  public record Session(String name, String state, String info) {
    public boolean established() {
      return info.startsWith("Established");
    }
  }

  private final Path socket;
  private final ScheduledExecutorService timer =
      Executors.newSingleThreadScheduledExecutor(
          Thread.ofPlatform().name("veer-speaker").daemon(true).factory());
  private volatile ImmutableList<Session> sessions = ImmutableList.of();
  private volatile String problem = "not read yet";

  public SpeakerSessions(Path socket) {
    this.socket = socket;
  }

  public void start() {
    timer.scheduleWithFixedDelay(this::refresh, 0, PERIOD.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** The BGP sessions as last read (empty while the speaker cannot be reached). */
  public ImmutableList<Session> sessions() {
    return sessions;
  }

  /** Why the speaker could not be read last time, or empty. */
  public String problem() {
    return problem;
  }

  private void refresh() {
    try {
      ImmutableList<Session> read = read(socket);
      if (!read.equals(sessions)) {
        log.info("BGP sessions: {}", read);
      }
      sessions = read;
      if (!problem.isEmpty()) {
        problem = "";
      }
    } catch (IOException | RuntimeException e) {
      String why = "cannot read the BGP speaker at " + socket + ": " + e.getMessage();
      if (!why.equals(problem)) {
        log.warn("{}", why);
      }
      problem = why;
      sessions = ImmutableList.of();
    }
  }

  /** Asks BIRD at {@code socket} for its protocols and keeps the BGP ones. */
  static ImmutableList<Session> read(Path socket) throws IOException {
    try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      channel.connect(UnixDomainSocketAddress.of(socket));
      BufferedReader in =
          new BufferedReader(
              new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.US_ASCII));
      readReply(in); // the greeting, "0001 BIRD 2.x ready."
      channel.write(ByteBuffer.wrap("show protocols\n".getBytes(StandardCharsets.US_ASCII)));
      return parse(readReply(in));
    }
  }

  /**
   * One reply of BIRD's control protocol: lines "NNNN-text" go on, "NNNN text" ends it, " text"
   * continues the previous line's code. Returns the lines with their codes.
   */
  private static List<String> readReply(BufferedReader in) throws IOException {
    List<String> lines = new ArrayList<>();
    String code = "";
    while (lines.size() < MAX_REPLY_LINES) {
      String line = in.readLine();
      if (line == null) {
        throw new IOException("the speaker closed the connection mid-reply");
      }
      if (line.length() >= 5 && Character.isDigit(line.charAt(0))) {
        code = line.substring(0, 4);
        lines.add(code + " " + line.substring(5));
        if (line.charAt(4) == ' ') {
          if (code.startsWith("8") || code.startsWith("9")) {
            throw new IOException("the speaker answered " + line);
          }
          return lines;
        }
      } else {
        lines.add(code + " " + line.strip());
      }
    }
    throw new IOException("the speaker's reply has more than " + MAX_REPLY_LINES + " lines");
  }

  /** The BGP rows of "show protocols" (code 1002): name, protocol, table, state, since, info. */
  static ImmutableList<Session> parse(List<String> reply) {
    ImmutableList.Builder<Session> out = ImmutableList.builder();
    for (String line : reply) {
      if (!line.startsWith("1002 ")) {
        continue;
      }
      String[] columns = line.substring(5).trim().split("\\s+", 6);
      if (columns.length >= 5 && columns[1].equals("BGP")) {
        out.add(new Session(columns[0], columns[3], columns.length == 6 ? columns[5] : ""));
      }
    }
    return out.build();
  }

  public List<Metric> metrics() {
    List<Metric.Sample> up = new ArrayList<>();
    for (Session s : sessions) {
      up.add(
          Metric.Sample.of(
              Map.of("session", s.name(), "state", s.state(), "info", s.info()),
              s.established() ? 1 : 0));
    }
    return List.of(
        Metric.gauge(
            "veer_director_bgp_session_established",
            "Each BGP session of the host's speaker: 1 while established (labels: BIRD's state).",
            up),
        Metric.gauge(
            "veer_director_bgp_speaker_reachable",
            "1 while the speaker's control socket answers.",
            problem.isEmpty() ? 1 : 0));
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
