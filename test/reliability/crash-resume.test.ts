// Crash and resume, and a re-submitted run, through the CLI as a user runs it.
//
// A reference work dir gets one uninterrupted `run --local`. A second work dir gets the same run
// killed twice with SIGKILL to its whole process group (the CLI, the local Spark process, its
// JVM): once during extraction (some bulk files done, the run manifest not yet written), and,
// after `run --resume`, again during the silver job (silver tables being written, gold not yet
// begun). A last `run --resume` finishes it. Its silver and gold tables must equal the
// reference's, compared by a content hash of each table's sorted rows without the run-id and
// processing-time columns (table_digest.py). Then the reference run is submitted again: no
// duplicate rows, nothing changed, identical tables.
//
// The simulator answers slowly (slow:500ms on every request, content unchanged) so that
// extraction lasts long enough to be interrupted in the middle.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RunSummary } from "../../lib/pipeline/run-summary";
import { listRunRecords, workdirLayout } from "../../lib/pipeline/workdir";
import {
  catalogTables,
  lakeDigests,
  ROOT,
  runCli,
  startCli,
  summaryOf,
  waitFor,
  type CliProcess,
  type TableDigest,
} from "./local-run-process";

const PATIENTS = 20;
const FAULTS = "slow:500ms";

let refDir: string;
let crashDir: string;
let reference: RunSummary;
let referenceDigests: Record<string, TableDigest>;

function runDirs(workdir: string): string[] {
  const runs = path.join(workdir, "lake", "bronze", "_runs");
  return fs.existsSync(runs) ? fs.readdirSync(runs).filter((d) => !d.startsWith("_")) : [];
}

/** Unit records written so far, units planned, and whether the run manifest exists. */
function extractionState(workdir: string): { done: number; planned: number; manifest: boolean } {
  const [run] = runDirs(workdir);
  if (!run) return { done: 0, planned: 0, manifest: false };
  const dir = path.join(workdir, "lake", "bronze", "_runs", run);
  const units = path.join(dir, "units");
  const done = fs.existsSync(units)
    ? fs.readdirSync(units).filter((f) => /^[^.].*\.json$/.test(f) && !f.endsWith(".failed.json")).length
    : 0;
  let planned = 0;
  const plans = path.join(dir, "plans");
  if (fs.existsSync(plans)) {
    for (const f of fs.readdirSync(plans).filter((x) => x.endsWith(".json") && !x.startsWith("."))) {
      planned += (JSON.parse(fs.readFileSync(path.join(plans, f), "utf8")) as { units: unknown[] }).units.length;
    }
  }
  return { done, planned, manifest: fs.existsSync(path.join(dir, "manifest.json")) };
}

function sparkLog(workdir: string): string {
  const logs = path.join(workdir, "logs");
  if (!fs.existsSync(logs)) return "";
  return fs
    .readdirSync(logs)
    .filter((f) => f.endsWith("-spark.log"))
    .map((f) => fs.readFileSync(path.join(logs, f), "utf8"))
    .join("\n");
}

/** Kills the group and waits until no process of it is left. */
async function killAndReap(p: CliProcess): Promise<void> {
  p.killGroup();
  const r = await p.done;
  expect(r.signal).toBe("SIGKILL");
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-p.child.pid!, 0);
    } catch {
      return; // ESRCH: the whole group is gone
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error("processes of the killed run are still alive");
}

/** The tables a run produces (the run-log tables are left out by table_digest.py). */
function expectSameTables(actual: Record<string, TableDigest>, expected: Record<string, TableDigest>): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const table of Object.keys(expected)) expect({ table, ...actual[table] }).toEqual({ table, ...expected[table] });
}

beforeAll(() => {
  execFileSync(process.execPath, [path.join(ROOT, "scripts", "setup.js"), "--python"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  refDir = fs.mkdtempSync(path.join(os.tmpdir(), "resume-ref-"));
  crashDir = fs.mkdtempSync(path.join(os.tmpdir(), "resume-crash-"));
}, 600_000);

afterAll(() => {
  for (const d of [refDir, crashDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe("crash and resume", () => {
  test("an uninterrupted reference run", async () => {
    reference = summaryOf(
      await runCli(["run", "--local", "--patients", String(PATIENTS), "--workdir", refDir, "--faults", FAULTS, "--json"]),
    );
    expect(reference.status).toBe("succeeded");
    expect(reference.reconciled).toBe(true);
    referenceDigests = lakeDigests(refDir);
    expect(referenceDigests["silver.resources"].rows).toBe(reference.totals.silver);
    expect(Object.keys(referenceDigests).filter((t) => t.startsWith("gold.")).length).toBeGreaterThanOrEqual(5);
  }, 900_000);

  test("killed during extraction, killed again during the silver job, resumed: the same silver and gold tables", async () => {
    // 1. SIGKILL while bulk files are being downloaded.
    const first = startCli(["run", "--local", "--patients", String(PATIENTS), "--workdir", crashDir, "--faults", FAULTS, "--json"]);
    await waitFor("a downloaded bulk file", () => extractionState(crashDir).done > 0, first, 300_000);
    await killAndReap(first);
    const atFirstKill = extractionState(crashDir);
    expect(atFirstKill.manifest).toBe(false);
    expect(atFirstKill.done).toBeLessThan(atFirstKill.planned);
    expect(listRunRecords(workdirLayout(crashDir)).map((r) => r.status)).toEqual(["running"]);

    // 2. Resume; SIGKILL once the silver job has committed its first table, before gold.
    const second = startCli(["run", "--local", "--workdir", crashDir, "--resume", "--json"]);
    await waitFor(
      "the silver job's first commit",
      () => /silver run \S+: reading/.test(sparkLog(crashDir)) && catalogTables(crashDir).includes("silver.resources"),
      second,
      600_000,
      250,
    );
    await killAndReap(second);
    const tablesAtSecondKill = catalogTables(crashDir);
    expect(tablesAtSecondKill.filter((t) => t.startsWith("gold."))).toEqual([]);
    expect(extractionState(crashDir).manifest).toBe(true);
    expect(listRunRecords(workdirLayout(crashDir)).map((r) => r.status)).toEqual(["running"]);

    // 3. Resume again: it finishes, as the same run.
    const last = summaryOf(await runCli(["run", "--local", "--workdir", crashDir, "--resume", "--json"]));
    expect(last.status).toBe("succeeded");
    expect(last.resumed).toBe(true);
    expect(runDirs(crashDir)).toHaveLength(1);
    expect(listRunRecords(workdirLayout(crashDir)).map((r) => r.status)).toEqual(["succeeded"]);
    for (const [type, c] of Object.entries(last.layers)) expect({ type, silver: c.silver }).toEqual({ type, silver: c.bronze });
    expect(last.totals.bronze).toBe(reference.totals.bronze);

    const digests = lakeDigests(crashDir);
    for (const [table, d] of Object.entries(digests))
      expect({ table, duplicateKeys: d.duplicateKeys }).toEqual({ table, duplicateKeys: 0 });
    expectSameTables(digests, referenceDigests);
    process.stdout.write(
      `crash and resume: killed with ${atFirstKill.done}/${atFirstKill.planned} bulk files done, then with ` +
        `${tablesAtSecondKill.filter((t) => t.startsWith("silver.")).length} silver tables committed; ` +
        `${Object.keys(digests).length} tables equal the uninterrupted run's\n`,
    );
  }, 1_500_000);

  test("the same run submitted again: no duplicate rows, nothing changed, identical tables", async () => {
    const again = summaryOf(await runCli(["run", "--local", "--workdir", refDir, "--faults", FAULTS, "--json"]));
    expect(again.status).toBe("succeeded");
    expect(again.reconciled).toBe(true);
    const c = again.changed.silverTotal;
    expect({ inserted: c.inserted, updated: c.updated, deleted: c.deleted }).toEqual({ inserted: 0, updated: 0, deleted: 0 });
    expect(c.unchanged).toBe(reference.totals.silver);
    expect(again.totals.silver).toBe(reference.totals.silver);
    const digests = lakeDigests(refDir);
    for (const [table, d] of Object.entries(digests))
      expect({ table, duplicateKeys: d.duplicateKeys }).toEqual({ table, duplicateKeys: 0 });
    expectSameTables(digests, referenceDigests);
    expect(listRunRecords(workdirLayout(refDir)).map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
  }, 900_000);
});
