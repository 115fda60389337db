// The bronze writer of one work unit (one bulk file, one batch of patients, one NDJSON file):
// lines or resources in, Parquet part files out, under
//   {bronze}/resource_type=T/ingest_date=D/run_id=R/part-N.parquet
// and the lines it could not keep under {bronze}/_rejects/run_id=R/part-N.parquet (with the reason).
//
// Part numbers are unit-deterministic (unitIndex * 1000 + k), so processing the same unit again
// overwrites the same files: no duplicate rows. An attempt that fails part-way calls abort(),
// which removes the parts it already wrote. Memory is bounded: a type's rows are written out as
// a part once they hold `partRawBytes` of resource text, and a process-wide MemoryBudget makes
// the writer with the most buffered data flush when all writers together hold too much.
import { bronzePartPath, LAKE_CONTRACT } from "../../../lib/core/lake-contract";
import { joinUri, type Storage } from "../../../lib/core/storage";
import { BronzeRows, encodeRejects, type RejectRow } from "./bronze-parquet";
import type { LineSink } from "./ndjson-lines";
import { classifyResource, LAST_SCAN, REJECT_REASONS, scannedId, type RejectReason } from "./resource-row";

/** Parts per unit and type (part numbers unitIndex*1000 .. +999). */
export const PARTS_PER_UNIT = 1000;
/**
 * Resource text per part file, at most (the zstd file is ~15x smaller). This bounds memory: a
 * part is encoded in one go, so its text is held about three times over meanwhile (rows, Arrow
 * IPC, WebAssembly), and WebAssembly memory never shrinks once grown.
 */
export const DEFAULT_PART_RAW_BYTES = 8 << 20;
/** A rejected line is kept up to this many bytes. */
const REJECT_LINE_KEEP = 64 << 10;

/** Bytes of resource text buffered by all writers of this process. */
export class MemoryBudget {
  private held = 0;
  constructor(readonly limitBytes = 48 << 20) {}
  add(n: number): void {
    this.held += n;
  }
  get bytes(): number {
    return this.held;
  }
  get exceeded(): boolean {
    return this.held > this.limitBytes;
  }
}
export const PROCESS_MEMORY_BUDGET = new MemoryBudget(24 << 20);

export interface BronzeLocation {
  storage: Storage;
  /** The bronze layer's URI (file:///…/bronze or s3://bucket/bronze). */
  bronzeUri: string;
  runId: string;
  /** YYYY-MM-DD (UTC) of the run's start: every part of a run shares it. */
  ingestDate: string;
}

export interface UnitWriterOptions extends BronzeLocation {
  unitIndex: number;
  /** The `source` column: where the rows came from (a file URL path, a search, a file name). */
  source: string;
  /** Types asked for; others are rejected as unexpected_type. */
  wanted?: ReadonlySet<string>;
  /** config.extraction.bronzePartMaxBytes: no part file exceeds it. */
  partMaxBytes?: number;
  partRawBytes?: number;
  budget?: MemoryBudget;
  now?: () => number;
  /** The type to count a reject under when the line does not tell (a bulk file's manifest type). */
  defaultType?: string;
  /** Called for every row kept (progress display); undone by abort(). */
  onRows?: (resourceType: string, n: number) => void;
}

export interface TypeCounts {
  resources: number;
  /** Bytes of resource text kept. */
  bytes: number;
  parts: number;
  rejected: number;
}

export interface UnitWriteResult {
  types: Record<string, TypeCounts>;
  /** Rejected lines per reason. */
  rejects: Partial<Record<RejectReason, number>>;
  rejected: number;
  /** Lines whose resource type could not be told. */
  rejectedUntyped: number;
  /** Bronze-relative paths of every file written (parts and rejects). */
  files: string[];
  /** Bytes of part files written. */
  fileBytes: number;
}

export class UnitWriter implements LineSink {
  private readonly rows = new Map<string, BronzeRows>();
  private readonly partsWritten = new Map<string, number>();
  private readonly counts: Record<string, TypeCounts> = {};
  private readonly rejectRows: RejectRow[] = [];
  private readonly rejectCounts: Partial<Record<RejectReason, number>> = {};
  private rejectedUntyped = 0;
  private readonly written: string[] = [];
  private fileBytes = 0;
  private readonly partRawBytes: number;
  private readonly budget: MemoryBudget;
  private readonly now: () => number;
  private held = 0;
  private readonly kept = new Map<string, number>();
  /** The `source` of the rows that come next (a unit may read several files). */
  source: string;

  constructor(private readonly o: UnitWriterOptions) {
    this.source = o.source;
    const cap = Math.min(o.partRawBytes ?? DEFAULT_PART_RAW_BYTES, o.partMaxBytes ?? Infinity);
    this.partRawBytes = Math.max(1 << 16, cap);
    this.budget = o.budget ?? PROCESS_MEMORY_BUDGET;
    this.now = o.now ?? Date.now;
  }

  // ------------------------------------------------------------------ input

  /** One NDJSON line (LineSink). */
  line(b: Buffer, start: number, end: number, lineNo: number, utf8Ok: boolean): void {
    if (!utf8Ok) return this.reject("invalid_utf8", null, lineNo, b.toString("utf8", start, Math.min(end, start + REJECT_LINE_KEEP)));
    this.resource(b, start, end, lineNo);
  }

  /** A line longer than the cap (LineSink). */
  oversize(lineNo: number, bytes: number, head: Buffer): void {
    const text = head.toString("utf8");
    this.reject("line_too_large", typeOfHead(text), lineNo, `${bytes} bytes; starts: ${text}`);
  }

  /** One resource's JSON text b[start, end) (a line, or a Bundle entry's resource). */
  resource(
    b: Buffer,
    start: number,
    end: number,
    lineNo: number | null,
    accept?: (resourceType: string, id: string) => boolean,
  ): { resourceType: string; parse: () => Record<string, unknown> } | undefined {
    const c = classifyResource(b, start, end, this.o.wanted);
    if (c.kind === "reject") {
      this.reject(c.reason, c.resourceType, lineNo, b.toString("utf8", start, Math.min(end, start + REJECT_LINE_KEEP)));
      return undefined;
    }
    const t = c.resourceType;
    if (accept && !accept(t, c.kind === "scanned" ? scannedId(b) : c.keys.id)) return undefined;
    let r = this.rows.get(t);
    if (!r) {
      r = this.newRows(t);
      this.rows.set(t, r);
    }
    if (c.kind === "scanned") r.appendScanned(b, start, end, LAST_SCAN, this.source);
    else r.append(b, start, end, c.keys, this.source);
    const len = end - start;
    this.held += len;
    this.budget.add(len);
    return {
      resourceType: t,
      parse: c.kind === "parsed" ? c.parse : () => JSON.parse(b.toString("utf8", start, end)) as Record<string, unknown>,
    };
  }

  /** Records a rejected line (reason, type when known). */
  reject(reason: RejectReason, resourceType: string | null, lineNo: number | null, line: string | null): void {
    // Count under the type where it can be told: the line's own start, else the file's declared type.
    if (!resourceType && reason !== "unexpected_type")
      resourceType = (line !== null ? typeOfHead(line) : null) ?? this.o.defaultType ?? null;
    this.rejectRows.push({ source: this.source, resourceType, lineNumber: lineNo, reason, line });
    this.rejectCounts[reason] = (this.rejectCounts[reason] ?? 0) + 1;
    if (resourceType) this.countsOf(resourceType).rejected += 1;
    else this.rejectedUntyped += 1;
  }

  /** Resource text buffered by this writer. */
  get bufferedBytes(): number {
    return this.held;
  }

  // ------------------------------------------------------------------ output

  /** Reports the rows kept since the last call to `onRows` (once per chunk, not per row). */
  private reportRows(): void {
    if (!this.o.onRows) return;
    for (const [t, r] of this.rows) {
      const total = (this.counts[t]?.resources ?? 0) + r.rows;
      const delta = total - (this.kept.get(t) ?? 0);
      if (delta !== 0) {
        this.kept.set(t, total);
        this.o.onRows(t, delta);
      }
    }
  }

  /** Writes out the types whose rows reached the part size, or the largest when memory is short. */
  async flushFull(): Promise<void> {
    this.reportRows();
    for (const [t, r] of this.rows) if (r.bytes >= this.partRawBytes) await this.writePart(t, r, true);
    if (this.budget.exceeded && this.held > 0) {
      let largest: [string, BronzeRows] | undefined;
      for (const e of this.rows) if (!largest || e[1].bytes > largest[1].bytes) largest = e;
      // Written early to free memory: its buffer is released too (it may be a rare type).
      if (largest && largest[1].rows > 0) await this.writePart(largest[0], largest[1], false);
    }
  }

  /** Writes every remaining row and the rejects; returns what was written. */
  async finish(): Promise<UnitWriteResult> {
    this.reportRows();
    for (const [t, r] of this.rows) if (r.rows > 0) await this.writePart(t, r, false);
    this.rows.clear();
    if (this.rejectRows.length > 0) {
      const rel = `${LAKE_CONTRACT.bronze.rejectsDir}/run_id=${this.o.runId}/part-${String(this.o.unitIndex * PARTS_PER_UNIT).padStart(5, "0")}.parquet`;
      const bytes = encodeRejects(this.o.runId, this.rejectRows, this.now());
      await this.o.storage.write(joinUri(this.o.bronzeUri, rel), bytes);
      this.written.push(rel);
    }
    const rejected = this.rejectRows.length;
    return {
      types: this.counts,
      rejects: { ...this.rejectCounts },
      rejected,
      rejectedUntyped: this.rejectedUntyped,
      files: [...this.written],
      fileBytes: this.fileBytes,
    };
  }

  /** Abandons this attempt: drops buffered rows and deletes the files it wrote. */
  async abort(): Promise<void> {
    if (this.o.onRows) for (const [t, n] of this.kept) this.o.onRows(t, -n);
    this.kept.clear();
    this.budget.add(-this.held);
    this.held = 0;
    for (const r of this.rows.values()) r.clear();
    this.rows.clear();
    for (const rel of this.written) await this.o.storage.delete(joinUri(this.o.bronzeUri, rel)).catch(() => undefined);
    this.written.length = 0;
  }

  private newRows(t: string): BronzeRows {
    return new BronzeRows(t, this.o.runId);
  }

  private countsOf(t: string): TypeCounts {
    return (this.counts[t] ??= { resources: 0, bytes: 0, parts: 0, rejected: 0 });
  }

  /** Writes the rows of type t as the next part; `keep`: the type stays open for more rows. */
  private async writePart(t: string, r: BronzeRows, keep: boolean): Promise<void> {
    const k = this.partsWritten.get(t) ?? 0;
    if (k >= PARTS_PER_UNIT) throw new Error(`unit ${this.o.unitIndex} wrote ${PARTS_PER_UNIT} parts of ${t}: raise the part size`);
    this.partsWritten.set(t, k + 1);
    const rel = bronzePartPath(t, this.o.ingestDate, this.o.runId, this.o.unitIndex * PARTS_PER_UNIT + k);
    const bytes = r.encode(this.now());
    const c = this.countsOf(t);
    c.resources += r.rows;
    c.bytes += r.bytes;
    c.parts += 1;
    this.held -= r.bytes;
    this.budget.add(-r.bytes);
    // The encoded file holds copies of everything: the rows' blocks go back to the pool.
    r.clear();
    if (!keep) this.rows.delete(t);
    await this.o.storage.write(joinUri(this.o.bronzeUri, rel), bytes);
    this.written.push(rel);
    this.fileBytes += bytes.length;
  }
}

const HEAD_TYPE = /^\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]{1,64})"/;

/** The resourceType a (possibly broken) line starts with, if it does. */
export function typeOfHead(line: string): string | null {
  const m = HEAD_TYPE.exec(line);
  return m ? m[1] : null;
}

/** Every reject reason with a zero count (for manifests that list them all). */
export function zeroRejects(): Record<RejectReason, number> {
  return Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
}
