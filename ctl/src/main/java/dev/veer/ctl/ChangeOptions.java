package dev.veer.ctl;

import dev.veer.proto.admin.v1.BackendImpact;
import dev.veer.proto.admin.v1.ChangeImpact;
import java.io.PrintWriter;
import picocli.CommandLine.Option;

/** How a change is made: for real or as a dry run, and whether it may strand live flows. */
final class ChangeOptions {
  @Option(
      names = "--dry-run",
      description =
          "Only say what the change would do: the rows and live flows it would strand. Nothing is"
              + " written.")
  boolean dryRun;

  @Option(
      names = "--force",
      description =
          "Make the change even if it strands live flows (rows that would lose a backend that still"
              + " has connections there): those connections break.")
  boolean force;

  /** Prints what a change did or would do to live flows. */
  static void printImpact(PrintWriter out, ChangeImpact impact) {
    String verb = impact.getDryRun() ? "would strand" : "stranded";
    if (impact.getFlowsStranded() == 0) {
      out.printf(
          "%s: strands no live flow%s%n",
          impact.getDryRun() ? "dry run, nothing written" : "done",
          impact.getUnreportedCount() > 0
              ? " (no flow report from " + String.join(", ", impact.getUnreportedList()) + ")"
              : "");
      return;
    }
    out.printf(
        "%s %d live flows in %d rows%n",
        impact.getDryRun() ? "dry run, nothing written: the change " + verb : "the change " + verb,
        impact.getFlowsStranded(),
        impact.getRowsStranded());
    for (BackendImpact b : impact.getBackendsList()) {
      out.printf("  %-40s %6d flows in %6d rows%n", b.getAddress(), b.getFlows(), b.getRows());
    }
    if (!impact.getUnreportedList().isEmpty()) {
      out.printf(
          "  no flow report from %s: their flows are not counted%n",
          String.join(", ", impact.getUnreportedList()));
    }
  }
}
