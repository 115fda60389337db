// The TypeScript metrics collector: every step (CLI, local run, Lambda) records its runtime,
// counts, bytes, throughput and latency percentiles here, and `flush` writes them as the metrics
// contract of DESIGN.md (`{lake}/metrics/performance_metrics/`, Parquet, columns in
// lake_contract.json) and, in the cloud, as CloudWatch EMF through Powertools Metrics.
// spark-jobs/src/fhir_lakehouse/metrics.py is the Python twin; both write the same Arrow schema so
// `pd.read_parquet(".../metrics/performance_metrics")` reads the files of both as one table.
import { MetricUnit, Metrics } from "@aws-lambda-powertools/metrics";
import type { MetricUnit as MetricUnitValue } from "@aws-lambda-powertools/metrics/types";
import { Float64, Table, TimestampMicrosecond, Utf8, makeData, makeVector, tableFromIPC, tableToIPC, vectorFromArray } from "apache-arrow";
import { randomUUID } from "node:crypto";
import * as parquet from "parquet-wasm";
import { LAKE_CONTRACT, layerUri } from "./lake-contract";
import { storageFor } from "./storage";

export const METRIC_TYPES = LAKE_CONTRACT.metrics.metricTypes as readonly MetricType[];
export type MetricType = "RUNTIME" | "THROUGHPUT" | "COUNT" | "BYTES" | "MEMORY" | "GC" | "SHUFFLE" | "SPILL" | "CACHE" | "ERROR";

/**
 * Names of the four metrics every step records once per process (via `recordStep`/`timeStep`);
 * the report's bottleneck and run comparison read them. Same names in metrics.py.
 */
export const STEP_METRICS = {
  runtime: "step_total",
  records: "step_records",
  bytes: "step_bytes",
  throughput: "step_throughput",
} as const;

/** One row of the metrics contract. `recordedAtMicros` is microseconds since the epoch, UTC. */
export interface MetricRecord {
  runId: string;
  step: string;
  name: string;
  metricType: MetricType;
  value: number;
  unit: string;
  recordedAtMicros: bigint;
  attributes: Record<string, unknown>;
}

export type Attributes = Record<string, string | number | boolean | null>;

// ---------------------------------------------------------------------------------------------
// Latency percentiles (pure).

/** Percentile of already sorted values with linear interpolation (numpy's default method). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/**
 * Request latencies of one kind (e.g. every Epic request of a worker). Keeps every sample (8 bytes
 * each: a million requests is 8 MB), so percentiles are exact rather than bucketed.
 */
export class LatencyHistogram {
  private samples = new Float64Array(64);
  private n = 0;

  /** Adds one latency in seconds. */
  observe(seconds: number): void {
    if (this.n === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.n++] = seconds;
  }

  /** Adds every sample of another histogram (e.g. merging the workers of a pool). */
  merge(other: LatencyHistogram): void {
    for (let i = 0; i < other.n; i++) this.observe(other.samples[i]);
  }

  get count(): number {
    return this.n;
  }

  /** p50/p95/p99/max/mean in seconds (NaN when empty). */
  summary(): { count: number; p50: number; p95: number; p99: number; max: number; mean: number } {
    const sorted = this.samples.slice(0, this.n).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      count: this.n,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: this.n ? sorted[this.n - 1] : NaN,
      mean: this.n ? sum / this.n : NaN,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Parquet encoding of the contract (pure: records <-> bytes).

/** Encodes records as one Parquet file (zstd) with exactly the contract's columns and types. */
export function encodeMetricsParquet(records: readonly MetricRecord[]): Uint8Array {
  const micros = BigInt64Array.from(records.map((r) => r.recordedAtMicros));
  const text = (pick: (r: MetricRecord) => string) => vectorFromArray(records.map(pick), new Utf8());
  const table = new Table({
    run_id: text((r) => r.runId),
    step: text((r) => r.step),
    name: text((r) => r.name),
    metric_type: text((r) => r.metricType),
    value: vectorFromArray(
      records.map((r) => r.value),
      new Float64(),
    ),
    unit: text((r) => r.unit),
    recorded_at: makeVector(makeData({ type: new TimestampMicrosecond("UTC"), length: records.length, nullCount: 0, data: micros })),
    attributes: text((r) => JSON.stringify(r.attributes ?? {})),
  });
  const columns = LAKE_CONTRACT.metrics.columns.map((c) => c.name);
  const got = table.schema.fields.map((f) => f.name);
  if (got.join() !== columns.join()) throw new Error(`metrics columns ${got.join()} differ from the contract ${columns.join()}`);
  const wasmTable = parquet.Table.fromIPCStream(tableToIPC(table, "stream"));
  const props = new parquet.WriterPropertiesBuilder().setCompression(parquet.Compression.ZSTD).build();
  return parquet.writeParquet(wasmTable, props);
}

/**
 * Decodes a metrics Parquet file written by either collector (TypeScript or Python). Timestamps
 * in any unit are normalised to microseconds.
 */
export function decodeMetricsParquet(bytes: Uint8Array): MetricRecord[] {
  const table = tableFromIPC(parquet.readParquet(bytes).intoIPCStream());
  const col = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw new Error(`metrics file has no column ${name}`);
    return c;
  };
  const [runId, step, name, metricType, value, unit, recordedAt, attributes] = LAKE_CONTRACT.metrics.columns.map((c) => col(c.name));
  const unitFactor = timestampToMicros(recordedAt.type as { unit?: number });
  const out: MetricRecord[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const rawAttrs = attributes.get(i) as string | null;
    out.push({
      runId: String(runId.get(i)),
      step: String(step.get(i)),
      name: String(name.get(i)),
      metricType: String(metricType.get(i)) as MetricType,
      value: Number(value.get(i)),
      unit: String(unit.get(i) ?? ""),
      recordedAtMicros: unitFactor(recordedAt, i),
      attributes: rawAttrs ? (JSON.parse(rawAttrs) as Record<string, unknown>) : {},
    });
  }
  return out;
}

// apache-arrow's getter returns milliseconds as a float for every timestamp unit; the raw int64
// buffer is exact, so read it and scale by the unit (0 s, 1 ms, 2 us, 3 ns).
function timestampToMicros(type: { unit?: number }): (vec: ReturnType<Table["getChild"]> & object, i: number) => bigint {
  const unit = type.unit ?? 2;
  const scale = (v: bigint) => (unit === 0 ? v * 1_000_000n : unit === 1 ? v * 1000n : unit === 3 ? v / 1000n : v);
  return (vec, i) => {
    let offset = i;
    for (const data of vec.data) {
      if (offset < data.length) return scale(BigInt((data.values as BigInt64Array)[offset]));
      offset -= data.length;
    }
    throw new RangeError(`row ${i} out of range`);
  };
}

// ---------------------------------------------------------------------------------------------
// Where flushed files go.

/** Writes one object (atomically). The default is lib/core/storage.ts: file://, plain paths and s3://. */
export type ObjectWriter = (uri: string, bytes: Uint8Array) => Promise<void>;

export const storageObjectWriter: ObjectWriter = (uri, bytes) => storageFor(uri).write(uri, bytes);

/** The metrics directory of a lake root (file:///…, s3://… or a plain path). */
export function metricsDirUri(lakeRoot: string): string {
  return `${layerUri(lakeRoot, "metrics")}/${LAKE_CONTRACT.metrics.dir}`;
}

// ---------------------------------------------------------------------------------------------
// CloudWatch EMF.

const EMF_UNITS: Record<string, MetricUnitValue> = {
  s: MetricUnit.Seconds,
  ms: MetricUnit.Milliseconds,
  bytes: MetricUnit.Bytes,
  count: MetricUnit.Count,
  "records/s": MetricUnit.CountPerSecond,
  "bytes/s": MetricUnit.BytesPerSecond,
  ratio: MetricUnit.NoUnit,
  percent: MetricUnit.Percent,
};

/**
 * Emits records as CloudWatch Embedded Metric Format on stdout (Lambda ships it to CloudWatch).
 * Dimension: step only (run ids would explode the metric count); run_id goes in as metadata.
 */
export function emitEmf(records: readonly MetricRecord[], metrics: Metrics): void {
  if (records.length === 0) return;
  for (const [step, group] of groupBy(records, (r) => `${r.runId}\u0000${r.step}`)) {
    const [runId, stepName] = step.split("\u0000");
    metrics.addDimension("step", stepName);
    metrics.addMetadata("run_id", runId);
    for (const r of group) metrics.addMetric(r.name, EMF_UNITS[r.unit] ?? MetricUnit.NoUnit, r.value);
    metrics.publishStoredMetrics();
  }
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The collector.

export interface MetricsCollectorOptions {
  runId: string;
  /** Pipeline step the records belong to: "extract", "silver", "gold", "maintenance", … */
  step: string;
  /**
   * Where records go on flush: "lake" (Parquet under the lake root, the default), "emf"
   * (CloudWatch EMF on stdout only) or "lake+emf" (both: what the Lambdas use).
   */
  sink?: "lake" | "emf" | "lake+emf";
  /** Lake root used by `flush()` when it is called without one (file:///…, s3://… or a path). */
  lakeRoot?: string;
  /** Writes the Parquet object; defaults to lib/core/storage.ts (file://, a path, or s3://). */
  writer?: ObjectWriter;
  /** Powertools Metrics instance for the EMF sink (default: namespace "FhirLakehouse"). */
  emf?: Metrics;
  /** Clock in microseconds since the epoch (tests inject one). */
  nowMicros?: () => bigint;
}

const monotonicSeconds = () => Number(process.hrtime.bigint()) / 1e9;

export class MetricsCollector {
  readonly runId: string;
  readonly step: string;
  private readonly sink: "lake" | "emf" | "lake+emf";
  private readonly lakeRoot?: string;
  private readonly writer: ObjectWriter;
  private emf?: Metrics;
  private readonly nowMicros: () => bigint;
  private pending: MetricRecord[] = [];
  private readonly startedAt = monotonicSeconds();

  constructor(opts: MetricsCollectorOptions) {
    if (!opts.runId) throw new Error("MetricsCollector needs a runId");
    if (!opts.step) throw new Error("MetricsCollector needs a step");
    this.runId = opts.runId;
    this.step = opts.step;
    this.sink = opts.sink ?? "lake";
    this.lakeRoot = opts.lakeRoot;
    this.writer = opts.writer ?? storageObjectWriter;
    this.emf = opts.emf;
    this.nowMicros = opts.nowMicros ?? (() => BigInt(Date.now()) * 1000n);
  }

  /** Records one metric. `unit` is free text; use s, bytes, count, records/s, bytes/s, ratio. */
  record(name: string, metricType: MetricType, value: number, unit: string, attributes: Attributes = {}): void {
    if (!METRIC_TYPES.includes(metricType)) throw new Error(`unknown metric type ${metricType}: one of ${METRIC_TYPES.join(", ")}`);
    if (!Number.isFinite(value)) throw new Error(`metric ${name} has a non-finite value ${value}`);
    this.pending.push({
      runId: this.runId,
      step: this.step,
      name,
      metricType,
      value,
      unit,
      recordedAtMicros: this.nowMicros(),
      attributes,
    });
  }

  /** Runs `fn`, records its wall time as RUNTIME (seconds) even when it throws, returns its result. */
  async time<T>(name: string, fn: () => Promise<T> | T, attributes: Attributes = {}): Promise<T> {
    const t0 = monotonicSeconds();
    let ok = false;
    try {
      const result = await fn();
      ok = true;
      return result;
    } finally {
      this.record(name, "RUNTIME", monotonicSeconds() - t0, "s", ok ? attributes : { ...attributes, failed: true });
    }
  }

  /** Starts a timer; calling the returned function records RUNTIME and returns the seconds. */
  startTimer(name: string, attributes: Attributes = {}): () => number {
    const t0 = monotonicSeconds();
    return () => {
      const seconds = monotonicSeconds() - t0;
      this.record(name, "RUNTIME", seconds, "s", attributes);
      return seconds;
    };
  }

  count(name: string, n: number, attributes: Attributes = {}): void {
    this.record(name, "COUNT", n, "count", attributes);
  }

  bytes(name: string, n: number, attributes: Attributes = {}): void {
    this.record(name, "BYTES", n, "bytes", attributes);
  }

  /** Errors, retries that failed, 429s: an ERROR count. */
  error(name: string, n = 1, attributes: Attributes = {}): void {
    this.record(name, "ERROR", n, "count", attributes);
  }

  /** Records items/seconds as THROUGHPUT (skipped when seconds is 0). */
  throughput(name: string, items: number, seconds: number, unit = "records/s", attributes: Attributes = {}): void {
    if (seconds > 0) this.record(name, "THROUGHPUT", items / seconds, unit, { ...attributes, items, seconds });
  }

  /** Records a latency histogram as RUNTIME `{name}.p50|p95|p99|max` (seconds) and COUNT `{name}.count`. */
  latency(name: string, histogram: LatencyHistogram, attributes: Attributes = {}): void {
    const s = histogram.summary();
    this.count(`${name}.count`, s.count, attributes);
    if (s.count === 0) return;
    for (const key of ["p50", "p95", "p99", "max"] as const) this.record(`${name}.${key}`, "RUNTIME", s[key], "s", attributes);
  }

  /**
   * The step's canonical metrics (once per process): total RUNTIME, records, bytes and
   * records/s. `seconds` defaults to the time since the collector was created.
   */
  recordStep(result: { records?: number; bytes?: number; seconds?: number } = {}, attributes: Attributes = {}): void {
    const seconds = result.seconds ?? monotonicSeconds() - this.startedAt;
    this.record(STEP_METRICS.runtime, "RUNTIME", seconds, "s", attributes);
    if (result.records !== undefined) {
      this.count(STEP_METRICS.records, result.records, attributes);
      this.throughput(STEP_METRICS.throughput, result.records, seconds, "records/s", attributes);
    }
    if (result.bytes !== undefined) this.bytes(STEP_METRICS.bytes, result.bytes, attributes);
  }

  /** Runs the whole step `fn` and records its canonical metrics from what it returns. */
  async timeStep<T extends { records?: number; bytes?: number } | void>(fn: () => Promise<T> | T, attributes: Attributes = {}): Promise<T> {
    const t0 = monotonicSeconds();
    const result = await fn();
    const r = (result ?? {}) as { records?: number; bytes?: number };
    this.recordStep({ records: r.records, bytes: r.bytes, seconds: monotonicSeconds() - t0 }, attributes);
    return result;
  }

  /** Records not yet flushed (a copy). */
  records(): MetricRecord[] {
    return [...this.pending];
  }

  /**
   * Writes the pending records and clears them. Lake sink: one Parquet file
   * `{lake}/metrics/performance_metrics/part-{run}-{step}-{uuid}.parquet`, whose URI is returned.
   * EMF sink: one EMF blob per step on stdout. Nothing pending: writes nothing.
   */
  async flush(lakeRoot?: string): Promise<string | undefined> {
    const records = this.pending;
    if (records.length === 0) return undefined;
    let uri: string | undefined;
    if (this.sink !== "emf") {
      const root = lakeRoot ?? this.lakeRoot;
      if (!root) throw new Error("MetricsCollector.flush needs a lake root (flush(lakeRoot) or new MetricsCollector({ lakeRoot }))");
      uri = `${metricsDirUri(root)}/${metricsFileName(this.runId, this.step)}`;
      await this.writer(uri, encodeMetricsParquet(records));
    }
    if (this.sink !== "lake") {
      this.emf ??= new Metrics({ namespace: "FhirLakehouse", serviceName: "fhir-pipeline" });
      emitEmf(records, this.emf);
    }
    this.pending = [];
    return uri;
  }
}

/** `part-{run}-{step}-{uuid}.parquet` with characters unsafe in file names replaced. */
export function metricsFileName(runId: string, step: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._=-]/g, "_");
  return `part-${safe(runId)}-${safe(step)}-${randomUUID()}.parquet`;
}
