// End to end on one machine: `fhir-pipeline run --local` (the CLI, as a user runs it) against the
// built-in simulator on 127.0.0.1, executing the synthesized state machine with the local steps:
// extraction into Parquet bronze, the silver and gold Spark jobs in local Spark on the work dir's
// Iceberg catalog, maintenance, metrics. Then one simulated day passes and an incremental run
// must reconcile again. Nothing is mocked. The simulator counts what it served; bronze is counted
// from the run's Parquet files, silver and gold from the Iceberg tables.
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { listRunRecords, readSimulatorState, workdirLayout } from "../../lib/pipeline/workdir";
import type { RunSummary } from "../../lib/pipeline/run-summary";
import { chart, ensureChromium, renderReport } from "../report-browser/report-page";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "bin", "fhir-pipeline.js");
const PATIENTS = 20;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function runLocal(extra: string[]): Promise<RunSummary> {
  const r = await cli(["run", "--local", "--patients", String(PATIENTS), "--workdir", workdir, "--json", ...extra]);
  if (r.code !== 0) throw new Error(`run --local exited with ${r.code}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-3000)}`);
  // --json is quiet: no progress display, one JSON document on stdout.
  expect(r.stderr).not.toMatch(/→|✓|job silver|extract Patient/);
  return JSON.parse(r.stdout) as RunSummary;
}

/** served = bronze + rejected = silver, type by type. */
function expectReconciled(s: RunSummary): void {
  expect(s.status).toBe("succeeded");
  expect(s.reconciliation.problems).toEqual([]);
  expect(s.reconciled).toBe(true);
  const types = Object.keys(s.layers);
  expect(types.length).toBeGreaterThanOrEqual(11);
  for (const [type, c] of Object.entries(s.layers)) {
    expect({ type, served: c.served }).toEqual({ type, served: c.bronze + c.rejected });
    expect({ type, silver: c.silver }).toEqual({ type, silver: c.bronze });
    expect(c.served).toBeGreaterThan(0);
  }
}

let workdir: string;
let first: RunSummary;
let second: RunSummary;

beforeAll(() => {
  // The virtualenv and jars (npm test runs jest before pytest's set-up) and Chromium.
  execFileSync(process.execPath, [path.join(ROOT, "scripts", "setup.js"), "--python"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  ensureChromium();
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "local-run-"));
}, 600_000);

afterAll(() => fs.rmSync(workdir, { recursive: true, force: true }));

describe("run --local on a small population", () => {
  test("the first run reconciles exactly and fills every layer", async () => {
    first = await runLocal([]);
    expectReconciled(first);
    expect(first.mode).toBe("bulk");
    expect(first.source).toMatchObject({ kind: "simulator", patients: PATIENTS, day: 0 });
    expect(first.reconciliation.silverCheck).toBe("exact");
    expect(first.layers.Patient).toMatchObject({ served: PATIENTS, bronze: PATIENTS, silver: PATIENTS });
    expect(first.totals.served).toBeGreaterThan(PATIENTS * 100);
    // Everything was new.
    expect(first.changed.silverTotal.inserted).toBe(first.totals.bronze);
    expect(first.changed.silverTotal.updated + first.changed.silverTotal.deleted).toBe(0);
    // Gold tables exist and are not empty; the silver views too.
    expect(Object.keys(first.goldTables).length).toBeGreaterThanOrEqual(5);
    for (const [table, rows] of Object.entries(first.goldTables)) expect({ table, rows: rows > 0 }).toEqual({ table, rows: true });
    expect(first.silverTables.resources).toBe(first.totals.silver);
    expect(first.silverTables.patient).toBe(PATIENTS);
    // Every stage was timed; the lake is where the layout says.
    for (const stage of ["extract", "silver", "gold", "maintenance", "total"]) expect(first.stages[stage]).toBeGreaterThan(0);
    const layout = workdirLayout(workdir);
    for (const dir of ["bronze", "metrics", "catalog", "warehouse"]) expect(fs.existsSync(path.join(layout.lakeDir, dir))).toBe(true);
    expect(readSimulatorState(layout)).toEqual({ patients: PATIENTS, seed: 1, profile: "epic", day: 0 });
    expect(listRunRecords(layout).map((r) => r.status)).toEqual(["succeeded"]);
  }, 900_000);

  test("the report of the run renders its plots in headless Chromium", async () => {
    expect(first.report).toBe(path.join(workdir, "report", "index.html"));
    const page = await renderReport(first.report!);
    expect(page.externalRequests).toEqual([]);
    const steps = chart(page, "Time per step");
    for (const step of ["extract", "silver", "gold", "maintenance", "reconcile"]) expect(steps.texts).toContain(step);
    expect(Math.min(...steps.barWidths)).toBeGreaterThan(0);
    const counts = chart(page, "Counts");
    expect(counts.texts).toEqual(expect.arrayContaining(["reconcile: layer.served", "reconcile: layer.bronze", "reconcile: layer.silver"]));
    expect(chart(page, "Records per second").barWidths.length).toBeGreaterThan(0);
  }, 120_000);

  test("after a simulated day, an incremental run reconciles again and changes only what changed", async () => {
    second = await runLocal(["--advance"]);
    expectReconciled(second);
    expect(second.source).toMatchObject({ kind: "simulator", day: 1 });
    const c = second.changed.silverTotal;
    // Some resources changed, some were added, some deleted; most did not change.
    expect(c.updated).toBeGreaterThan(0);
    expect(c.inserted).toBeGreaterThan(0);
    expect(c.deleted).toBeGreaterThan(0);
    expect(c.unchanged).toBeGreaterThan(c.inserted + c.updated);
    // silver after the run = silver before + inserted - deleted
    expect(second.totals.silver).toBe(first.totals.silver + c.inserted - c.deleted);
    for (const [table, rows] of Object.entries(second.goldTables)) expect({ table, rows: rows > 0 }).toEqual({ table, rows: true });
    // Gold rebuilt a table only for a stated reason: a table rebuilt by design, or so many of the
    // 20 patients changed that a rebuild is cheaper (the gold job's cost rule); the rest is incremental.
    expect(Object.keys(second.changed.gold).length).toBeGreaterThanOrEqual(5);
    for (const [table, g] of Object.entries(second.changed.gold))
      if (g.mode === "full") expect({ table, reason: g.reason }).toEqual({ table, reason: expect.stringMatching(/cheaper|by design/) });
    expect(listRunRecords(workdirLayout(workdir)).map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
  }, 900_000);
});
