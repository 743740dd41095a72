package dev.veer.metrics;

import com.google.common.collect.ImmutableList;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Counts a gRPC server's calls by method: started, finished by status code, and open now (a stream
 * stays open for as long as its peer follows). Put it outermost, so that calls an authorizer
 * refuses are counted with their code too.
 */
public final class GrpcServerMetrics implements ServerInterceptor {
  private final String prefix;
  private final ConcurrentMap<String, LongAdder> started = new ConcurrentHashMap<>();
  private final ConcurrentMap<List<String>, LongAdder> handled = new ConcurrentHashMap<>();
  private final ConcurrentMap<String, AtomicLong> open = new ConcurrentHashMap<>();

  /** Metrics named {@code <prefix>_grpc_...}, e.g. prefix {@code veer_coordinator}. */
  public GrpcServerMetrics(String prefix) {
    this.prefix = prefix;
  }

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    started.computeIfAbsent(method, m -> new LongAdder()).increment();
    Call counted = new Call(method);
    ServerCall.Listener<Q> listener;
    try {
      listener =
          next.startCall(
              new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
                @Override
                public void close(Status status, Metadata trailers) {
                  counted.finish(status.getCode());
                  super.close(status, trailers);
                }
              },
              headers);
    } catch (RuntimeException e) {
      counted.finish(Status.Code.UNKNOWN);
      throw e;
    }
    return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
      @Override
      public void onCancel() {
        counted.finish(Status.Code.CANCELLED);
        super.onCancel();
      }
    };
  }

  /** One call, counted as finished once whichever of close and cancel comes first. */
  private final class Call {
    private final String method;
    private final AtomicLong openOfMethod;
    private final AtomicBoolean finished = new AtomicBoolean();

    Call(String method) {
      this.method = method;
      this.openOfMethod = open.computeIfAbsent(method, m -> new AtomicLong());
      openOfMethod.incrementAndGet();
    }

    void finish(Status.Code code) {
      if (finished.compareAndSet(false, true)) {
        openOfMethod.decrementAndGet();
        handled.computeIfAbsent(List.of(method, code.name()), k -> new LongAdder()).increment();
      }
    }
  }

  /** The three families, for a daemon's metrics endpoint. */
  public List<Metric> metrics() {
    List<Metric.Sample> startedSamples = new ArrayList<>();
    started.forEach(
        (method, n) -> startedSamples.add(Metric.Sample.of(Map.of("method", method), n.sum())));
    List<Metric.Sample> handledSamples = new ArrayList<>();
    handled.forEach(
        (key, n) ->
            handledSamples.add(
                Metric.Sample.of(Map.of("method", key.get(0), "code", key.get(1)), n.sum())));
    List<Metric.Sample> openSamples = new ArrayList<>();
    open.forEach(
        (method, n) -> openSamples.add(Metric.Sample.of(Map.of("method", method), n.get())));
    return ImmutableList.of(
        Metric.counter(
            prefix + "_grpc_calls_started_total", "gRPC calls started, by method.", startedSamples),
        Metric.counter(
            prefix + "_grpc_calls_handled_total",
            "gRPC calls finished, by method and status code (CANCELLED: the peer went away).",
            handledSamples),
        Metric.gauge(
            prefix + "_grpc_calls_open",
            "gRPC calls open now (streams included), by method.",
            openSamples));
  }
}
