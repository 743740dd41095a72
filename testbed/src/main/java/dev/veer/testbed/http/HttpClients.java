package dev.veer.testbed.http;

import com.google.common.collect.ImmutableMultiset;
import dev.veer.bpf.NetworkNamespace;
import dev.veer.testbed.ConnectionLoops;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * HTTP/1.1 clients on the client host, each on one keep-alive connection to the VIP, sending a GET
 * every interval and checking every answer: status 200, and the same server as before (a connection
 * cannot move between proxies). A failed request ends its connection; count what broke with {@link
 * #stop()}, once every request in flight has been answered or timed out.
 */
public final class HttpClients implements AutoCloseable {
  private static final int TIMEOUT_MILLIS = 5_000;

  private final List<SocketChannel> connections;
  private final ConnectionLoops loops;

  private HttpClients(List<SocketChannel> connections, ConnectionLoops loops) {
    this.connections = connections;
    this.loops = loops;
  }

  /** Opens {@code count} connections from {@code clientNs} and starts their request loops. */
  public static HttpClients start(
      NetworkNamespace clientNs, InetSocketAddress vip, int count, Duration interval) {
    List<SocketChannel> sockets =
        clientNs.call(
            () -> {
              List<SocketChannel> out = new ArrayList<>(count);
              for (int i = 0; i < count; i++) {
                out.add(SocketChannel.open());
              }
              return out;
            });
    byte[] request =
        ("GET / HTTP/1.1\r\nHost: " + vip.getAddress().getHostAddress() + "\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII);
    // Each connection's loop is the only one to touch its slot.
    InputStream[] inputs = new InputStream[count];
    ConnectionLoops loops =
        ConnectionLoops.start(
            count,
            (n, seq) -> {
              SocketChannel channel = sockets.get(n);
              if (seq == 0) {
                channel.socket().connect(vip, TIMEOUT_MILLIS);
                channel.socket().setSoTimeout(TIMEOUT_MILLIS);
                inputs[n] = new BufferedInputStream(channel.socket().getInputStream());
              }
              OutputStream out = channel.socket().getOutputStream();
              out.write(request);
              out.flush();
              return readResponse(inputs[n]).replace("served by ", "").trim();
            },
            interval,
            Long.MAX_VALUE,
            Duration.ofMillis(TIMEOUT_MILLIS));
    return new HttpClients(sockets, loops);
  }

  /** Reads one response with a Content-Length body; fails unless it is a 200. */
  static String readResponse(InputStream in) throws IOException {
    String status = line(in);
    if (!status.startsWith("HTTP/1.1 200")) {
      throw new IOException("unexpected status '" + status + "'");
    }
    int length = -1;
    for (String header = line(in); !header.isEmpty(); header = line(in)) {
      if (header.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
        length = Integer.parseInt(header.substring(15).trim());
      }
    }
    if (length < 0) {
      throw new IOException("a response without Content-Length");
    }
    byte[] body = in.readNBytes(length);
    if (body.length != length) {
      throw new IOException("connection closed in the middle of a response");
    }
    return new String(body, StandardCharsets.US_ASCII);
  }

  private static String line(InputStream in) throws IOException {
    StringBuilder sb = new StringBuilder();
    for (int c = in.read(); c != '\n'; c = in.read()) {
      if (c < 0) {
        throw new IOException("connection closed by peer");
      }
      if (c != '\r') {
        sb.append((char) c);
      }
    }
    return sb.toString();
  }

  /**
   * A point in time to ask later which connections answered since (see {@link
   * ConnectionLoops.Result}).
   */
  public long mark() {
    return loops.mark();
  }

  /** Requests answered so far: progress only, failures are counted by {@link #stop()}. */
  public long answered() {
    return loops.answered();
  }

  /** How many connections each server answered. */
  public ImmutableMultiset<String> perServer() {
    return loops.perServer();
  }

  /** Stops the loops, waits for every request in flight to be answered or time out, and reports. */
  public ConnectionLoops.Result stop() {
    return loops.stop();
  }

  /** Stops (if not yet) and closes the connections. */
  @Override
  public void close() {
    loops.close();
    for (SocketChannel c : connections) {
      try {
        c.close();
      } catch (IOException ignored) {
        // a broken connection: nothing left to release
      }
    }
  }
}
