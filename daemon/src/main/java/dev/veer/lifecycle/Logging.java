package dev.veer.lifecycle;

import java.nio.file.Path;
import java.util.logging.LogManager;
import org.slf4j.bridge.SLF4JBridgeHandler;

/**
 * Where a Veer process's logs go: one stream, through SLF4J, including what gRPC and Netty log
 * through java.util.logging.
 */
public final class Logging {
  /** SLF4J simple logger's setting for its output, read when the first logger is made. */
  private static final String LOG_FILE = "org.slf4j.simpleLogger.logFile";

  private Logging() {}

  /** Sends java.util.logging records through SLF4J instead of to stderr. Idempotent. */
  public static synchronized void routeJavaUtilLogging() {
    if (!SLF4JBridgeHandler.isInstalled()) {
      LogManager.getLogManager().reset();
      SLF4JBridgeHandler.install();
    }
  }

  /**
   * Writes every log line of this process to {@code file} rather than stderr. Call it before
   * anything logs: the logger reads the setting once. Returns {@code file}.
   */
  public static Path toFile(Path file) {
    System.setProperty(LOG_FILE, file.toAbsolutePath().toString());
    routeJavaUtilLogging();
    return file;
  }
}
