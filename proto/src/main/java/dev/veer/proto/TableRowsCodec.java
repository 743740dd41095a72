package dev.veer.proto;

import com.google.protobuf.ByteString;
import dev.veer.proto.director.v1.ServiceTable;
import java.io.ByteArrayOutputStream;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * The rows of a {@link ServiceTable} on the wire: {@code row_hops} cells a row, each {@code
 * cell_bytes} little-endian bytes (backend index + 1, 0 for none), optionally deflated. In memory a
 * table is {@code rowCells} cells a row (the data plane's row), as chars.
 */
public final class TableRowsCodec {
  private TableRowsCodec() {}

  /** The most hops any row of {@code cells} holds, at least 1. */
  public static int rowHops(char[] cells, int rowCells) {
    int most = 1;
    for (int row = 0; row < cells.length; row += rowCells) {
      for (int hop = rowCells - 1; hop >= most; hop--) {
        if (cells[row + hop] != 0) {
          most = hop + 1;
          break;
        }
      }
    }
    return most;
  }

  /** 1 for a table naming at most 255 backends, else 2. */
  public static int cellBytes(int backends) {
    return backends <= 255 ? 1 : 2;
  }

  /** {@code cells} ({@code rowCells} a row) as {@code rowHops} cells a row of {@code cellBytes}. */
  public static byte[] pack(char[] cells, int rowCells, int rowHops, int cellBytes) {
    int rows = cells.length / rowCells;
    byte[] out = new byte[rows * rowHops * cellBytes];
    int at = 0;
    for (int row = 0; row < cells.length; row += rowCells) {
      for (int hop = 0; hop < rowHops; hop++) {
        char cell = cells[row + hop];
        if (cellBytes == 1) {
          if (cell > 0xff) {
            throw new IllegalArgumentException("cell " + (int) cell + " does not fit one byte");
          }
          out[at++] = (byte) cell;
        } else {
          out[at++] = (byte) cell;
          out[at++] = (byte) (cell >>> 8);
        }
      }
    }
    return out;
  }

  /**
   * {@code packed} deflated (zlib, fastest level: tables are random-looking, levels gain little).
   */
  public static ByteString deflate(byte[] packed) {
    Deflater deflater = new Deflater(Deflater.BEST_SPEED);
    try {
      deflater.setInput(packed);
      deflater.finish();
      ByteArrayOutputStream out = new ByteArrayOutputStream(packed.length / 2 + 64);
      byte[] buffer = new byte[16 * 1024];
      while (!deflater.finished()) {
        out.write(buffer, 0, deflater.deflate(buffer));
      }
      return ByteString.copyFrom(out.toByteArray());
    } finally {
      deflater.end();
    }
  }

  /**
   * The cells of {@code table}'s rows, {@code rowCells} a row, from whichever encoding it carries;
   * checked for size before anything larger than the table is allocated.
   *
   * @throws IllegalArgumentException if the rows are not 2^{@code rowBits} rows of its encoding
   */
  public static char[] cells(ServiceTable table, int rowBits, int rowCells) {
    int rowHops = table.getRowHops() == 0 ? rowCells : table.getRowHops();
    int cellBytes = table.getCellBytes() == 0 ? 2 : table.getCellBytes();
    if (rowHops < 1 || rowHops > rowCells) {
      throw new IllegalArgumentException(
          "hops per row are 1.." + rowCells + ", not " + table.getRowHops());
    }
    if (cellBytes != 1 && cellBytes != 2) {
      throw new IllegalArgumentException("cells are 1 or 2 bytes, not " + cellBytes);
    }
    int rows = 1 << rowBits;
    int expected = rows * rowHops * cellBytes;
    byte[] packed =
        table.getDeflated() ? inflate(table.getRows(), expected) : table.getRows().toByteArray();
    if (packed.length != expected) {
      throw new IllegalArgumentException(
          "expected "
              + expected
              + " bytes for "
              + rows
              + " rows of "
              + rowHops
              + " hops of "
              + cellBytes
              + " bytes, got "
              + packed.length);
    }
    char[] cells = new char[rows * rowCells];
    int at = 0;
    for (int row = 0; row < rows; row++) {
      for (int hop = 0; hop < rowHops; hop++) {
        int cell = packed[at++] & 0xff;
        if (cellBytes == 2) {
          cell |= (packed[at++] & 0xff) << 8;
        }
        cells[row * rowCells + hop] = (char) cell;
      }
    }
    return cells;
  }

  /** Inflates at most {@code expected} bytes; more, or a broken stream, is refused. */
  private static byte[] inflate(ByteString deflated, int expected) {
    Inflater inflater = new Inflater();
    try {
      inflater.setInput(deflated.asReadOnlyByteBuffer());
      byte[] out = new byte[expected];
      int n = 0;
      while (n < expected) {
        int got = inflater.inflate(out, n, expected - n);
        if (got == 0
            && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
          break;
        }
        n += got;
      }
      if (n == expected && !inflater.finished() && inflater.inflate(new byte[1]) > 0) {
        throw new IllegalArgumentException(
            "deflated rows inflate to more than the " + expected + " bytes of the table");
      }
      if (n != expected || !inflater.finished()) {
        throw new IllegalArgumentException(
            "deflated rows inflate to "
                + n
                + " bytes, not the "
                + expected
                + " of the table, or do not end");
      }
      return out;
    } catch (DataFormatException e) {
      throw new IllegalArgumentException("deflated rows are corrupt: " + e.getMessage(), e);
    } finally {
      inflater.end();
    }
  }
}
