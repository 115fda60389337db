// Chaos run: the whole local pipeline (`run --local --faults SPEC`: the synthesized state machine,
// the extractor's worker pool, local Spark for silver/gold/maintenance) against a simulator that
// misbehaves in every way it can at once: 429s with Retry-After, 500s, 503s, connection resets,
// slow answers, truncated downloads, corrupted NDJSON lines, access tokens that die after 1.5 s
// while expires_in says an hour, and a bulk job that reports an error file. Bulk files are small
// (150 resources) so a 20-patient export has dozens of downloads for the faults to hit; seed 3
// puts every kind of request fault among the first requests (the simulator's faults are
// deterministic per request number), so the run meets each of them.
//
// It must complete and reconcile exactly: every resource served is in bronze or counted as a
// reject with its reason, silver holds exactly bronze, no (type, id) twice in any silver table.
// The same run is the PHI-and-secrets test: Spark logs at INFO (FHIR_PIPELINE_SPARK_LOG_LEVEL)
// and Powertools at DEBUG; every line it wrote (stdout, stderr, every file under logs/, the run
// records, the report, the run's manifests and unit records) is searched for every name, birth
// date, street line, phone and MRN of the simulated population and for the private key's PEM lines.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RunSummary } from "../../lib/pipeline/run-summary";
import { Population } from "../../lib/simulator/population";
import { countBy, readBronze } from "../extractor/bronze-reader";
import { filesUnder, foundIn, lakeDigests, ROOT, startLocalRun, summaryOf, type CliResult, type TableDigest } from "./local-run-process";

const PATIENTS = 20;
const SEED = 3;
const FAULTS = "429:0.12,500:0.05,503:0.05,reset:0.05,slow:250ms:0.1,truncate:0.2,malformed:0.002,token-expiry:1500ms,bulk-error:1";

let workdir: string;
let result: CliResult;
let summary: RunSummary;
let digests: Record<string, TableDigest>;

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(ROOT, "scripts", "setup.js"), "--python"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), "chaos-run-"));
  result = await startLocalRun(
    { local: true, patients: PATIENTS, seed: SEED, workdir, faults: FAULTS, json: true, simulator: { resourcesPerFile: 150 } },
    { FHIR_PIPELINE_SPARK_LOG_LEVEL: "INFO", POWERTOOLS_LOG_LEVEL: "DEBUG" },
  ).done;
  summary = summaryOf(result);
  digests = lakeDigests(workdir);
}, 1_200_000);

afterAll(() => {
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

describe("chaos run: run --local with every fault on", () => {
  test("meets every kind of fault", () => {
    const faults = summary.simulator!.faults;
    for (const f of ["429", "500", "503", "reset", "slow", "truncate", "bulk-error"]) {
      expect({ fault: f, happened: (faults[f] ?? 0) > 0 }).toEqual({ fault: f, happened: true });
    }
    // Corrupted lines arrived and were counted (the malformed fault).
    expect(summary.totals.rejected).toBeGreaterThan(0);
    process.stdout.write(
      `chaos run: ${summary.simulator!.requests} FHIR requests, injected faults ${JSON.stringify(faults)}; ` +
        `served ${summary.totals.served} = bronze ${summary.totals.bronze} + rejected ${summary.totals.rejected}; silver ${summary.totals.silver}; ` +
        `stages ${JSON.stringify(summary.stages)}\n`,
    );
  });

  test("completes and reconciles exactly: served = bronze + rejects = silver, type by type", () => {
    expect(summary.status).toBe("succeeded");
    expect(summary.reconciliation.problems).toEqual([]);
    expect(summary.reconciliation.untypedRejects).toBe(0);
    expect(summary.reconciliation.silverCheck).toBe("exact");
    expect(summary.reconciled).toBe(true);
    expect(Object.keys(summary.layers).length).toBeGreaterThanOrEqual(11);
    for (const [type, c] of Object.entries(summary.layers)) {
      expect({ type, served: c.served }).toEqual({ type, served: c.bronze + c.rejected });
      expect({ type, silver: c.silver }).toEqual({ type, silver: c.bronze });
    }
    expect(summary.layers.Patient).toMatchObject({ served: PATIENTS, silver: PATIENTS });
  });

  test("every reject is in bronze's reject files with its type and reason", () => {
    const { rows, rejects } = readBronze(path.join(workdir, "lake", "bronze"), summary.runId);
    const rejectedPerType = Object.fromEntries(
      Object.entries(summary.layers)
        .filter(([, c]) => c.rejected > 0)
        .map(([t, c]) => [t, c.rejected]),
    );
    expect(countBy(rejects, (r) => r.resource_type as string)).toEqual(rejectedPerType);
    for (const r of rejects) {
      expect(typeof r.reason).toBe("string");
      expect(String(r.reason).length).toBeGreaterThan(0);
      expect(Number(r.line_number)).toBeGreaterThan(0);
    }
    // Bronze itself holds each resource once, although truncated files were downloaded again.
    expect(new Set(rows.map((r) => `${r.resource_type}/${r.id}`)).size).toBe(rows.length);
    expect(rows.length).toBe(summary.totals.bronze);
  });

  test("no duplicates: (type, id) unique in silver.resources, id unique in every view", () => {
    expect(digests["silver.resources"].rows).toBe(summary.totals.silver);
    for (const [table, d] of Object.entries(digests)) {
      expect({ table, duplicateKeys: d.duplicateKeys }).toEqual({ table, duplicateKeys: 0 });
    }
    for (const [table, rows] of Object.entries(summary.goldTables)) expect({ table, rows: rows > 0 }).toEqual({ table, rows: true });
  });

  test("no PHI and no private key in any log line of the run (debug logging on)", () => {
    const logFiles = [
      ...filesUnder(path.join(workdir, "logs")),
      ...filesUnder(path.join(workdir, "runs")),
      ...filesUnder(path.join(workdir, "report")),
      ...filesUnder(path.join(workdir, "lake", "bronze", "_runs")).filter((f) => f.endsWith(".json")),
    ];
    expect(logFiles.some((f) => f.endsWith("-spark.log"))).toBe(true);
    expect(logFiles.some((f) => f.endsWith("-extract.log"))).toBe(true);
    const sparkLog = fs.readFileSync(
      logFiles.find((f) => f.endsWith("-spark.log"))!,
      "utf8",
    );
    // Spark really logged at INFO (the debug switch took effect).
    expect(sparkLog).toMatch(/ INFO /);

    const phi = new Population({ patients: PATIENTS, seed: SEED, longIds: true }).phiStrings();
    expect(phi.length).toBe(PATIENTS * 5);
    const pem = fs.readFileSync(path.join(workdir, "simulator", "client-private-key.pem"), "utf8");
    const pemLines = pem
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length >= 16 && !l.startsWith("-----"));
    expect(pemLines.length).toBeGreaterThan(10);
    const needles = [...phi, ...pemLines, "PRIVATE KEY"];

    const texts: Array<[string, string]> = [
      ["stdout", result.stdout],
      ["stderr", result.stderr],
      ...logFiles.map((f): [string, string] => [path.relative(workdir, f), fs.readFileSync(f, "utf8")]),
    ];
    const leaks = texts.flatMap(([where, text]) => foundIn(text, needles).map((n) => `${where}: ${n.slice(0, 12)}…`));
    expect(leaks).toEqual([]);
    const lines = texts.reduce((a, [, t]) => a + t.split("\n").length, 0);
    process.stdout.write(
      `chaos run: searched ${lines} log lines in ${texts.length} outputs for ${needles.length} PHI/key strings: none found\n`,
    );
  });
});
