package dev.veer.coordinator.sync;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import dev.veer.bpf.abi.VeerAbi;
import dev.veer.proto.director.v1.ServiceTable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Rows go on the wire with as many cells as the fullest row holds, and expand back exactly. */
class RowEncodingTest {
  @Test
  void rowsCarryTheHopsTheFullestRowHoldsAndExpandBackToFourExactly() {
    Random random = new Random(11);
    for (int most = 1; most <= VeerAbi.MAX_HOPS; most++) {
      char[] cells = new char[1024 * VeerAbi.MAX_HOPS];
      for (int row = 0; row < 1024; row++) {
        int hops = row == 517 ? most : 1 + random.nextInt(most);
        for (int hop = 0; hop < hops; hop++) {
          cells[row * VeerAbi.MAX_HOPS + hop] = (char) (1 + random.nextInt(300));
        }
      }
      int rowHops = TableCompiler.rowHops(cells);
      assertThat(rowHops).isEqualTo(most);
      ByteString compact = TableCompiler.encodeRows(cells, rowHops);
      assertThat(compact.size()).isEqualTo(1024 * most * 2);

      ServiceTable expanded =
          TableCompiler.withFullRows(
              ServiceTable.newBuilder()
                  .setHasTable(true)
                  .setRows(compact)
                  .setRowHops(rowHops)
                  .build());
      assertThat(expanded.getRowHops()).isEqualTo(VeerAbi.MAX_HOPS);
      char[] back = new char[cells.length];
      ByteBuffer in = expanded.getRows().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
      in.asCharBuffer().get(back);
      assertThat(back).isEqualTo(cells);
    }
  }

  @Test
  void anEmptyTableStillHasOneHopARow() {
    assertThat(TableCompiler.rowHops(new char[64 * VeerAbi.MAX_HOPS])).isEqualTo(1);
  }
}
