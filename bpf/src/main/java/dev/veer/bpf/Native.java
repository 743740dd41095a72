package dev.veer.bpf;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/** FFM plumbing shared by {@link Libc} and {@link Libbpf}. */
final class Native {
  static final Linker LINKER = Linker.nativeLinker();

  private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
  private static final VarHandle ERRNO =
      CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
  private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

  private Native() {}

  @SuppressWarnings("restricted")
  static MethodHandle downcall(SymbolLookup library, String symbol, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(find(library, symbol), descriptor);
  }

  /** The handle takes a call-state segment ({@link #callState}) as its first argument. */
  @SuppressWarnings("restricted")
  static MethodHandle downcallWithErrno(SymbolLookup library, String symbol, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(find(library, symbol), descriptor, CAPTURE_ERRNO);
  }

  static MemorySegment callState(Arena arena) {
    return arena.allocate(CALL_STATE);
  }

  static int errno(MemorySegment callState) {
    return (int) ERRNO.get(callState, 0L);
  }

  /** Reads a NUL-terminated C string; null for a NULL pointer. */
  @SuppressWarnings("restricted")
  static String string(MemorySegment pointer) {
    return pointer.equals(MemorySegment.NULL) ? null : pointer.reinterpret(Long.MAX_VALUE).getString(0);
  }

  /** Rethrows what a {@code invokeExact} threw; downcalls themselves throw nothing checked. */
  static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException e) {
      throw e;
    }
    if (t instanceof Error e) {
      throw e;
    }
    throw new IllegalStateException("unexpected checked exception from a native call", t);
  }

  private static MemorySegment find(SymbolLookup library, String symbol) {
    return library.find(symbol).orElseThrow(
        () -> new IllegalStateException("native symbol " + symbol + " not found"));
  }
}
