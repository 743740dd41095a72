package dev.veer.coordinator.sync;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.protobuf.ByteString;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.proto.TableRowsCodec;
import dev.veer.proto.director.v1.ServiceTable;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Rows go on the wire with as many cells as the fullest row holds, one byte a cell up to 255
 * backends, deflated; every form a director may be sent decodes back to the same cells exactly, and
 * rows that do not decode to the table's size are refused.
 */
class RowEncodingTest {
  private static final int ROW_BITS = 10;

  static char[] randomCells(Random random, int most, int backends) {
    char[] cells = new char[(1 << ROW_BITS) * VeerAbi.MAX_HOPS];
    for (int row = 0; row < 1 << ROW_BITS; row++) {
      int hops = row == 517 ? most : 1 + random.nextInt(most);
      for (int hop = 0; hop < hops; hop++) {
        cells[row * VeerAbi.MAX_HOPS + hop] = (char) (1 + random.nextInt(backends));
      }
    }
    return cells;
  }

  static ServiceTable packed(char[] cells, int backends) {
    int rowHops = TableRowsCodec.rowHops(cells, VeerAbi.MAX_HOPS);
    int cellBytes = TableRowsCodec.cellBytes(backends);
    return ServiceTable.newBuilder()
        .setHasTable(true)
        .setRows(
            TableRowsCodec.deflate(
                TableRowsCodec.pack(cells, VeerAbi.MAX_HOPS, rowHops, cellBytes)))
        .setRowHops(rowHops)
        .setCellBytes(cellBytes)
        .setDeflated(true)
        .build();
  }

  @Test
  void everyFormADirectorMayGetDecodesToTheSameCells() {
    Random random = new Random(11);
    for (int backends : new int[] {10, 255, 256, 3000}) {
      for (int most = 1; most <= VeerAbi.MAX_HOPS; most++) {
        char[] cells = randomCells(random, most, backends);
        ServiceTable table = packed(cells, backends);
        assertThat(table.getRowHops()).isEqualTo(most);
        assertThat(table.getCellBytes()).isEqualTo(backends <= 255 ? 1 : 2);
        assertThat(TableRowsCodec.cells(table, ROW_BITS, VeerAbi.MAX_HOPS)).isEqualTo(cells);

        ServiceTable compact = TableCompiler.forDirector(table, ROW_BITS, false, true);
        assertThat(compact.getDeflated()).isFalse();
        assertThat(compact.getRows().size()).isEqualTo((1 << ROW_BITS) * most * 2);
        assertThat(TableRowsCodec.cells(compact, ROW_BITS, VeerAbi.MAX_HOPS)).isEqualTo(cells);

        ServiceTable four = TableCompiler.forDirector(table, ROW_BITS, false, false);
        assertThat(four.getRowHops()).isEqualTo(VeerAbi.MAX_HOPS);
        assertThat(four.getRows().size()).isEqualTo((1 << ROW_BITS) * VeerAbi.MAX_HOPS * 2);
        assertThat(TableRowsCodec.cells(four, ROW_BITS, VeerAbi.MAX_HOPS)).isEqualTo(cells);

        assertThat(TableCompiler.forDirector(table, ROW_BITS, true, true)).isSameAs(table);
      }
    }
    assertThat(TableRowsCodec.rowHops(new char[64 * VeerAbi.MAX_HOPS], VeerAbi.MAX_HOPS))
        .isEqualTo(1);
  }

  @Test
  void rowsThatDoNotDecodeToTheTablesSizeAreRefused() {
    char[] cells = randomCells(new Random(5), 2, 10);
    ServiceTable table = packed(cells, 10);
    int size = (1 << ROW_BITS) * 2;
    ServiceTable longer =
        table.toBuilder().setRows(TableRowsCodec.deflate(new byte[size + 1])).build();
    ServiceTable shorter =
        table.toBuilder().setRows(TableRowsCodec.deflate(new byte[size - 1])).build();
    ServiceTable corrupt =
        table.toBuilder().setRows(ByteString.copyFromUtf8("not a deflate stream")).build();
    ServiceTable rawShort =
        table.toBuilder().setDeflated(false).setRows(ByteString.copyFrom(new byte[7])).build();
    for (ServiceTable bad : new ServiceTable[] {longer, shorter, corrupt, rawShort}) {
      assertThatThrownBy(() -> TableRowsCodec.cells(bad, ROW_BITS, VeerAbi.MAX_HOPS))
          .isInstanceOf(IllegalArgumentException.class);
    }
    ServiceTable badWidth = table.toBuilder().setCellBytes(3).build();
    assertThatThrownBy(() -> TableRowsCodec.cells(badWidth, ROW_BITS, VeerAbi.MAX_HOPS))
        .hasMessageContaining("1 or 2 bytes");
  }
}
