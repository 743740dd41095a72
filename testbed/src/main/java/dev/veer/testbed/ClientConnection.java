package dev.veer.testbed;

import dev.veer.bpf.NetworkNamespace;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * One client TCP connection to the VIP, speaking {@link EchoServer}'s line protocol. The socket is
 * created inside the client's namespace.
 */
public final class ClientConnection implements AutoCloseable {
  private final SocketChannel channel;
  private BufferedReader in;
  private OutputStream out;
  private String server;

  private ClientConnection(SocketChannel channel) {
    this.channel = channel;
  }

  /** Creates {@code count} unconnected sockets in {@code ns}. */
  public static List<ClientConnection> create(NetworkNamespace ns, int count) {
    return ns.call(
        () -> {
          List<ClientConnection> out = new ArrayList<>(count);
          try {
            for (int i = 0; i < count; i++) {
              out.add(new ClientConnection(SocketChannel.open()));
            }
            return out;
          } catch (IOException | RuntimeException e) {
            out.forEach(ClientConnection::close);
            throw e;
          }
        });
  }

  /** An unconnected socket in {@code ns} bound to {@code localPort}, so its flow hash is known. */
  public static ClientConnection bound(NetworkNamespace ns, int localPort) {
    return ns.call(
        () -> {
          SocketChannel channel = SocketChannel.open();
          try {
            channel.setOption(java.net.StandardSocketOptions.SO_REUSEADDR, true);
            channel.bind(new InetSocketAddress(localPort));
            return new ClientConnection(channel);
          } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
          }
        });
  }

  public void connect(InetSocketAddress target, int timeoutMillis) throws IOException {
    channel.socket().connect(target, timeoutMillis);
    channel.socket().setSoTimeout(timeoutMillis);
    in =
        new BufferedReader(
            new InputStreamReader(channel.socket().getInputStream(), StandardCharsets.US_ASCII));
    out = channel.socket().getOutputStream();
  }

  /**
   * Sends one request and checks the answer echoes it. Returns the name of the server that
   * answered; a later answer from a different server is an error, since one TCP connection cannot
   * move between proxies.
   */
  public String exchange(String request) throws IOException {
    out.write((request + "\n").getBytes(StandardCharsets.US_ASCII));
    out.flush();
    String reply = in.readLine();
    if (reply == null) {
      throw new IOException("connection closed by peer");
    }
    int space = reply.indexOf(' ');
    if (space < 0 || !reply.substring(space + 1).equals(request)) {
      throw new IOException("unexpected reply '" + reply + "' to '" + request + "'");
    }
    String name = reply.substring(0, space);
    if (server != null && !server.equals(name)) {
      throw new IOException("connection served by " + server + " answered from " + name);
    }
    server = name;
    return name;
  }

  /** The server that answered this connection, or null before the first answer. */
  public String server() {
    return server;
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException ignored) {
      // closing a broken connection: nothing left to release
    }
  }
}
