// Bronze rows in memory, and their encoding as one Parquet file (zstd) with the columns of the
// lake contract. Built for throughput and bounded memory, since this is the extractor's hot path:
// - the resource text is copied once, as bytes, from the input chunk into pooled 1 MiB blocks
//   (never decoded to a string and encoded back; blocks are recycled, not reallocated per part);
// - short string columns (id, hash, refs) are gathered as JS strings and encoded in one call per
//   column (ASCII fast path); constant columns (resource_type, run_id, source, ingested_at) are
//   filled natively;
// - the Arrow IPC stream is written straight from those buffers into one reusable buffer
//   (arrow-ipc.ts), which parquet-wasm writes with zstd, dictionary encoding only where values
//   repeat, and no statistics on the resource text.
import * as arrow from "apache-arrow";
import * as pw from "parquet-wasm";
import { LAKE_CONTRACT } from "../../../lib/core/lake-contract";
import { IpcStreamWriter, type IpcColumn } from "./arrow-ipc";
import type { RejectReason, RowKeys } from "./resource-row";

const UTC = "UTC";
const tsType = (): arrow.TimestampMicrosecond => new arrow.TimestampMicrosecond(UTC);

function arrowType(t: string): arrow.DataType {
  switch (t) {
    case "string":
      return new arrow.Utf8();
    case "timestamp":
      return tsType();
    case "int64":
      return new arrow.Int64();
    default:
      throw new Error(`lake contract: unknown column type ${t}`);
  }
}

function schemaOf(columns: ReadonlyArray<{ name: string; type: string; nullable: boolean }>): arrow.Schema {
  return new arrow.Schema(columns.map((c) => new arrow.Field(c.name, arrowType(c.type), c.nullable)));
}

export const BRONZE_SCHEMA = schemaOf(LAKE_CONTRACT.bronze.columns);
export const REJECT_SCHEMA = schemaOf(LAKE_CONTRACT.bronze.rejectColumns);

// ---------------------------------------------------------------------------------------------
// Column building blocks.

function validityOf(values: ReadonlyArray<unknown>): { validity: Uint8Array | undefined; nullCount: number } {
  let nullCount = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === null) nullCount++;
  if (nullCount === 0) return { validity: undefined, nullCount };
  const validity = new Uint8Array((values.length + 7) >> 3);
  for (let i = 0; i < values.length; i++) if (values[i] !== null) validity[i >> 3] |= 1 << (i & 7);
  return { validity, nullCount };
}

const NON_ASCII = /[^\x00-\x7f]/;

/** A Utf8 column from JS strings (null = null). */
export function utf8Column(values: ReadonlyArray<string | null>): IpcColumn {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  const joined = values.join("");
  let data: Uint8Array;
  if (!NON_ASCII.test(joined)) {
    // ASCII: byte offsets are character offsets, and one native call encodes the lot.
    data = Buffer.from(joined, "latin1");
    let p = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v !== null) p += v.length;
      offsets[i + 1] = p;
    }
  } else {
    const parts: Buffer[] = [];
    let p = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v !== null) {
        const buf = Buffer.from(v, "utf8");
        parts.push(buf);
        p += buf.length;
      }
      offsets[i + 1] = p;
    }
    data = Buffer.concat(parts, p);
  }
  return { length: n, ...validityOf(values), offsets, data };
}

/** A Utf8 column holding the same value n times (filled natively). */
export function constantUtf8Column(value: string, n: number): IpcColumn {
  const bytes = Buffer.from(value, "utf8");
  const data = n > 0 && bytes.length > 0 ? Buffer.alloc(bytes.length * n, bytes) : new Uint8Array(0);
  const offsets = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) offsets[i] = i * bytes.length;
  return { length: n, nullCount: 0, offsets, data };
}

/** An Int64 / timestamp (µs) column; `scale` multiplies each value (1000: ms -> µs). */
export function int64Column(values: ReadonlyArray<number | null>, scale = 1): IpcColumn {
  const n = values.length;
  const data = new BigInt64Array(n);
  const k = BigInt(scale);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v !== null) data[i] = BigInt(Math.round(v)) * k;
  }
  return { length: n, ...validityOf(values), data };
}

export function constantTimestampColumn(ms: number, n: number): IpcColumn {
  return { length: n, nullCount: 0, data: new BigInt64Array(n).fill(BigInt(Math.round(ms)) * 1000n) };
}

/** Recycled 1 MiB blocks for resource text: allocated once per process, reused for every part. */
export class BlockPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly blockBytes = 1 << 20,
    private readonly maxFree = 24,
  ) {}
  /** A block of at least `min` bytes (lines longer than a block get their own, not pooled). */
  take(min: number): Buffer {
    if (min > this.blockBytes) return Buffer.allocUnsafeSlow(min);
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.blockBytes);
  }
  give(b: Buffer): void {
    if (b.length === this.blockBytes && this.free.length < this.maxFree) this.free.push(b);
  }
}
export const BLOCK_POOL = new BlockPool();

/** Raw UTF-8 byte ranges appended one after another (the resource column), in pooled blocks. */
export class BlockColumn {
  private blocks: Buffer[] = [];
  private used: number[] = [];
  private cur: Buffer | undefined;
  private curUsed = 0;
  private offsets = new Int32Array(1025);
  length = 0;
  bytes = 0;

  constructor(private readonly pool: BlockPool = BLOCK_POOL) {}

  append(b: Buffer, start: number, end: number): void {
    const len = end - start;
    if (!this.cur || this.curUsed + len > this.cur.length) {
      if (this.cur) {
        this.blocks.push(this.cur);
        this.used.push(this.curUsed);
      }
      this.cur = this.pool.take(len);
      this.curUsed = 0;
    }
    b.copy(this.cur, this.curUsed, start, end);
    this.curUsed += len;
    if (this.length + 1 >= this.offsets.length) {
      const next = new Int32Array(this.offsets.length * 2);
      next.set(this.offsets);
      this.offsets = next;
    }
    this.bytes += len;
    this.offsets[++this.length] = this.bytes;
  }

  column(): IpcColumn {
    const blocks = this.cur ? [...this.blocks, this.cur] : this.blocks;
    const used = this.cur ? [...this.used, this.curUsed] : this.used;
    return {
      length: this.length,
      nullCount: 0,
      offsets: this.offsets.subarray(0, this.length + 1),
      data: { blocks, used, total: this.bytes },
    };
  }

  /** Empties the column and gives its blocks back to the pool. */
  release(): void {
    for (const b of this.blocks) this.pool.give(b);
    if (this.cur) this.pool.give(this.cur);
    this.blocks = [];
    this.used = [];
    this.cur = undefined;
    this.curUsed = 0;
    this.length = 0;
    this.bytes = 0;
  }
}

/** One per process: encoding is synchronous, so one buffer serves every writer in turn. */
const IPC = new IpcStreamWriter();

function encodeParquet(schema: arrow.Schema, columns: readonly IpcColumn[], rows: number, props: pw.WriterProperties): Uint8Array {
  const table = pw.Table.fromIPCStream(IPC.encode(schema, rows, columns));
  // writeParquet consumes both the table and the properties.
  return pw.writeParquet(table, props);
}

function bronzeWriterProperties(): pw.WriterProperties {
  let b = new pw.WriterPropertiesBuilder()
    .setCompression(pw.Compression.ZSTD)
    .setDictionaryEnabled(false)
    .setStatisticsEnabled(pw.EnabledStatistics.Chunk)
    .setMaxRowGroupSize(1 << 30)
    .setCreatedBy("fhir-pipeline bronze writer");
  // Constant or repeating values: a dictionary makes them nearly free.
  for (const col of ["resource_type", "run_id", "source", "patient_ref", "version_id"]) b = b.setColumnDictionaryEnabled(col, true);
  // Min/max of whole resources, random ids and hashes prune nothing and cost a comparison per row.
  for (const col of ["resource", "id", "content_hash", "source", "run_id"])
    b = b.setColumnStatisticsEnabled(col, pw.EnabledStatistics.None);
  return b.build();
}

function rejectWriterProperties(): pw.WriterProperties {
  return new pw.WriterPropertiesBuilder()
    .setCompression(pw.Compression.ZSTD)
    .setCreatedBy("fhir-pipeline bronze writer")
    .setColumnStatisticsEnabled("line", pw.EnabledStatistics.None)
    .build();
}

// ---------------------------------------------------------------------------------------------

/** The rows of one bronze part file being gathered (one resource type, one run). */
export class BronzeRows {
  private readonly resource: BlockColumn;
  /** Per row; usually all the same (then written as a constant column). */
  private sources: string[] = [];
  private mixedSources = false;
  private ids: string[] = [];
  private versions: Array<string | null> = [];
  private lastUpdated: Array<number | null> = [];
  private hashes: string[] = [];
  private patients: Array<string | null> = [];

  constructor(
    readonly resourceType: string,
    readonly runId: string,
    pool: BlockPool = BLOCK_POOL,
  ) {
    this.resource = new BlockColumn(pool);
  }

  get rows(): number {
    return this.ids.length;
  }
  /** Bytes of resource text held. */
  get bytes(): number {
    return this.resource.bytes;
  }

  append(b: Buffer, start: number, end: number, k: RowKeys, source: string): void {
    if (this.sources.length > 0 && source !== this.sources[0]) this.mixedSources = true;
    this.sources.push(source);
    this.resource.append(b, start, end);
    this.ids.push(k.id);
    this.versions.push(k.versionId);
    this.lastUpdated.push(k.lastUpdatedMs);
    this.hashes.push(k.contentHash);
    this.patients.push(k.patientRef);
  }

  /** The Parquet file of these rows (column order of the lake contract). */
  encode(ingestedAtMs: number): Uint8Array {
    const n = this.rows;
    const byName: Record<string, IpcColumn> = {
      resource_type: constantUtf8Column(this.resourceType, n),
      id: utf8Column(this.ids),
      version_id: utf8Column(this.versions),
      last_updated: int64Column(this.lastUpdated, 1000),
      content_hash: utf8Column(this.hashes),
      patient_ref: utf8Column(this.patients),
      run_id: constantUtf8Column(this.runId, n),
      source: this.mixedSources ? utf8Column(this.sources) : constantUtf8Column(this.sources[0] ?? "", n),
      ingested_at: constantTimestampColumn(ingestedAtMs, n),
      resource: this.resource.column(),
    };
    return encodeParquet(
      BRONZE_SCHEMA,
      BRONZE_SCHEMA.fields.map((f) => byName[f.name]),
      n,
      bronzeWriterProperties(),
    );
  }

  /** Empties the rows (after a part was written or an attempt was abandoned); blocks go back to the pool. */
  clear(): void {
    this.resource.release();
    this.sources = [];
    this.mixedSources = false;
    this.ids = [];
    this.versions = [];
    this.lastUpdated = [];
    this.hashes = [];
    this.patients = [];
  }
}

export interface RejectRow {
  source: string;
  resourceType: string | null;
  lineNumber: number | null;
  reason: RejectReason;
  /** The line (lossy UTF-8 when it was not UTF-8; the head only when it was too large). */
  line: string | null;
}

/** Rejected lines of one unit, encoded as a Parquet file with the contract's reject columns. */
export function encodeRejects(runId: string, rows: readonly RejectRow[], rejectedAtMs: number): Uint8Array {
  const n = rows.length;
  const byName: Record<string, IpcColumn> = {
    run_id: constantUtf8Column(runId, n),
    source: utf8Column(rows.map((r) => r.source)),
    resource_type: utf8Column(rows.map((r) => r.resourceType)),
    line_number: int64Column(rows.map((r) => r.lineNumber)),
    reason: utf8Column(rows.map((r) => r.reason)),
    line: utf8Column(rows.map((r) => r.line)),
    rejected_at: constantTimestampColumn(rejectedAtMs, n),
  };
  return encodeParquet(
    REJECT_SCHEMA,
    REJECT_SCHEMA.fields.map((f) => byName[f.name]),
    n,
    rejectWriterProperties(),
  );
}

/** Reads a Parquet file back into an arrow Table (tests, tools). */
export function readParquetTable(bytes: Uint8Array): arrow.Table {
  const t = pw.readParquet(bytes);
  return arrow.tableFromIPC(t.intoIPCStream());
}
