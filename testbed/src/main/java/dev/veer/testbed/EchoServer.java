package dev.veer.testbed;

import dev.veer.bpf.NetworkNamespace;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The backend service on a proxy host: answers every line it receives with {@code "<name> <line>"},
 * so a client learns which proxy served it. Listens on all addresses (IPv4 and IPv6) of its
 * namespace.
 */
public final class EchoServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(EchoServer.class);
  private static final int MAX_LINE = 1024;

  private final String name;
  private final ServerSocketChannel listener;
  private final Set<SocketChannel> connections = ConcurrentHashMap.newKeySet();
  private final AtomicLong answered = new AtomicLong();

  /** How long each answer waits: a backend made slow on purpose, as an overloaded one is. */
  private volatile Duration delay = Duration.ZERO;

  private final Thread acceptor;

  private EchoServer(String name, ServerSocketChannel listener) {
    this.name = name;
    this.listener = listener;
    this.acceptor = Thread.ofPlatform().name("echo-" + name).daemon().unstarted(this::acceptLoop);
  }

  /** Starts a server whose listening socket lives in {@code ns}. */
  public static EchoServer start(NetworkNamespace ns, int port, String name) {
    ServerSocketChannel listener =
        ns.call(
            () -> {
              ServerSocketChannel ch = ServerSocketChannel.open();
              ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
              ch.bind(new InetSocketAddress(port), 4096);
              return ch;
            });
    EchoServer server = new EchoServer(name, listener);
    server.acceptor.start();
    return server;
  }

  public String name() {
    return name;
  }

  public long answered() {
    return answered.get();
  }

  /**
   * Makes the server read every request {@code delay} after it could (zero: at once), as a service
   * that cannot keep up does.
   */
  public void setDelay(Duration delay) {
    this.delay = delay;
  }

  public int openConnections() {
    return connections.size();
  }

  private void acceptLoop() {
    while (listener.isOpen()) {
      try {
        SocketChannel ch = listener.accept();
        connections.add(ch);
        Thread.ofVirtual().name("echo-" + name + "-conn").start(() -> serve(ch));
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        log.warn("{}: accept failed: {}", name, e.toString());
      }
    }
  }

  private void serve(SocketChannel ch) {
    ByteBuffer in = ByteBuffer.allocate(MAX_LINE);
    try (ch) {
      while (waitTheDelay() && ch.read(in) >= 0) {
        int end;
        while ((end = indexOf(in, (byte) '\n')) >= 0) {
          byte[] line = new byte[end];
          in.flip();
          in.get(line).get();
          in.compact();
          byte[] reply =
              (name + " " + new String(line, StandardCharsets.US_ASCII) + "\n")
                  .getBytes(StandardCharsets.US_ASCII);
          ByteBuffer out = ByteBuffer.wrap(reply);
          while (out.hasRemaining()) {
            ch.write(out);
          }
          answered.incrementAndGet();
        }
        if (!in.hasRemaining()) {
          return; // a line longer than MAX_LINE: not our protocol
        }
      }
    } catch (IOException e) {
      log.debug("{}: connection ended: {}", name, e.toString());
    } finally {
      connections.remove(ch);
    }
  }

  /**
   * Waits the delay before reading, so that a request waits in the kernel (as it does for a service
   * that cannot keep up) and the proxy agent sees it. False if interrupted.
   */
  private boolean waitTheDelay() {
    Duration wait = delay;
    if (wait.isZero()) {
      return true;
    }
    try {
      Thread.sleep(wait);
      return true;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  private static int indexOf(ByteBuffer buf, byte b) {
    for (int i = 0; i < buf.position(); i++) {
      if (buf.get(i) == b) {
        return i;
      }
    }
    return -1;
  }

  /** Whether it still accepts connections (until {@link #close()}). */
  public boolean isOpen() {
    return listener.isOpen();
  }

  @Override
  public void close() {
    closeQuietly(listener);
    connections.forEach(EchoServer::closeQuietly);
  }

  private static void closeQuietly(java.nio.channels.Channel channel) {
    try {
      channel.close();
    } catch (IOException e) {
      log.debug("closing {}: {}", channel, e.toString());
    }
  }
}
