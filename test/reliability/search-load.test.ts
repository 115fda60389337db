// Load: a search-mode extraction of 5,000 patients with 16 workers against a simulator limited
// to 200 requests/s per client, 5% of whose requests fail on purpose (429 with Retry-After, 500,
// 503, connection reset). The client's shared rate budget is set at the server's limit, so the
// only 429s are the injected ones: the server's rate limiter refuses nothing. Memory stays
// bounded (the extraction runs in a child process, whose peak RSS is measured alone), and
// nothing is lost: bronze holds exactly what the server served, type by type, once each. The
// simulator runs as its own process (the `simulate` CLI), as an Epic server would.
// Four types (Observation by one category) keep it at ~21,000 requests, about 105 s at 200/s.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { readParquetTable } from "../../lambdas/extractor/bronze/bronze-parquet";
import { parquetFiles, tempDir } from "../extractor/bronze-reader";
import { startSimulatorProcess, type SimulatorProcess } from "./simulator-process";

const PATIENTS = 5000;
const WORKERS = 16;
const RATE = 200;
const FAULTS = "429:0.02,500:0.01,503:0.01,reset:0.01";
/** Peak RSS bound of the extracting process (it measured ~250 MB). */
const RSS_BOUND = 400 << 20;

interface ChildReport {
  runId: string;
  resources: Record<string, number>;
  rejected: number;
  seconds: number;
  http: { requests: number; retries: number; throttled: number; unauthorized: number };
  units: { total: number; done: number; failed: number };
  maxRssBytes: number;
}

/** (type, id) keys of a run's bronze rows, and its reject files (only the key columns are kept in memory). */
function bronzeKeys(bronzeDir: string, runId: string): { keys: string[]; rejectFiles: number } {
  const keys: string[] = [];
  let rejectFiles = 0;
  for (const f of parquetFiles(bronzeDir)) {
    if (!f.includes(`run_id=${runId}`)) continue;
    if (f.includes(`${path.sep}_rejects${path.sep}`)) {
      rejectFiles++;
      continue;
    }
    const t = readParquetTable(fs.readFileSync(f));
    const types = t.getChild("resource_type")!;
    const ids = t.getChild("id")!;
    for (let i = 0; i < t.numRows; i++) keys.push(`${String(types.get(i))}/${String(ids.get(i))}`);
  }
  return { keys, rejectFiles };
}

function runChild(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-r", "tsx/cjs", path.join(__dirname, "search-load-child.ts"), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("search-mode load", () => {
  let sim: SimulatorProcess | undefined;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir("search-load-");
    sim = await startSimulatorProcess(dir, [
      "--patients",
      String(PATIENTS),
      "--seed",
      "7",
      "--rate-limit",
      String(RATE),
      "--faults",
      FAULTS,
    ]);
  }, 120_000);
  afterAll(async () => {
    await sim?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test(`${PATIENTS} patients, ${WORKERS} workers, ${RATE} requests/s, 5% faults: no 429 beyond the injected ones, bounded memory, nothing lost`, async () => {
    const options = {
      concurrency: WORKERS,
      rateLimit: RATE,
      types: ["Patient", "Encounter", "Condition", "Observation"],
      observationCategories: ["laboratory"],
    };
    const bronze = path.join(dir, "bronze");
    const r = await runChild([sim!.clientFile, bronze, JSON.stringify(options)]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim()) as ChildReport;
    const stats = await sim!.stats();

    // The rate limit held: the server's limiter refused nothing; every 429 was an injected fault.
    expect(stats.throttled).toBe(0);
    expect(report.http.throttled).toBe(stats.faults["429"]);
    for (const f of ["429", "500", "503", "reset"])
      expect({ fault: f, injected: (stats.faults[f] ?? 0) > 0 }).toEqual({ fault: f, injected: true });
    expect(stats.requests).toBe(report.http.requests);
    const achievedRate = stats.requests / report.seconds;
    expect(achievedRate).toBeLessThanOrEqual(RATE * 1.02);

    // Nothing lost: every unit done, bronze = served for every type, each resource once.
    expect(report.units).toEqual({ total: PATIENTS / 25, done: PATIENTS / 25, failed: 0 });
    expect(report.rejected).toBe(0);
    expect(stats.served.Patient).toBe(PATIENTS);
    expect(report.resources).toEqual(stats.served);
    const { keys, rejectFiles } = bronzeKeys(bronze, report.runId);
    expect(rejectFiles).toBe(0);
    const perType: Record<string, number> = {};
    for (const k of keys) perType[k.slice(0, k.indexOf("/"))] = (perType[k.slice(0, k.indexOf("/"))] ?? 0) + 1;
    expect(perType).toEqual(stats.served);
    expect(new Set(keys).size).toBe(keys.length);

    // Bounded memory.
    expect(report.maxRssBytes).toBeLessThan(RSS_BOUND);
    process.stdout.write(
      `search load: ${stats.requests} requests in ${report.seconds.toFixed(1)} s (${achievedRate.toFixed(1)}/s at a limit of ${RATE}/s), ` +
        `${keys.length} resources, injected faults ${JSON.stringify(stats.faults)}, server-throttled ${stats.throttled}, ` +
        `peak RSS ${(report.maxRssBytes / (1 << 20)).toFixed(0)} MB\n`,
    );
  }, 600_000);
});
