package dev.veer.ctl;

import dev.veer.proto.admin.v1.BackendShare;
import dev.veer.proto.admin.v1.GetTableRequest;
import dev.veer.proto.admin.v1.ServiceTable;
import dev.veer.proto.admin.v1.TableRow;
import java.io.PrintWriter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(
    name = "table",
    description = "A service's forwarding table: each backend's share of rows, and rows.")
final class TableCommand implements Runnable {
  @ParentCommand VeerCtl ctl;

  @Parameters(paramLabel = "SERVICE")
  String service;

  @Option(names = "--from", defaultValue = "0", description = "First row to list (default 0).")
  int from;

  @Option(
      names = "--rows",
      defaultValue = "0",
      description = "Rows to list (default 0: shares only).")
  int rows;

  @Override
  public void run() {
    try (AdminClient client = ctl.client()) {
      ServiceTable table =
          client.call(
              s ->
                  s.getTable(
                      GetTableRequest.newBuilder()
                          .setService(service)
                          .setFirstRow(from)
                          .setMaxRows(rows)
                          .build()));
      ctl.print(
          table,
          () -> {
            PrintWriter out = ctl.out();
            out.printf(
                "%s: table version %d, %d rows%n%n",
                service, table.getTableVersion(), table.getRowCount());
            out.printf(
                "%-40s %12s %8s %12s %8s%n", "BACKEND", "PRIMARY", "SHARE", "SECOND HOP", "SHARE");
            for (BackendShare s : table.getSharesList()) {
              out.printf(
                  "%-40s %12d %7.2f%% %12d %7.2f%%%n",
                  s.getAddress(),
                  s.getPrimaryRows(),
                  100.0 * s.getPrimaryRows() / table.getRowCount(),
                  s.getSecondHopRows(),
                  100.0 * s.getSecondHopRows() / table.getRowCount());
            }
            if (table.getRowsCount() > 0) {
              out.println();
              for (TableRow row : table.getRowsList()) {
                out.printf("%8d  %s%n", row.getRow(), String.join("  ", row.getHopsList()));
              }
            }
          });
    }
  }
}
