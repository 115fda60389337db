import { Metrics } from "@aws-lambda-powertools/metrics";
import { tableFromIPC } from "apache-arrow";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as parquet from "parquet-wasm";
import { LAKE_CONTRACT } from "../../lib/core/lake-contract";
import { LatencyHistogram, MetricsCollector, STEP_METRICS, decodeMetricsParquet, percentile } from "../../lib/core/metrics";

let lake: string;
beforeEach(() => {
  lake = fs.mkdtempSync(path.join(os.tmpdir(), "metrics-"));
});
afterEach(() => fs.rmSync(lake, { recursive: true, force: true }));

const metricsDir = () => path.join(lake, "metrics", "performance_metrics");

describe("MetricsCollector", () => {
  it("writes the contract's columns and types to {lake}/metrics/performance_metrics", async () => {
    const m = new MetricsCollector({ runId: "run-1", step: "extract", nowMicros: () => 1_700_000_000_123_456n });
    m.record("epic.pages", "COUNT", 12, "count", { resource_type: "Observation" });
    m.bytes("bronze.bytes", 4096);
    const uri = await m.flush(pathToFileURL(lake).href);

    const files = fs.readdirSync(metricsDir());
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^part-run-1-extract-[0-9a-f-]+\.parquet$/);
    expect(uri).toBe(pathToFileURL(path.join(metricsDir(), files[0])).href);

    const table = tableFromIPC(parquet.readParquet(fs.readFileSync(path.join(metricsDir(), files[0]))).intoIPCStream());
    const schema = table.schema.fields.map((f) => [f.name, String(f.type)]);
    expect(schema).toEqual([
      ["run_id", "Utf8"],
      ["step", "Utf8"],
      ["name", "Utf8"],
      ["metric_type", "Utf8"],
      ["value", "Float64"],
      ["unit", "Utf8"],
      ["recorded_at", "Timestamp<MICROSECOND, UTC>"],
      ["attributes", "Utf8"],
    ]);
    expect(schema.map(([n]) => n)).toEqual(LAKE_CONTRACT.metrics.columns.map((c) => c.name));
    expect(table.numRows).toBe(2);
    expect(table.get(0)?.toJSON()).toMatchObject({
      run_id: "run-1",
      step: "extract",
      name: "epic.pages",
      metric_type: "COUNT",
      value: 12,
      unit: "count",
    });
    expect(JSON.parse(String(table.get(0)?.toJSON().attributes))).toEqual({ resource_type: "Observation" });

    const [first] = decodeMetricsParquet(fs.readFileSync(path.join(metricsDir(), files[0])));
    expect(first.recordedAtMicros).toBe(1_700_000_000_123_456n);
    expect(m.records()).toEqual([]); // flushed records are cleared
  });

  it("times a function in seconds, also when it throws", async () => {
    const m = new MetricsCollector({ runId: "r", step: "silver", lakeRoot: lake });
    const value = await m.time("load", async () => {
      await new Promise((r) => setTimeout(r, 20));
      return 42;
    });
    expect(value).toBe(42);
    await expect(m.time("boom", () => Promise.reject(new Error("x")))).rejects.toThrow("x");
    const [load, boom] = m.records();
    expect(load).toMatchObject({ name: "load", metricType: "RUNTIME", unit: "s" });
    expect(load.value).toBeGreaterThanOrEqual(0.015);
    expect(load.value).toBeLessThan(60);
    expect(boom.attributes).toEqual({ failed: true });
    await m.flush(); // plain path lake root
    expect(decodeMetricsParquet(fs.readFileSync(path.join(metricsDir(), fs.readdirSync(metricsDir())[0]))).map((r) => r.name)).toEqual([
      "load",
      "boom",
    ]);
  });

  it("records the step's canonical runtime, records, bytes and throughput", async () => {
    const m = new MetricsCollector({ runId: "r", step: "extract" });
    m.recordStep({ records: 1000, bytes: 5e6, seconds: 4 });
    const byName = Object.fromEntries(m.records().map((r) => [r.name, r]));
    expect(byName[STEP_METRICS.runtime]).toMatchObject({ metricType: "RUNTIME", value: 4, unit: "s" });
    expect(byName[STEP_METRICS.records]).toMatchObject({ metricType: "COUNT", value: 1000 });
    expect(byName[STEP_METRICS.bytes]).toMatchObject({ metricType: "BYTES", value: 5e6 });
    expect(byName[STEP_METRICS.throughput]).toMatchObject({ metricType: "THROUGHPUT", value: 250, unit: "records/s" });

    const n = await new MetricsCollector({ runId: "r", step: "gold" }).timeStep(async () => ({ records: 3 }));
    expect(n).toEqual({ records: 3 });
  });

  it("rejects unknown metric types and non-finite values, and needs a lake root to flush", async () => {
    const m = new MetricsCollector({ runId: "r", step: "s" });
    expect(() => m.record("x", "LATENCY" as never, 1, "s")).toThrow(/unknown metric type LATENCY/);
    expect(() => m.record("x", "COUNT", NaN, "count")).toThrow(/non-finite/);
    m.count("x", 1);
    await expect(m.flush()).rejects.toThrow(/needs a lake root/);
  });

  it("writes s3:// lakes through the given writer (default: lib/core/storage.ts)", async () => {
    const written: [string, Uint8Array][] = [];
    const m = new MetricsCollector({ runId: "r/1", step: "gold", writer: async (uri, bytes) => void written.push([uri, bytes]) });
    m.count("rows", 5);
    const uri = await m.flush("s3://bucket/lake/");
    expect(uri).toMatch(/^s3:\/\/bucket\/lake\/metrics\/performance_metrics\/part-r_1-gold-[0-9a-f-]+\.parquet$/);
    expect(written.map(([u]) => u)).toEqual([uri]);
    expect(decodeMetricsParquet(written[0][1])).toMatchObject([{ runId: "r/1", step: "gold", name: "rows", value: 5 }]);
  });

  it("flushes nothing when nothing was recorded", async () => {
    expect(await new MetricsCollector({ runId: "r", step: "s" }).flush(lake)).toBeUndefined();
    expect(fs.existsSync(metricsDir())).toBe(false);
  });

  it("emits CloudWatch EMF with the step as dimension and the run id as metadata", async () => {
    const lines: string[] = [];
    const spy = jest.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const emf = new Metrics({ namespace: "FhirLakehouseTest", serviceName: "test" });
      const m = new MetricsCollector({ runId: "run-9", step: "extract", sink: "lake+emf", emf, lakeRoot: lake });
      m.recordStep({ records: 10, seconds: 2 });
      m.error("epic.http_429", 3);
      await m.flush();
    } finally {
      spy.mockRestore();
    }
    const blobs = lines
      .flatMap((l) => l.split("\n"))
      .filter((l) => l.includes("_aws"))
      .map((l) => JSON.parse(l));
    expect(blobs).toHaveLength(1);
    const blob = blobs[0];
    expect(blob._aws.CloudWatchMetrics[0].Namespace).toBe("FhirLakehouseTest");
    // lib/core/custom-metrics.ts alarms on exactly these dimensions.
    expect([...blob._aws.CloudWatchMetrics[0].Dimensions[0]].sort()).toEqual(["service", "step"]);
    expect(blob.service).toBe("test");
    expect(blob.step).toBe("extract");
    expect(blob.run_id).toBe("run-9");
    expect(blob.step_total).toBe(2);
    expect(blob["epic.http_429"]).toBe(3);
    const units = Object.fromEntries(blob._aws.CloudWatchMetrics[0].Metrics.map((d: { Name: string; Unit: string }) => [d.Name, d.Unit]));
    expect(units).toMatchObject({ step_total: "Seconds", step_records: "Count", step_throughput: "Count/Second" });
    expect(fs.readdirSync(metricsDir())).toHaveLength(1); // and the Parquet file as well
  });
});

describe("latency percentiles", () => {
  it("interpolates like numpy and summarises a histogram", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    const h = new LatencyHistogram();
    for (let i = 1; i <= 100; i++) h.observe(i / 1000);
    const s = h.summary();
    expect(s.count).toBe(100);
    expect(s.p50).toBeCloseTo(0.0505, 6);
    expect(s.p95).toBeCloseTo(0.09505, 6);
    expect(s.p99).toBeCloseTo(0.09901, 6);
    expect(s.max).toBe(0.1);

    const m = new MetricsCollector({ runId: "r", step: "extract" });
    m.latency("epic.request_latency", h, { worker: 1 });
    expect(m.records().map((r) => `${r.name}:${r.metricType}`)).toEqual([
      "epic.request_latency.count:COUNT",
      "epic.request_latency.p50:RUNTIME",
      "epic.request_latency.p95:RUNTIME",
      "epic.request_latency.p99:RUNTIME",
      "epic.request_latency.max:RUNTIME",
    ]);
  });

  it("merges histograms of several workers", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 0; i < 100; i++) (i % 2 ? a : b).observe(i);
    a.merge(b);
    expect(a.count).toBe(100);
    expect(a.summary().p50).toBe(49.5);
  });
});
