// The run report opened in a real browser: headless Chromium renders DIR/report/index.html (as a
// local run writes it) and every plot shows its data: bars with a width for each step, each
// layer count and each slow operation, the run-history lines; nothing is fetched from the network.
// The metrics are written by the real collectors (TypeScript here, and a file the Python
// collector wrote), the page by the local run's own report writer.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { MetricsCollector } from "../../lib/core/metrics";
import { writeLocalReport } from "../../lib/pipeline/local-run";
import { workdirLayout } from "../../lib/pipeline/workdir";
import { chart, ensureChromium, renderReport, type RenderedReport } from "./report-page";

let workdir: string;
let rendered: RenderedReport;
let html: string;

/** One run's metrics, as the steps of a local run record them. */
async function recordRun(lakeUri: string, runId: string, scale: number): Promise<void> {
  const steps: [string, number, number][] = [
    ["extract", 12 * scale, 3300],
    ["silver", 30 * scale, 3300],
    ["gold", 9 * scale, 0],
    ["maintenance", 4 * scale, 0],
  ];
  for (const [step, seconds, records] of steps) {
    const m = new MetricsCollector({ runId, step, lakeRoot: lakeUri });
    m.record(`${step}.main_operation`, "RUNTIME", seconds * 0.8, "s", { part: "main" });
    m.recordStep(records ? { records, seconds } : { seconds });
    await m.flush();
  }
  const r = new MetricsCollector({ runId, step: "reconcile", lakeRoot: lakeUri });
  for (const [type, n] of [
    ["Patient", 20],
    ["Observation", 2500],
    ["Encounter", 300],
  ] as const) {
    r.count("layer.served", n, { resource_type: type });
    r.count("layer.bronze", n, { resource_type: type });
    r.count("layer.silver", n, { resource_type: type });
  }
  r.recordStep({ records: 2820, seconds: 1.5 });
  await r.flush();
}

beforeAll(async () => {
  ensureChromium();
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "report-browser-"));
  const layout = workdirLayout(workdir);
  await recordRun(layout.lakeUri, "20250101T020000Z-aaaaaa", 1);
  await recordRun(layout.lakeUri, "20250102T020000Z-bbbbbb", 0.5);
  // Spark stage metrics as the Python collector writes them.
  const metricsDir = path.join(layout.lakeDir, "metrics", "performance_metrics");
  fs.copyFileSync(
    path.join(__dirname, "..", "report", "fixtures", "python-collector.parquet"),
    path.join(metricsDir, "part-python-fixture.parquet"),
  );
  const file = writeLocalReport(layout, "20250102T020000Z-bbbbbb");
  expect(file).toBe(path.join(workdir, "report", "index.html"));
  html = fs.readFileSync(file, "utf8");
  rendered = await renderReport(file);
}, 300_000);

afterAll(() => fs.rmSync(workdir, { recursive: true, force: true }));

test("the page renders offline: no network request, no script error", () => {
  expect(rendered.externalRequests).toEqual([]);
  expect(rendered.consoleErrors).toEqual([]);
  expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  expect(rendered.title).toContain("20250102T020000Z-bbbbbb");
  expect(rendered.headings).toEqual(
    expect.arrayContaining(["Stage timings", "Throughput per stage", "Counts per layer", "Slowest operations"]),
  );
});

test("stage timings: one visible bar per step, the longest the widest", () => {
  const c = chart(rendered, "Time per step");
  expect(c.empty).toBe(false);
  expect(c.width).toBeGreaterThan(300);
  expect(c.height).toBeGreaterThan(50);
  expect(c.barWidths).toHaveLength(5); // extract, silver, gold, maintenance, reconcile
  expect(Math.min(...c.barWidths)).toBeGreaterThan(0);
  for (const step of ["extract", "silver", "gold", "maintenance", "reconcile"]) expect(c.texts).toContain(step);
  // silver (15 s) is the longest step of the run: its bar is the widest.
  const silver = c.texts.indexOf("silver");
  expect(silver).toBeGreaterThanOrEqual(0);
  expect(Math.max(...c.barWidths)).toBeCloseTo(c.barWidths[["extract", "silver", "gold", "maintenance", "reconcile"].indexOf("silver")], 0);
});

test("throughput per stage and counts per layer have data", () => {
  const tput = chart(rendered, "Records per second");
  expect(tput.empty).toBe(false);
  expect(tput.barWidths.length).toBeGreaterThanOrEqual(3);
  expect(Math.min(...tput.barWidths)).toBeGreaterThan(0);
  const counts = chart(rendered, "Counts");
  expect(counts.empty).toBe(false);
  expect(counts.texts).toEqual(expect.arrayContaining(["reconcile: layer.served", "reconcile: layer.bronze", "reconcile: layer.silver"]));
  expect(counts.texts).toContain("2,820");
  expect(Math.min(...counts.barWidths)).toBeGreaterThan(0);
});

test("slowest operations and the run history are plotted", () => {
  const slow = chart(rendered, "Five slowest operations");
  expect(slow.barWidths).toHaveLength(5);
  expect(Math.min(...slow.barWidths)).toBeGreaterThan(0);
  const history = chart(rendered, "Time per step, last runs");
  expect(history.polylines).toBeGreaterThanOrEqual(4);
  expect(history.points).toBeGreaterThanOrEqual(10);
});
