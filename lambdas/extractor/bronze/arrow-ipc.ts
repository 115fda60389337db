// Writes an Arrow IPC stream (schema message, one record batch, end-of-stream) for flat columns
// (Utf8, Int64/Timestamp) straight from the bronze writer's buffers into one reusable buffer, the
// byte layout apache-arrow's RecordBatchStreamWriter produces. Why not that writer: it needs each
// column in one contiguous buffer and then concatenates everything into a fresh allocation per
// part; the resource text lives in pooled blocks instead, and is copied exactly once here. Fewer
// large allocations also keep the native heap from fragmenting (RSS stays bounded).
// parquet-wasm's Table.fromIPCStream reads the result.
import type * as arrow from "apache-arrow";
import { BufferRegion, FieldNode, Message, RecordBatch as RecordBatchHeader } from "apache-arrow/ipc/metadata/message";

/** Bytes of a column buffer: one array, or a list of blocks with the bytes used in each. */
export type ColumnBytes = Uint8Array | { blocks: readonly Uint8Array[]; used: readonly number[]; total: number };

export interface IpcColumn {
  length: number;
  nullCount: number;
  /** validity bitmap (only when nullCount > 0) */
  validity?: Uint8Array;
  /** Utf8: offsets (Int32, length+1, from 0); absent for fixed-width columns */
  offsets?: Int32Array;
  /** Utf8: the text bytes; Int64/Timestamp: the values */
  data: ColumnBytes | BigInt64Array;
}

const CONTINUATION = 0xffffffff;
const pad8 = (n: number): number => (n + 7) & ~7;

function byteLengthOf(b: ColumnBytes | BigInt64Array | Int32Array): number {
  if (b instanceof Uint8Array || b instanceof BigInt64Array || b instanceof Int32Array) return b.byteLength;
  return b.total;
}

function asBytes(b: Uint8Array | BigInt64Array | Int32Array): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export class IpcStreamWriter {
  private buf = new Uint8Array(0);
  private readonly schemaMessages = new WeakMap<arrow.Schema, Uint8Array>();

  /** The IPC stream of one record batch of `columns` (in schema order); valid until the next call. */
  encode(schema: arrow.Schema, numRows: number, columns: readonly IpcColumn[]): Uint8Array {
    let schemaFb = this.schemaMessages.get(schema);
    if (!schemaFb) {
      schemaFb = Message.encode(Message.from(schema));
      this.schemaMessages.set(schema, schemaFb);
    }
    const nodes: FieldNode[] = [];
    const regions: BufferRegion[] = [];
    const buffers: Array<ColumnBytes | BigInt64Array | Int32Array | undefined> = [];
    let body = 0;
    const add = (b: ColumnBytes | BigInt64Array | Int32Array | undefined): void => {
      const len = b ? byteLengthOf(b) : 0;
      regions.push(new BufferRegion(body, len));
      buffers.push(b);
      body += pad8(len);
    };
    for (const c of columns) {
      nodes.push(new FieldNode(c.length, c.nullCount));
      add(c.nullCount > 0 ? c.validity : undefined);
      if (c.offsets) add(c.offsets);
      add(c.data);
    }
    const batchFb = Message.encode(Message.from(new RecordBatchHeader(numRows, nodes, regions, null), body));
    const total = pad8(schemaFb.byteLength + 8) + pad8(batchFb.byteLength + 8) + body + 8;
    if (this.buf.byteLength < total) this.buf = new Uint8Array(Math.max(total, Math.floor(this.buf.byteLength * 1.25)));
    const out = this.buf;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let p = 0;
    const frame = (fb: Uint8Array): void => {
      const size = pad8(fb.byteLength + 8);
      view.setUint32(p, CONTINUATION, true);
      view.setInt32(p + 4, size - 8, true);
      out.set(fb, p + 8);
      out.fill(0, p + 8 + fb.byteLength, p + size);
      p += size;
    };
    frame(schemaFb);
    frame(batchFb);
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i];
      const at = p + regions[i].offset;
      let end = at;
      if (b instanceof Uint8Array || b instanceof BigInt64Array || b instanceof Int32Array) {
        out.set(asBytes(b), at);
        end = at + b.byteLength;
      } else if (b) {
        for (let k = 0; k < b.blocks.length; k++) {
          out.set(b.blocks[k].subarray(0, b.used[k]), end);
          end += b.used[k];
        }
      }
      out.fill(0, end, at + pad8(end - at));
    }
    p += body;
    view.setUint32(p, CONTINUATION, true);
    view.setInt32(p + 4, 0, true);
    return out.subarray(0, p + 8);
  }
}
