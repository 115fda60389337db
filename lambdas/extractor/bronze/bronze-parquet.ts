// Bronze rows in memory, and their encoding as one Parquet file (zstd) with the columns of the
// lake contract. Built for throughput, since this is the extractor's hot path:
// - the resource text is copied once, as bytes, from the input chunk into the column's data
//   buffer (never decoded to a string and encoded back);
// - short string columns (id, hash, refs) are gathered as JS strings and encoded in one call per
//   column (ASCII fast path);
// - the constant columns (resource_type, run_id, source, ingested_at) are filled natively;
// - arrow-js only wraps these buffers (makeData, no builders); parquet-wasm writes them with
//   zstd, dictionary encoding only where values repeat, and no statistics on the resource text.
import * as arrow from "apache-arrow";
import { LAKE_CONTRACT } from "../../../lib/core/lake-contract";
import type { RejectReason, RowKeys } from "./resource-row";

import * as pw from "parquet-wasm";

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

function validityOf(values: ReadonlyArray<unknown>): { bitmap: Uint8Array | undefined; nulls: number } {
  let nulls = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === null) nulls++;
  if (nulls === 0) return { bitmap: undefined, nulls };
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  for (let i = 0; i < values.length; i++) if (values[i] !== null) bitmap[i >> 3] |= 1 << (i & 7);
  return { bitmap, nulls };
}

const NON_ASCII = /[^\x00-\x7f]/;

/** A Utf8 column from JS strings (null = null). */
export function utf8Column(values: ReadonlyArray<string | null>): arrow.Data<arrow.Utf8> {
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
  const { bitmap, nulls } = validityOf(values);
  return arrow.makeData({ type: new arrow.Utf8(), length: n, nullCount: nulls, nullBitmap: bitmap, valueOffsets: offsets, data });
}

/** A Utf8 column holding the same value n times (filled natively). */
export function constantUtf8Column(value: string, n: number): arrow.Data<arrow.Utf8> {
  const bytes = Buffer.from(value, "utf8");
  const data = n > 0 && bytes.length > 0 ? Buffer.alloc(bytes.length * n, bytes) : new Uint8Array(0);
  const offsets = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) offsets[i] = i * bytes.length;
  return arrow.makeData({ type: new arrow.Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data });
}

/** A timestamp (µs, UTC) column from epoch milliseconds (null = null). */
export function timestampColumn(ms: ArrayLike<number | null>, n: number): arrow.Data<arrow.TimestampMicrosecond> {
  const data = new BigInt64Array(n);
  const values: Array<number | null> = [];
  for (let i = 0; i < n; i++) {
    const v = ms[i];
    values.push(v);
    if (v !== null) data[i] = BigInt(Math.round(v)) * 1000n;
  }
  const { bitmap, nulls } = validityOf(values);
  return arrow.makeData({ type: tsType(), length: n, nullCount: nulls, nullBitmap: bitmap, data });
}

export function constantTimestampColumn(ms: number, n: number): arrow.Data<arrow.TimestampMicrosecond> {
  return arrow.makeData({ type: tsType(), length: n, nullCount: 0, data: new BigInt64Array(n).fill(BigInt(Math.round(ms)) * 1000n) });
}

function int64Column(values: ReadonlyArray<number | null>): arrow.Data<arrow.Int64> {
  const n = values.length;
  const data = new BigInt64Array(n);
  for (let i = 0; i < n; i++) if (values[i] !== null) data[i] = BigInt(values[i]!);
  const { bitmap, nulls } = validityOf(values);
  return arrow.makeData({ type: new arrow.Int64(), length: n, nullCount: nulls, nullBitmap: bitmap, data });
}

/** Raw UTF-8 byte ranges appended one after another: the resource column's buffer. */
export class ByteColumn {
  private data: Buffer;
  private offsets: Int32Array;
  length = 0;
  bytes = 0;

  constructor(initialBytes = 1 << 20, initialRows = 1024) {
    this.data = Buffer.allocUnsafe(initialBytes);
    this.offsets = new Int32Array(initialRows + 1);
  }

  append(b: Buffer, start: number, end: number): void {
    const len = end - start;
    if (this.bytes + len > this.data.length) {
      const next = Buffer.allocUnsafe(Math.max(this.data.length * 2, this.bytes + len));
      this.data.copy(next, 0, 0, this.bytes);
      this.data = next;
    }
    if (this.length + 1 >= this.offsets.length) {
      const next = new Int32Array(this.offsets.length * 2);
      next.set(this.offsets);
      this.offsets = next;
    }
    b.copy(this.data, this.bytes, start, end);
    this.bytes += len;
    this.offsets[++this.length] = this.bytes;
  }

  toData(): arrow.Data<arrow.Utf8> {
    return arrow.makeData({
      type: new arrow.Utf8(),
      length: this.length,
      nullCount: 0,
      valueOffsets: this.offsets.subarray(0, this.length + 1),
      data: this.data.subarray(0, this.bytes),
    });
  }
}

function encodeParquet(schema: arrow.Schema, children: arrow.Data[], rows: number, props: () => unknown): Uint8Array {
  const struct = arrow.makeData({ type: new arrow.Struct(schema.fields), length: rows, nullCount: 0, children });
  const batch = new arrow.RecordBatch(schema, struct);
  const ipc = arrow.tableToIPC(new arrow.Table([batch]), "stream");
  const table = pw.Table.fromIPCStream(ipc);
  // writeParquet consumes both the table and the properties: build fresh ones every time.
  return pw.writeParquet(table, props() as pw.WriterProperties);
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
  // Min/max of whole resources is useless and costs a full comparison per row.
  b = b.setColumnStatisticsEnabled("resource", pw.EnabledStatistics.None);
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

/** The rows of one bronze part file being gathered (one resource type, one run, one source). */
export class BronzeRows {
  private readonly resource: ByteColumn;
  private ids: string[] = [];
  private versions: Array<string | null> = [];
  private lastUpdated: Array<number | null> = [];
  private hashes: string[] = [];
  private patients: Array<string | null> = [];

  constructor(
    readonly resourceType: string,
    readonly runId: string,
    readonly source: string,
    expectedBytes = 1 << 20,
  ) {
    this.resource = new ByteColumn(expectedBytes, Math.max(64, expectedBytes >> 9));
  }

  get rows(): number {
    return this.ids.length;
  }
  /** Bytes of resource text held. */
  get bytes(): number {
    return this.resource.bytes;
  }

  append(b: Buffer, start: number, end: number, k: RowKeys): void {
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
    const byName: Record<string, arrow.Data> = {
      resource_type: constantUtf8Column(this.resourceType, n),
      id: utf8Column(this.ids),
      version_id: utf8Column(this.versions),
      last_updated: timestampColumn(this.lastUpdated, n),
      content_hash: utf8Column(this.hashes),
      patient_ref: utf8Column(this.patients),
      run_id: constantUtf8Column(this.runId, n),
      source: constantUtf8Column(this.source, n),
      ingested_at: constantTimestampColumn(ingestedAtMs, n),
      resource: this.resource.toData(),
    };
    return encodeParquet(
      BRONZE_SCHEMA,
      BRONZE_SCHEMA.fields.map((f) => byName[f.name]),
      n,
      bronzeWriterProperties,
    );
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
  const byName: Record<string, arrow.Data> = {
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
    rejectWriterProperties,
  );
}

/** Reads a Parquet file back into an arrow Table (tests, tools). */
export function readParquetTable(bytes: Uint8Array): arrow.Table {
  const t = pw.readParquet(bytes);
  return arrow.tableFromIPC(t.intoIPCStream());
}
