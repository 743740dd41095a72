package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.function.Supplier;

/** The few libc functions the library needs; the one place each is bound. */
final class Libc {
  static final int O_RDONLY = 0;
  static final int O_CLOEXEC = 0x80000;
  static final int CLONE_NEWNET = 0x40000000;

  private static final SymbolLookup LIBC = Native.LINKER.defaultLookup();

  private static final MethodHandle STRERROR =
      Native.downcall(LIBC, "strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));
  private static final MethodHandle IF_NAMETOINDEX =
      Native.downcall(LIBC, "if_nametoindex", FunctionDescriptor.of(JAVA_INT, ADDRESS));
  private static final MethodHandle OPEN =
      Native.downcallWithErrno(LIBC, "open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
  private static final MethodHandle CLOSE =
      Native.downcallWithErrno(LIBC, "close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
  private static final MethodHandle SETNS =
      Native.downcallWithErrno(LIBC, "setns", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle VSNPRINTF =
      Native.downcall(
          LIBC, "vsnprintf", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS));

  private Libc() {}

  private static final MethodHandle SOCKET =
      Native.downcallWithErrno(
          LIBC, "socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle GETSOCKOPT =
      Native.downcallWithErrno(
          LIBC,
          "getsockopt",
          FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final MethodHandle MMAP =
      Native.downcallWithErrno(
          LIBC,
          "mmap",
          FunctionDescriptor.of(
              ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
  private static final MethodHandle MUNMAP =
      Native.downcallWithErrno(LIBC, "munmap", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
  private static final MethodHandle SEND =
      Native.downcallWithErrno(
          LIBC, "send", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
  private static final MethodHandle RECV =
      Native.downcallWithErrno(
          LIBC, "recv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
  static final int AF_NETLINK = 16;
  static final int SOCK_RAW = 3;
  static final int SOCK_CLOEXEC = 0x80000;
  static final int NETLINK_GENERIC = 16;
  private static final int PROT_READ = 1;
  private static final int PROT_WRITE = 2;
  private static final int MAP_SHARED = 1;
  private static final int AF_INET = 2;
  private static final int SOCK_DGRAM = 2;
  private static final int SOL_SOCKET = 1;
  private static final int SO_NETNS_COOKIE = 71;
  private static final long MAP_FAILED = -1;

  static String strerror(int errno) {
    return Native.string(Native.call(() -> (MemorySegment) STRERROR.invokeExact(errno)));
  }

  /** The interface's index in the calling thread's network namespace, or 0 if there is none. */
  static int ifNameToIndex(String ifname) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment name = arena.allocateFrom(ifname);
      return Native.callInt(() -> (int) IF_NAMETOINDEX.invokeExact(name));
    }
  }

  static Fd open(String path, int flags) {
    String operation = "open(" + path + ")";
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment cPath = arena.allocateFrom(path);
      return new Fd(
          checkInt(operation, state -> (int) OPEN.invokeExact(state, cPath, flags)), operation);
    }
  }

  /** A socket of the calling thread's network namespace. */
  static Fd socket(int domain, int type, int protocol) {
    String operation = "socket(" + domain + ", " + type + ", " + protocol + ")";
    return new Fd(
        checkInt(operation, state -> (int) SOCKET.invokeExact(state, domain, type, protocol)),
        operation);
  }

  /** Sends a whole message on a connected (or netlink) socket. */
  static void send(Fd socket, MemorySegment message) {
    long sent =
        Native.callOrThrow(
            "send",
            result -> result < 0,
            Native.NO_DETAIL,
            state ->
                (long) SEND.invokeExact(state, socket.intValue(), message, message.byteSize(), 0));
    if (sent != message.byteSize()) {
      throw new IllegalStateException("send: " + sent + " of " + message.byteSize() + " bytes");
    }
  }

  /** Receives one message into {@code buffer}; returns its length. */
  static long recv(Fd socket, MemorySegment buffer) {
    return Native.callOrThrow(
        "recv",
        result -> result < 0,
        Native.NO_DETAIL,
        state -> (long) RECV.invokeExact(state, socket.intValue(), buffer, buffer.byteSize(), 0));
  }

  /** Closes a raw descriptor: for {@link Fd#close()}, which makes sure it happens once. */
  static void close(int fd) {
    checkInt("close(" + fd + ")", state -> (int) CLOSE.invokeExact(state, fd));
  }

  /**
   * The kernel's cookie of the calling thread's network namespace, as BPF programs see it ({@code
   * bpf_get_netns_cookie}); through a socket's SO_NETNS_COOKIE (Linux 5.14+).
   */
  static long netnsCookie() {
    String operation = "socket(AF_INET, SOCK_DGRAM)";
    int raw = checkInt(operation, state -> (int) SOCKET.invokeExact(state, AF_INET, SOCK_DGRAM, 0));
    try (Fd socket = new Fd(raw, operation);
        Arena arena = Arena.ofConfined()) {
      MemorySegment cookie = arena.allocate(JAVA_LONG);
      MemorySegment length = arena.allocateFrom(JAVA_INT, (int) JAVA_LONG.byteSize());
      int fd = socket.intValue();
      checkInt(
          "getsockopt(SO_NETNS_COOKIE)",
          () -> "the kernel is older than 5.14",
          state ->
              (int) GETSOCKOPT.invokeExact(state, fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, length));
      return cookie.get(JAVA_LONG, 0);
    }
  }

  /**
   * Maps {@code length} bytes of {@code fd} shared, readable and writable, for as long as {@code
   * arena} is open: closing it unmaps them, and the segment fails cleanly from then on.
   */
  @SuppressWarnings("restricted")
  static MemorySegment mmapShared(int fd, long length, String what, Arena arena) {
    MemorySegment address =
        Native.callOrThrow(
            "mmap(" + what + ")",
            a -> a.address() == MAP_FAILED,
            Native.NO_DETAIL,
            state ->
                (MemorySegment)
                    MMAP.invokeExact(
                        state,
                        MemorySegment.NULL,
                        length,
                        PROT_READ | PROT_WRITE,
                        MAP_SHARED,
                        fd,
                        0L));
    return address.reinterpret(length, arena, mapping -> munmap(mapping, what));
  }

  private static void munmap(MemorySegment mapping, String what) {
    long length = mapping.byteSize();
    checkInt("munmap(" + what + ")", state -> (int) MUNMAP.invokeExact(state, mapping, length));
  }

  /** Moves the calling thread (only it) into the namespace {@code fd} refers to. */
  static void setns(Fd namespace, int nstype, String what) {
    int fd = namespace.intValue();
    checkInt("setns(" + what + ")", state -> (int) SETNS.invokeExact(state, fd, nstype));
  }

  /** Formats into {@code buffer}; returns the length the full text needs, as C's vsnprintf. */
  static int vsnprintf(
      MemorySegment buffer, long size, MemorySegment format, MemorySegment vaList) {
    return Native.callInt(() -> (int) VSNPRINTF.invokeExact(buffer, size, format, vaList));
  }

  /** A libc call returning -1 and setting errno on failure: the result, or a BpfException. */
  private static int checkInt(String operation, Native.ErrnoCall<Integer> call) {
    return checkInt(operation, Native.NO_DETAIL, call);
  }

  private static int checkInt(
      String operation, Supplier<String> detail, Native.ErrnoCall<Integer> call) {
    return Native.callOrThrow(operation, result -> result < 0, detail, call);
  }
}
