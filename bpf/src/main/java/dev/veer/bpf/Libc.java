package dev.veer.bpf;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

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
  private static final MethodHandle VSNPRINTF = Native.downcall(LIBC, "vsnprintf",
      FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS));

  private Libc() {}

  private static final MethodHandle SOCKET = Native.downcallWithErrno(LIBC, "socket",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
  private static final MethodHandle GETSOCKOPT = Native.downcallWithErrno(LIBC, "getsockopt",
      FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
  private static final MethodHandle MMAP = Native.downcallWithErrno(LIBC, "mmap",
      FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
  private static final MethodHandle MUNMAP = Native.downcallWithErrno(LIBC, "munmap",
      FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
  private static final int PROT_READ = 1;
  private static final int PROT_WRITE = 2;
  private static final int MAP_SHARED = 1;
  private static final int AF_INET = 2;
  private static final int SOCK_DGRAM = 2;
  private static final int SOL_SOCKET = 1;
  private static final int SO_NETNS_COOKIE = 71;

  static String strerror(int errno) {
    try {
      return Native.string((MemorySegment) STRERROR.invokeExact(errno));
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** The interface's index in the calling thread's network namespace, or 0 if there is none. */
  static int ifNameToIndex(String ifname) {
    try (Arena arena = Arena.ofConfined()) {
      return (int) IF_NAMETOINDEX.invokeExact(arena.allocateFrom(ifname));
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static int open(String path, int flags) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = Native.callState(arena);
      int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags);
      if (fd < 0) {
        throw new BpfException("open(" + path + ")", Native.errno(state));
      }
      return fd;
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static void close(int fd) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = Native.callState(arena);
      if ((int) CLOSE.invokeExact(state, fd) < 0) {
        throw new BpfException("close(" + fd + ")", Native.errno(state));
      }
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /**
   * The kernel's cookie of the calling thread's network namespace, as BPF programs see it
   * ({@code bpf_get_netns_cookie}); through a socket's SO_NETNS_COOKIE (Linux 5.14+).
   */
  static long netnsCookie() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = Native.callState(arena);
      int fd = (int) SOCKET.invokeExact(state, AF_INET, SOCK_DGRAM, 0);
      if (fd < 0) {
        throw new BpfException("socket(AF_INET, SOCK_DGRAM)", Native.errno(state));
      }
      try {
        MemorySegment cookie = arena.allocate(JAVA_LONG);
        MemorySegment length = arena.allocateFrom(JAVA_INT, 8);
        if ((int) GETSOCKOPT.invokeExact(state, fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, length) < 0) {
          throw new BpfException("getsockopt(SO_NETNS_COOKIE)", Native.errno(state),
              "the kernel is older than 5.14");
        }
        return cookie.get(JAVA_LONG, 0);
      } finally {
        close(fd);
      }
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** Maps {@code length} bytes of {@code fd} shared, readable and writable. */
  @SuppressWarnings("restricted")
  static MemorySegment mmapShared(int fd, long length, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = Native.callState(arena);
      MemorySegment address = (MemorySegment) MMAP.invokeExact(state, MemorySegment.NULL, length,
          PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0L);
      if (address.address() == -1L) {
        throw new BpfException("mmap(" + what + ")", Native.errno(state));
      }
      return address.reinterpret(length);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  static void munmap(MemorySegment mapping, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = Native.callState(arena);
      if ((int) MUNMAP.invokeExact(state, mapping, mapping.byteSize()) < 0) {
        throw new BpfException("munmap(" + what + ")", Native.errno(state));
      }
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** Moves the calling thread (only it) into the namespace {@code fd} refers to. */
  static void setns(int fd, int nstype, String what) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = Native.callState(arena);
      if ((int) SETNS.invokeExact(state, fd, nstype) < 0) {
        throw new BpfException("setns(" + what + ")", Native.errno(state));
      }
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }

  /** Formats into {@code buffer}; returns the length the full text needs, as C's vsnprintf. */
  static int vsnprintf(MemorySegment buffer, long size, MemorySegment format, MemorySegment vaList) {
    try {
      return (int) VSNPRINTF.invokeExact(buffer, size, format, vaList);
    } catch (Throwable t) {
      throw Native.rethrow(t);
    }
  }
}
