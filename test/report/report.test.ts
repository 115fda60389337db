import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type MetricRecord, type MetricType, decodeMetricsParquet, encodeMetricsParquet } from "../../lib/core/metrics";
import { readMetrics, writeHtmlReport } from "../../lib/core/report";
import { buildReport, compareSteps, listRuns, renderReportText, slowestOperations, stepTimes } from "../../lib/core/report-analysis";
import { renderReportHtml, svgBarChart } from "../../lib/core/report-html";

const root = path.resolve(__dirname, "../..");
const T0 = 1_714_564_800_000_000n; // 2024-05-01T12:00:00Z in microseconds

function row(
  runId: string,
  step: string,
  name: string,
  metricType: MetricType,
  value: number,
  atSeconds: number,
  attributes = {},
): MetricRecord {
  const unit = { RUNTIME: "s", COUNT: "count", BYTES: "bytes", THROUGHPUT: "records/s" }[metricType as string] ?? "ratio";
  return { runId, step, name, metricType, value, unit, recordedAtMicros: T0 + BigInt(atSeconds * 1e6), attributes };
}

// Two runs: run-a (earlier) and run-b. In run-b silver is the bottleneck, and the slowest single
// operation is silver's merge (after the step totals).
const runA = [
  row("run-a", "extract", "step_total", "RUNTIME", 40, 0),
  row("run-a", "extract", "step_records", "COUNT", 10_000, 0),
  row("run-a", "silver", "step_total", "RUNTIME", 50, 60),
  row("run-a", "silver", "step_records", "COUNT", 10_000, 60),
  row("run-a", "gold", "step_total", "RUNTIME", 10, 120),
];
const runB = [
  row("run-b", "extract", "epic.request_latency.p99", "RUNTIME", 0.8, 3600),
  row("run-b", "extract", "step_total", "RUNTIME", 20, 3601),
  row("run-b", "extract", "step_records", "COUNT", 10_000, 3601),
  row("run-b", "extract", "step_throughput", "THROUGHPUT", 500, 3601),
  row("run-b", "silver", "merge resources", "RUNTIME", 61.5, 3700, { table: "silver.resources" }),
  row("run-b", "silver", "view patient", "RUNTIME", 3, 3701),
  row("run-b", "silver", "spark.stage.duration", "RUNTIME", 12, 3702, { stage_id: 4, label: "merge" }),
  row("run-b", "silver", "step_total", "RUNTIME", 70, 3710),
  row("run-b", "silver", "step_records", "COUNT", 10_000, 3710),
  row("run-b", "gold", "step_total", "RUNTIME", 10, 3800),
  row("run-b", "gold", "rows written", "COUNT", 42, 3800),
];

let workdir: string;
beforeEach(() => {
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "report-"));
});
afterEach(() => fs.rmSync(workdir, { recursive: true, force: true }));

function writeMetrics(records: MetricRecord[], file: string) {
  const dir = path.join(workdir, "metrics", "performance_metrics");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, file), encodeMetricsParquet(records));
}

describe("report analysis (pure)", () => {
  const rows = [...runB, ...runA]; // file order must not matter

  it("orders runs by start and steps by first record", () => {
    expect(listRuns(rows).map((r) => [r.runId, r.steps.join(",")])).toEqual([
      ["run-a", "extract,silver,gold"],
      ["run-b", "extract,silver,gold"],
    ]);
  });

  it("finds the five slowest operations of a run, longest first", () => {
    expect(slowestOperations(rows, "run-b").map((o) => [o.step, o.name, o.seconds])).toEqual([
      ["silver", "step_total", 70],
      ["silver", "merge resources", 61.5],
      ["extract", "step_total", 20],
      ["silver", "spark.stage.duration", 12],
      ["gold", "step_total", 10],
    ]);
  });

  it("finds the bottleneck step and its share", () => {
    const report = buildReport(rows);
    expect(report.run.runId).toBe("run-b"); // the latest run by default
    expect(report.bottleneck).toMatchObject({ step: "silver", seconds: 70, source: "step_total" });
    expect(report.bottleneck?.share).toBeCloseTo(70 / 100, 10);
    expect(buildReport(rows, "run-a").bottleneck?.step).toBe("silver");
  });

  it("compares each step with the previous run", () => {
    const report = buildReport(rows, "run-b");
    expect(report.previousRun?.runId).toBe("run-a");
    const byStep = Object.fromEntries(report.comparison.map((c) => [c.step, c]));
    expect(byStep.extract.timeRatio).toBeCloseTo(0.5, 10);
    expect(byStep.extract.throughputRatio).toBeCloseTo(2, 10); // 500/s against 250/s
    expect(byStep.silver.timeRatio).toBeCloseTo(1.4, 10);
    expect(byStep.gold).toMatchObject({ timeRatio: 1 });
    expect(byStep.gold.throughputRatio).toBeUndefined(); // gold recorded no step_records
    expect(buildReport(rows, "run-a").comparison).toEqual([]);
  });

  it("falls back to a step's largest RUNTIME when it has no step_total", () => {
    const steps = stepTimes([row("r", "extract", "page", "RUNTIME", 2, 0), row("r", "extract", "crawl", "RUNTIME", 9, 1)], "r");
    expect(steps).toEqual([{ step: "extract", seconds: 9, share: 1, source: "largest_runtime" }]);
    expect(compareSteps(steps, [])).toEqual([{ step: "extract", seconds: 9 }]);
  });

  it("sums counts per step and renders text", () => {
    const report = buildReport(rows, "run-b");
    expect(report.counts).toContainEqual({ step: "gold", name: "rows written", value: 42 });
    const text = renderReportText(report);
    expect(text).toContain("Bottleneck: silver: 70.00 s, 70% of the run's step time");
    expect(text).toMatch(/61\.50\s+silver\s+merge resources/);
    expect(text).toContain("Compared with the previous run run-a");
  });

  it("names the runs it has when asked for an unknown one", () => {
    expect(() => buildReport(rows, "nope")).toThrow(/no metrics for run nope; runs: run-a, run-b/);
    expect(() => buildReport([])).toThrow(/no metrics recorded yet/);
  });
});

describe("report I/O", () => {
  it("reads a crafted metrics directory and finds the slowest operation", () => {
    writeMetrics(runA, "part-run-a.parquet");
    writeMetrics(runB, "part-run-b.parquet");
    fs.writeFileSync(path.join(workdir, "metrics", "performance_metrics", ".part-x.parquet.tmp"), "half written");
    const rows = readMetrics(workdir);
    expect(rows).toHaveLength(runA.length + runB.length);
    expect(buildReport(rows).slowest[1]).toMatchObject({
      step: "silver",
      name: "merge resources",
      seconds: 61.5,
      attributes: { table: "silver.resources" },
    });
  });

  it("finds the lake of a local run's work directory (DIR/lake) and writes DIR/report/index.html", () => {
    const dir = path.join(workdir, "lake", "metrics", "performance_metrics");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "part-b.parquet"), encodeMetricsParquet(runB));
    expect(readMetrics(workdir)).toHaveLength(runB.length);
    expect(writeHtmlReport(workdir, "run-b")).toBe(path.join(workdir, "report", "index.html"));
    expect(readMetrics(path.join(workdir, "lake"))).toHaveLength(runB.length); // a lake root directly
  });

  it("reads a file written by the Python collector", () => {
    const rows = decodeMetricsParquet(fs.readFileSync(path.join(__dirname, "fixtures", "python-collector.parquet")));
    expect(rows.map((r) => [r.runId, r.step, r.name, r.metricType, r.value])).toContainEqual([
      "run-py",
      "silver",
      "merge resources",
      "RUNTIME",
      7.25,
    ]);
    expect(rows[0].recordedAtMicros).toBe(1_714_564_805_250_000n);
    expect(buildReport(rows).bottleneck).toMatchObject({ step: "silver", seconds: 9.5, records: 1200 });
  });

  it("writes an offline HTML page with SVG charts", () => {
    writeMetrics(runA, "part-run-a.parquet");
    writeMetrics(runB, "part-run-b.parquet");
    const file = writeHtmlReport(workdir);
    expect(file).toBe(path.join(workdir, "report", "index.html"));
    const html = fs.readFileSync(file, "utf8");
    for (const heading of [
      "Stage timings",
      "Throughput per stage",
      "Counts per layer",
      "Slowest operations",
      "Spark stages",
      "Compared with the previous run",
      "Run history",
    ]) {
      expect(html).toContain(`<h2>${heading}</h2>`);
    }
    expect((html.match(/<svg /g) ?? []).length).toBe(6);
    expect(html).not.toMatch(/<script|<link|src=|url\(/i); // nothing fetched: opens offline
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")).not.toMatch(/https?:/);
    expect(html).toContain('class="bar hot"'); // the bottleneck is highlighted
  });

  it("escapes labels in SVG and HTML", () => {
    expect(svgBarChart("t", [{ label: "<b>&", value: 1 }], "s")).toContain("&lt;b&gt;&amp;");
    const html = renderReportHtml(buildReport([row("<r>", "s<", "n", "RUNTIME", 1, 0)]), [], new Date(0));
    expect(html).not.toContain("<r>");
    expect(html).toContain("&lt;r&gt;");
  });
});

describe("fhir-pipeline report", () => {
  const cli = (...args: string[]) =>
    execFileSync(process.execPath, [path.join(root, "bin", "fhir-pipeline.js"), "report", ...args], { encoding: "utf8", cwd: root });

  it("prints the slowest operations, the bottleneck and the comparison as JSON, and writes --html", () => {
    writeMetrics([...runA, ...runB], "part-all.parquet");
    const out = JSON.parse(cli("--workdir", workdir, "--json", "--html"));
    expect(out.run.runId).toBe("run-b");
    expect(out.slowest).toHaveLength(5);
    expect(out.bottleneck.step).toBe("silver");
    expect(out.html).toBe(path.join(workdir, "report", "index.html"));
    expect(fs.existsSync(out.html)).toBe(true);
    const text = cli("--workdir", workdir, "--run", "run-a");
    expect(text).toContain("run run-a");
    expect(text).toContain("No previous run to compare with.");
  });

  it("fails with a clear message when the work directory has no metrics", () => {
    expect(() =>
      execFileSync(process.execPath, [path.join(root, "bin", "fhir-pipeline.js"), "report", "--workdir", workdir], {
        encoding: "utf8",
        stdio: "pipe",
      }),
    ).toThrow(/no metrics in .*does not exist/);
  });
});
