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
import java.util.function.Predicate;
import java.util.function.Supplier;

/** FFM plumbing shared by {@link Libc} and {@link Libbpf}. */
final class Native {
  static final Linker LINKER = Linker.nativeLinker();

  /** For failures that need no detail beyond the operation and errno. */
  static final Supplier<String> NO_DETAIL = () -> "";

  private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
  private static final VarHandle ERRNO =
      CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
  private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

  private Native() {}

  /** A downcall returning a reference (pointer or nothing); see {@link #call}. */
  @FunctionalInterface
  interface Call<T> {
    T invoke() throws Throwable;
  }

  /** A downcall returning a C int; see {@link #callInt}. */
  @FunctionalInterface
  interface IntCall {
    int invoke() throws Throwable;
  }

  /** A downcall through a {@link #downcallWithErrno} handle, given the call state to fill. */
  @FunctionalInterface
  interface ErrnoCall<T> {
    T invoke(MemorySegment callState) throws Throwable;
  }

  /**
   * Makes a downcall. {@code invokeExact} declares Throwable; a downcall throws nothing checked.
   */
  static <T> T call(Call<T> call) {
    try {
      return call.invoke();
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@link #call} for a C int, unboxed. */
  static int callInt(IntCall call) {
    try {
      return call.invoke();
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * Makes a downcall of a function that reports failure through errno (libc, and libbpf's functions
   * returning pointers). A result {@code failed} accepts is thrown as the BpfException of {@code
   * operation} with the errno the call left and {@code detail}.
   */
  static <T> T callOrThrow(
      String operation, Predicate<? super T> failed, Supplier<String> detail, ErrnoCall<T> call) {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = arena.allocate(CALL_STATE);
      T result = call(() -> call.invoke(state));
      if (failed.test(result)) {
        throw new BpfException(operation, (int) ERRNO.get(state, 0L), detail.get());
      }
      return result;
    }
  }

  @SuppressWarnings("restricted")
  static MethodHandle downcall(SymbolLookup library, String symbol, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(find(library, symbol), descriptor);
  }

  /**
   * The handle takes a call-state segment first, into which it saves errno; see {@link
   * #callOrThrow}.
   */
  @SuppressWarnings("restricted")
  static MethodHandle downcallWithErrno(
      SymbolLookup library, String symbol, FunctionDescriptor descriptor) {
    return LINKER.downcallHandle(find(library, symbol), descriptor, CAPTURE_ERRNO);
  }

  /** Reads a NUL-terminated C string; null for a NULL pointer. */
  @SuppressWarnings("restricted")
  static String string(MemorySegment pointer) {
    return pointer.equals(MemorySegment.NULL)
        ? null
        : pointer.reinterpret(Long.MAX_VALUE).getString(0);
  }

  /** Rethrows what a {@code invokeExact} threw; downcalls themselves throw nothing checked. */
  private static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException e) {
      throw e;
    }
    if (t instanceof Error e) {
      throw e;
    }
    throw new IllegalStateException("unexpected checked exception from a native call", t);
  }

  private static MemorySegment find(SymbolLookup library, String symbol) {
    return library
        .find(symbol)
        .orElseThrow(() -> new IllegalStateException("native symbol " + symbol + " not found"));
  }
}
