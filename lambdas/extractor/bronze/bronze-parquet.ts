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
import { contentDigestWithoutVersioning, rawContentDigest } from "./content-hash";
import type { ScannedResource } from "./json-scan";
import { patientIdSpan, type RejectReason, type RowKeys } from "./resource-row";

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

/** Variable-length byte values (Utf8) in one growable buffer, nulls allowed; reused after each part. */
export class VarBytes {
  private data: Buffer;
  private offsets = new Int32Array(1025);
  private validity: Uint8Array | undefined;
  length = 0;
  bytes = 0;
  nulls = 0;

  constructor(initialBytes = 64 << 10) {
    this.data = Buffer.allocUnsafe(initialBytes);
  }

  private room(n: number): void {
    if (this.bytes + n > this.data.length) {
      const next = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.bytes + n));
      this.data.copy(next, 0, 0, this.bytes);
      this.data = next;
    }
  }

  private next(valid: boolean): void {
    if (this.length + 1 >= this.offsets.length) {
      const o = new Int32Array(this.offsets.length * 2);
      o.set(this.offsets);
      this.offsets = o;
    }
    if (!valid && !this.validity) {
      // First null: every row so far was valid.
      this.validity = new Uint8Array(this.offsets.length >> 3).fill(0xff);
    }
    if (this.validity) {
      if (this.validity.length * 8 <= this.length) {
        const v = new Uint8Array(this.validity.length * 2);
        v.set(this.validity);
        this.validity = v;
      }
      const i = this.length;
      if (valid) this.validity[i >> 3] |= 1 << (i & 7);
      else {
        this.validity[i >> 3] &= ~(1 << (i & 7));
        this.nulls++;
      }
    }
    this.offsets[++this.length] = this.bytes;
  }

  appendSpan(b: Buffer, s: number, e: number): void {
    this.room(e - s);
    this.bytes += b.copy(this.data, this.bytes, s, e);
    this.next(true);
  }

  /** prefix then b[s, e) as one value (e.g. "Patient/" + an id). */
  appendPrefixed(prefix: Buffer, b: Buffer, s: number, e: number): void {
    this.room(prefix.length + e - s);
    this.bytes += prefix.copy(this.data, this.bytes);
    this.bytes += b.copy(this.data, this.bytes, s, e);
    this.next(true);
  }

  appendString(v: string | null): void {
    if (v === null) return this.appendNull();
    this.room(Buffer.byteLength(v));
    this.bytes += this.data.write(v, this.bytes, "utf8");
    this.next(true);
  }

  appendNull(): void {
    this.next(false);
  }

  column(): IpcColumn {
    const n = this.length;
    const validity = this.validity && this.nulls > 0 ? this.validity.subarray(0, (n + 7) >> 3) : undefined;
    return {
      length: n,
      nullCount: this.nulls,
      validity,
      offsets: this.offsets.subarray(0, n + 1),
      data: this.data.subarray(0, this.bytes),
    };
  }

  clear(): void {
    this.length = 0;
    this.bytes = 0;
    this.nulls = 0;
    this.validity = undefined;
  }
}

const HEX = Buffer.from("0123456789abcdef");
const PATIENT_PREFIX = Buffer.from("Patient/");

/** content_hash: 64 hex characters per row, written from the digest bytes (no string per row). */
class HexColumn {
  private data = Buffer.allocUnsafe(64 * 1024);
  length = 0;

  appendDigest(d: Uint8Array): void {
    if ((this.length + 1) * 64 > this.data.length) {
      const next = Buffer.allocUnsafe(this.data.length * 2);
      this.data.copy(next, 0, 0, this.length * 64);
      this.data = next;
    }
    let p = this.length * 64;
    for (let i = 0; i < 32; i++) {
      const x = d[i];
      this.data[p++] = HEX[x >> 4];
      this.data[p++] = HEX[x & 15];
    }
    this.length++;
  }

  appendHex(hex: string): void {
    this.appendDigest(Buffer.from(hex, "hex"));
  }

  column(): IpcColumn {
    const n = this.length;
    const offsets = new Int32Array(n + 1);
    for (let i = 1; i <= n; i++) offsets[i] = i * 64;
    return { length: n, nullCount: 0, offsets, data: this.data.subarray(0, n * 64) };
  }

  clear(): void {
    this.length = 0;
  }
}

/** The rows of one bronze part file being gathered (one resource type, one run). */
export class BronzeRows {
  private readonly resource: BlockColumn;
  private readonly ids = new VarBytes();
  private readonly versions = new VarBytes(16 << 10);
  private readonly patients = new VarBytes();
  private readonly hashes = new HexColumn();
  private lastUpdated = new Float64Array(1024);
  /** Per row: an index into sourceList (usually all 0: then a constant column). */
  private sourceIds = new Int32Array(1024);
  private sourceList: string[] = [];

  constructor(
    readonly resourceType: string,
    readonly runId: string,
    pool: BlockPool = BLOCK_POOL,
  ) {
    this.resource = new BlockColumn(pool);
  }

  get rows(): number {
    return this.resource.length;
  }
  /** Bytes of resource text held. */
  get bytes(): number {
    return this.resource.bytes;
  }

  private common(b: Buffer, start: number, end: number, lastUpdatedMs: number | null, source: string): void {
    const i = this.resource.length;
    if (i >= this.lastUpdated.length) {
      const l = new Float64Array(this.lastUpdated.length * 2);
      l.set(this.lastUpdated);
      this.lastUpdated = l;
      const si = new Int32Array(this.sourceIds.length * 2);
      si.set(this.sourceIds);
      this.sourceIds = si;
    }
    this.lastUpdated[i] = lastUpdatedMs === null ? NaN : lastUpdatedMs;
    let k = this.sourceList.length - 1;
    if (k < 0 || this.sourceList[k] !== source) {
      k = this.sourceList.indexOf(source);
      if (k < 0) k = this.sourceList.push(source) - 1;
    }
    this.sourceIds[i] = k;
    this.resource.append(b, start, end);
  }

  /** A row whose keys are already strings (the JSON.parse path). */
  append(b: Buffer, start: number, end: number, k: RowKeys, source: string): void {
    this.ids.appendString(k.id);
    this.versions.appendString(k.versionId);
    this.patients.appendString(k.patientRef);
    this.hashes.appendHex(k.contentHash);
    this.common(b, start, end, k.lastUpdatedMs, source);
  }

  /**
   * A row straight from the JSON scanner's positions (the fast path): the keys are copied as
   * bytes from the line, the hash written from its digest; no string is made per row.
   */
  appendScanned(b: Buffer, start: number, end: number, scan: ScannedResource, source: string): void {
    this.ids.appendSpan(b, scan.idS + 1, scan.idE - 1);
    if (scan.verS >= 0) this.versions.appendSpan(b, scan.verS + 1, scan.verE - 1);
    else this.versions.appendNull();
    let patient: [number, number] | undefined;
    if (this.resourceType === "Patient") patient = [scan.idS + 1, scan.idE - 1];
    else for (let k = 0; k < 3 && !patient; k++) if (scan.refS[k] >= 0) patient = patientIdSpan(b, scan.refS[k] + 1, scan.refE[k] - 1);
    if (patient) this.patients.appendPrefixed(PATIENT_PREFIX, b, patient[0], patient[1]);
    else this.patients.appendNull();
    this.hashes.appendDigest(
      scan.metaVersioned
        ? contentDigestWithoutVersioning(
            b,
            start,
            end,
            { start: scan.metaS, end: scan.metaE, valueStart: scan.metaVS, commaBefore: scan.metaCB, commaAfter: scan.metaCA },
            scan.keep(),
          )
        : rawContentDigest(b, start, end),
    );
    let lastUpdatedMs: number | null = null;
    if (scan.luS >= 0) {
      const t = Date.parse(b.toString("latin1", scan.luS + 1, scan.luE - 1));
      if (!Number.isNaN(t)) lastUpdatedMs = t;
    }
    this.common(b, start, end, lastUpdatedMs, source);
  }

  /** The Parquet file of these rows (column order of the lake contract). */
  encode(ingestedAtMs: number): Uint8Array {
    const n = this.rows;
    const lu: Array<number | null> = [];
    for (let i = 0; i < n; i++) lu.push(Number.isNaN(this.lastUpdated[i]) ? null : this.lastUpdated[i]);
    let source: IpcColumn;
    if (this.sourceList.length <= 1) source = constantUtf8Column(this.sourceList[0] ?? "", n);
    else {
      const values: string[] = [];
      for (let i = 0; i < n; i++) values.push(this.sourceList[this.sourceIds[i]]);
      source = utf8Column(values);
    }
    const byName: Record<string, IpcColumn> = {
      resource_type: constantUtf8Column(this.resourceType, n),
      id: this.ids.column(),
      version_id: this.versions.column(),
      last_updated: int64Column(lu, 1000),
      content_hash: this.hashes.column(),
      patient_ref: this.patients.column(),
      run_id: constantUtf8Column(this.runId, n),
      source,
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
    this.ids.clear();
    this.versions.clear();
    this.patients.clear();
    this.hashes.clear();
    this.sourceList = [];
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
