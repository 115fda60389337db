// Splits a stream of NDJSON bytes into lines without decoding or copying them (a line inside one
// chunk is passed as (buffer, start, end)); only a line that spans chunks is joined. A line longer
// than `maxLineBytes` is not buffered: it is skipped to its end and reported once (with its first
// bytes), so one huge line cannot exhaust memory. Blank lines are ignored; a trailing "\r" is
// dropped. UTF-8 is checked per chunk (one native call), and per line only when a chunk fails.
import { isUtf8 } from "node:buffer";

export interface LineSink {
  /** A complete line b[start, end) (valid UTF-8 unless `utf8Ok` is false), 1-based line number. */
  line(b: Buffer, start: number, end: number, lineNo: number, utf8Ok: boolean): void;
  /** A line longer than the cap: its length and first bytes. */
  oversize(lineNo: number, bytes: number, head: Buffer): void;
}

export const DEFAULT_MAX_LINE_BYTES = 16 << 20;
const HEAD_BYTES = 4096;

export class LineSplitter {
  private carry: Buffer[] = [];
  private carryBytes = 0;
  /** Inside an oversize line: bytes seen so far, and its head. */
  private skipping: { bytes: number; head: Buffer } | undefined;
  private lineNo = 0;
  /** Bytes of input consumed (including newlines). */
  bytes = 0;

  constructor(
    private readonly sink: LineSink,
    private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES,
  ) {}

  get lines(): number {
    return this.lineNo;
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      const nl = chunk.indexOf(0x0a, pos);
      if (nl < 0) {
        this.hold(chunk, pos, len);
        return;
      }
      if (this.skipping || this.carryBytes > 0) {
        this.hold(chunk, pos, nl);
        this.finishHeld();
        pos = nl + 1;
        continue;
      }
      // The fast path: every complete line of this chunk, checked for UTF-8 in one call.
      const lastNl = chunk.lastIndexOf(0x0a);
      const regionOk = isUtf8(chunk.subarray(pos, lastNl));
      let s = pos;
      for (;;) {
        const e = chunk.indexOf(0x0a, s);
        if (e < 0 || e > lastNl) break;
        this.emit(chunk, s, e, regionOk);
        s = e + 1;
      }
      pos = lastNl + 1;
    }
  }

  /** End of input: a last line without a newline is still a line. */
  end(): void {
    if (this.skipping || this.carryBytes > 0) this.finishHeld();
  }

  private hold(chunk: Buffer, s: number, e: number): void {
    if (e <= s) return;
    if (this.skipping) {
      this.skipping.bytes += e - s;
      return;
    }
    if (this.carryBytes + (e - s) > this.maxLineBytes) {
      const joined = Buffer.concat([...this.carry, chunk.subarray(s, Math.min(e, s + HEAD_BYTES))]);
      this.skipping = { bytes: this.carryBytes + (e - s), head: Buffer.from(joined.subarray(0, HEAD_BYTES)) };
      this.carry = [];
      this.carryBytes = 0;
      return;
    }
    // Copy: the chunk's memory may be reused by the stream.
    this.carry.push(Buffer.from(chunk.subarray(s, e)));
    this.carryBytes += e - s;
  }

  private finishHeld(): void {
    if (this.skipping) {
      this.lineNo++;
      this.sink.oversize(this.lineNo, this.skipping.bytes, this.skipping.head);
      this.skipping = undefined;
      return;
    }
    const line = this.carry.length === 1 ? this.carry[0] : Buffer.concat(this.carry, this.carryBytes);
    this.carry = [];
    this.carryBytes = 0;
    this.emit(line, 0, line.length, undefined);
  }

  private emit(b: Buffer, s: number, e: number, regionOk: boolean | undefined): void {
    this.lineNo++;
    if (e > s && b[e - 1] === 0x0d) e--;
    // Blank lines are not records (but keep their number, so line numbers match the file).
    let k = s;
    while (k < e && (b[k] === 0x20 || b[k] === 0x09)) k++;
    if (k === e) return;
    if (e - s > this.maxLineBytes) {
      this.sink.oversize(this.lineNo, e - s, Buffer.from(b.subarray(s, s + HEAD_BYTES)));
      return;
    }
    const ok = regionOk === true ? true : isUtf8(b.subarray(s, e));
    this.sink.line(b, s, e, this.lineNo, ok);
  }
}
