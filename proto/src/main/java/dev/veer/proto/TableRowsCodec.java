package dev.veer.proto;

import com.google.protobuf.ByteString;
import dev.veer.proto.director.v1.ServiceTable;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Optional;
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
   * checked for size before anything larger than the table is allocated. A table sent as a delta
   * ({@code base_table_version}) needs the held table's cells: {@link #cells(ServiceTable, int,
   * int, char[])}.
   *
   * @throws IllegalArgumentException if the rows are not 2^{@code rowBits} rows of its encoding, or
   *     are a delta
   */
  public static char[] cells(ServiceTable table, int rowBits, int rowCells) {
    if (table.getBaseTableVersion() != 0) {
      throw new IllegalArgumentException(
          "the rows are a delta against table version "
              + table.getBaseTableVersion()
              + ", and no table is held to apply it to");
    }
    Shape shape = Shape.of(table, rowCells);
    return decode(packedRows(table, rowBits, shape), shape, rowCells);
  }

  /**
   * The cells of {@code table}'s rows, {@code rowCells} a row: {@code baseCells} (the held table at
   * its {@code base_table_version}) with the rows it carries replaced, when it carries only the
   * rows that changed; else as {@link #cells(ServiceTable, int, int)}.
   *
   * @throws IllegalArgumentException if the rows are malformed, or {@code baseCells} are not a
   *     table of 2^{@code rowBits} rows
   */
  public static char[] cells(ServiceTable table, int rowBits, int rowCells, char[] baseCells) {
    if (table.getBaseTableVersion() == 0) {
      return cells(table, rowBits, rowCells);
    }
    Shape shape = Shape.of(table, rowCells);
    int rows = 1 << rowBits;
    if (baseCells.length != rows * rowCells) {
      throw new IllegalArgumentException(
          "the held table has " + baseCells.length / rowCells + " rows, not " + rows);
    }
    int rowBytes = shape.rowHops() * shape.cellBytes();
    byte[] changes =
        table.getDeflated()
            ? inflateAtMost(table.getRows(), rows * (MAX_GAP_BYTES + rowBytes))
            : table.getRows().toByteArray();
    char[] cells = baseCells.clone();
    int at = 0;
    int row = -1;
    while (at < changes.length) {
      long gap = 0;
      int shift = 0;
      int b;
      do {
        if (at == changes.length || shift >= 7 * MAX_GAP_BYTES) {
          throw new IllegalArgumentException("the changed rows end inside a row number");
        }
        b = changes[at++] & 0xff;
        gap |= (long) (b & 0x7f) << shift;
        shift += 7;
      } while ((b & 0x80) != 0);
      row += (int) Math.min(gap + 1, rows);
      if (row >= rows || at + rowBytes > changes.length) {
        throw new IllegalArgumentException(
            "a changed row is past the table's " + rows + " rows, or is cut short");
      }
      int cell = row * rowCells;
      for (int hop = 0; hop < rowCells; hop++) {
        int value = 0;
        if (hop < shape.rowHops()) {
          value = changes[at++] & 0xff;
          if (shape.cellBytes() == 2) {
            value |= (changes[at++] & 0xff) << 8;
          }
        }
        cells[cell + hop] = (char) value;
      }
    }
    return cells;
  }

  /** A changed row's gap is a varint of at most this many bytes (rows are fewer than 2^28). */
  private static final int MAX_GAP_BYTES = 4;

  /**
   * {@code target} sent as only the rows that changed since {@code base} (both whole tables of one
   * service, as compiled): for each changed row, the number of unchanged rows since the previous
   * one (a varint), then its cells in {@code target}'s row_hops and cell_bytes; deflated. Empty
   * when the whole table is as small.
   */
  public static Optional<ServiceTable> delta(
      ServiceTable base, ServiceTable target, int rowBits, int rowCells) {
    if (!base.getHasTable() || !target.getHasTable() || target.getBaseTableVersion() != 0) {
      return Optional.empty();
    }
    Shape shape = Shape.of(target, rowCells);
    ByteArrayOutputStream changes = new ByteArrayOutputStream();
    if (base.getRows().equals(target.getRows())
        && base.getRowHops() == target.getRowHops()
        && base.getCellBytes() == target.getCellBytes()
        && base.getDeflated() == target.getDeflated()) {
      // The same rows (a change that moved none): nothing to decode, nothing changed.
      return Optional.of(withChanges(base, target, deflate(changes.toByteArray())));
    }
    char[] before = cells(base, rowBits, rowCells);
    char[] after = cells(target, rowBits, rowCells);
    int previous = -1;
    for (int row = 0; row < 1 << rowBits; row++) {
      int cell = row * rowCells;
      if (Arrays.equals(before, cell, cell + rowCells, after, cell, cell + rowCells)) {
        continue;
      }
      int gap = row - previous - 1;
      previous = row;
      while (gap >= 0x80) {
        changes.write((gap & 0x7f) | 0x80);
        gap >>>= 7;
      }
      changes.write(gap);
      for (int hop = 0; hop < shape.rowHops(); hop++) {
        changes.write(after[cell + hop]);
        if (shape.cellBytes() == 2) {
          changes.write(after[cell + hop] >>> 8);
        }
      }
    }
    ByteString rows = deflate(changes.toByteArray());
    if (rows.size() >= target.getRows().size()) {
      return Optional.empty();
    }
    return Optional.of(withChanges(base, target, rows));
  }

  private static ServiceTable withChanges(ServiceTable base, ServiceTable target, ByteString rows) {
    return target.toBuilder()
        .setRows(rows)
        .setDeflated(true)
        .setBaseTableVersion(base.getTableVersion())
        .build();
  }

  /** How a table's rows are laid out on the wire. */
  private record Shape(int rowHops, int cellBytes) {
    static Shape of(ServiceTable table, int rowCells) {
      int rowHops = table.getRowHops() == 0 ? rowCells : table.getRowHops();
      int cellBytes = table.getCellBytes() == 0 ? 2 : table.getCellBytes();
      if (rowHops < 1 || rowHops > rowCells) {
        throw new IllegalArgumentException(
            "hops per row are 1.." + rowCells + ", not " + table.getRowHops());
      }
      if (cellBytes != 1 && cellBytes != 2) {
        throw new IllegalArgumentException("cells are 1 or 2 bytes, not " + cellBytes);
      }
      return new Shape(rowHops, cellBytes);
    }
  }

  /** The packed rows {@code table} carries, inflated if need be, checked for size. */
  private static byte[] packedRows(ServiceTable table, int rowBits, Shape shape) {
    int rows = 1 << rowBits;
    int expected = rows * shape.rowHops() * shape.cellBytes();
    byte[] packed =
        table.getDeflated() ? inflate(table.getRows(), expected) : table.getRows().toByteArray();
    if (packed.length != expected) {
      throw new IllegalArgumentException(
          "expected "
              + expected
              + " bytes for "
              + rows
              + " rows of "
              + shape.rowHops()
              + " hops of "
              + shape.cellBytes()
              + " bytes, got "
              + packed.length);
    }
    return packed;
  }

  private static char[] decode(byte[] packed, Shape shape, int rowCells) {
    int rows = packed.length / (shape.rowHops() * shape.cellBytes());
    char[] cells = new char[rows * rowCells];
    int at = 0;
    for (int row = 0; row < rows; row++) {
      for (int hop = 0; hop < shape.rowHops(); hop++) {
        int cell = packed[at++] & 0xff;
        if (shape.cellBytes() == 2) {
          cell |= (packed[at++] & 0xff) << 8;
        }
        cells[row * rowCells + hop] = (char) cell;
      }
    }
    return cells;
  }

  /** Inflates a stream of at most {@code limit} bytes; a longer or broken one is refused. */
  private static byte[] inflateAtMost(ByteString deflated, int limit) {
    Inflater inflater = new Inflater();
    try {
      inflater.setInput(deflated.asReadOnlyByteBuffer());
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buffer = new byte[16 * 1024];
      while (!inflater.finished()) {
        int got = inflater.inflate(buffer);
        if (got == 0
            && !inflater.finished()
            && (inflater.needsInput() || inflater.needsDictionary())) {
          throw new IllegalArgumentException("deflated rows do not end");
        }
        out.write(buffer, 0, got);
        if (out.size() > limit) {
          throw new IllegalArgumentException(
              "deflated rows inflate to more than the " + limit + " bytes a table's changes take");
        }
      }
      return out.toByteArray();
    } catch (DataFormatException e) {
      throw new IllegalArgumentException("deflated rows are corrupt: " + e.getMessage(), e);
    } finally {
      inflater.end();
    }
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
