package dev.veer.testbed.http;

import com.google.common.collect.ConcurrentHashMultiset;
import com.google.common.collect.ImmutableMultiset;
import com.google.common.collect.Multiset;
import dev.veer.bpf.NetworkNamespace;
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
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * HTTP/1.1 clients on the client host, each on one keep-alive connection to the VIP, sending
 * a GET every interval and checking every answer: status 200, and the same server as before
 * (a connection cannot move between proxies). A failed request ends its connection.
 */
public final class HttpClients implements AutoCloseable {
  private static final int TIMEOUT_MILLIS = 5_000;

  private final List<SocketChannel> connections;
  private final InetSocketAddress vip;
  private final Duration interval;
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final AtomicLong answered = new AtomicLong();
  private final Queue<String> failures = new ConcurrentLinkedQueue<>();
  private final Multiset<String> perServer = ConcurrentHashMultiset.create();
  private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

  private HttpClients(List<SocketChannel> connections, InetSocketAddress vip, Duration interval) {
    this.connections = connections;
    this.vip = vip;
    this.interval = interval;
  }

  /** Opens {@code count} connections from {@code clientNs} and starts their request loops. */
  public static HttpClients start(NetworkNamespace clientNs, InetSocketAddress vip, int count, Duration interval) {
    List<SocketChannel> sockets = clientNs.call(() -> {
      List<SocketChannel> out = new ArrayList<>(count);
      for (int i = 0; i < count; i++) {
        out.add(SocketChannel.open());
      }
      return out;
    });
    HttpClients clients = new HttpClients(sockets, vip, interval);
    for (int i = 0; i < count; i++) {
      int n = i;
      clients.pool.execute(() -> clients.loop(n));
    }
    return clients;
  }

  private void loop(int n) {
    SocketChannel channel = connections.get(n);
    String server = null;
    try {
      channel.socket().connect(vip, TIMEOUT_MILLIS);
      channel.socket().setSoTimeout(TIMEOUT_MILLIS);
      OutputStream out = channel.socket().getOutputStream();
      InputStream in = new BufferedInputStream(channel.socket().getInputStream());
      byte[] request = ("GET / HTTP/1.1\r\nHost: " + vip.getAddress().getHostAddress() + "\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII);
      while (running.get()) {
        out.write(request);
        out.flush();
        String body = readResponse(in);
        String name = body.replace("served by ", "").trim();
        if (server == null) {
          server = name;
          perServer.add(name);
        } else if (!server.equals(name)) {
          throw new IOException("connection served by " + server + " answered from " + name);
        }
        answered.incrementAndGet();
        Thread.sleep(interval);
      }
    } catch (IOException e) {
      failures.add("connection " + n + " (" + server + "): " + e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
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

  public long answered() {
    return answered.get();
  }

  public List<String> failures() {
    return List.copyOf(failures);
  }

  public ImmutableMultiset<String> perServer() {
    return ImmutableMultiset.copyOf(perServer);
  }

  /** Stops the loops (each finishes its request in flight) and closes the connections. */
  @Override
  public void close() {
    running.set(false);
    pool.shutdown();
    try {
      if (!pool.awaitTermination(TIMEOUT_MILLIS * 2L, TimeUnit.MILLISECONDS)) {
        pool.shutdownNow();
      }
    } catch (InterruptedException e) {
      pool.shutdownNow();
      Thread.currentThread().interrupt();
    }
    for (SocketChannel c : connections) {
      try {
        c.close();
      } catch (IOException ignored) {
        // a broken connection: nothing left to release
      }
    }
  }
}
