package dev.veer.testbed.wire;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.veer.bpf.NetworkNamespace;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The libc socket calls the test bed's packet senders make ({@link RawIpSender}, {@link
 * FrameSender}), bound once; and running such a send inside a namespace.
 */
final class RawSockets {
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle SOCKET =
      downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle BIND =
      downcall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle SENDTO =
      downcall(
          "sendto",
          FunctionDescriptor.of(
              JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle CLOSE =
      downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

  private RawSockets() {}

  private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor);
  }

  /** A send that may fail in native code. */
  interface Send {
    void run() throws Throwable;
  }

  /** Runs {@code send} in {@code ns}, failures as IllegalStateException naming {@code what}. */
  static void in(NetworkNamespace ns, String what, Send send) {
    ns.call(
        () -> {
          try {
            send.run();
          } catch (RuntimeException | Error e) {
            throw e;
          } catch (Throwable t) {
            throw new IllegalStateException(what + " failed", t);
          }
          return null;
        });
  }

  static int socket(int domain, int type, int protocol) throws Throwable {
    int fd = (int) SOCKET.invokeExact(domain, type, protocol);
    if (fd < 0) {
      throw new IllegalStateException(
          "socket(" + domain + ", " + type + ", " + protocol + ") failed");
    }
    return fd;
  }

  static void bind(int fd, MemorySegment address) throws Throwable {
    if ((int) BIND.invokeExact(fd, address, (int) address.byteSize()) != 0) {
      throw new IllegalStateException("bind failed");
    }
  }

  /** Sends {@code data} whole, to {@code to} (NULL on a bound packet socket). */
  static void sendTo(int fd, MemorySegment data, MemorySegment to) throws Throwable {
    int toLength = to.equals(MemorySegment.NULL) ? 0 : (int) to.byteSize();
    long sent = (long) SENDTO.invokeExact(fd, data, data.byteSize(), 0, to, toLength);
    if (sent != data.byteSize()) {
      throw new IllegalStateException("sent " + sent + " of " + data.byteSize() + " bytes");
    }
  }

  static void close(int fd) throws Throwable {
    int ignored = (int) CLOSE.invokeExact(fd);
  }
}
