// Running the whole local pipeline (`fhir-pipeline run --local`) from a benchmark, and reading
// back what the run measured (its metrics Parquet). Shared by the scaling and tuning benchmarks.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { readMetrics } from "../lib/core/report";
import { type StepTime, listRuns, stepTimes } from "../lib/core/report-analysis";

export const ROOT = path.resolve(__dirname, "..");
export const CLI = path.join(ROOT, "bin", "fhir-pipeline.js");

/** Messages of a CLI that has no local pipeline yet (the command, an option, or its module). */
const NOT_AVAILABLE = /unknown command 'run'|unknown option '--(local|patients|workdir)'|not in this checkout yet/;

/** Runs a command, streaming its stderr lines to `log`; rejects with the stderr tail on failure. */
export function runProcess(
  command: string,
  args: readonly string[],
  opts: { cwd: string; log: (line: string) => void; what: string; env?: NodeJS.ProcessEnv },
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      for (const line of d.toString().split("\n")) if (line.trim()) opts.log(`  ${line.trimEnd()}`);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) return resolve({ stdout, stderr });
      const err = new Error(`${opts.what} failed with exit code ${code}:\n${stderr.trim().split("\n").slice(-5).join("\n")}`);
      (err as Error & { stderr?: string }).stderr = stderr;
      reject(err);
    });
  });
}

/** The run id in `run --local --json` output, if it prints one. */
export function runIdOf(stdout: string): string | undefined {
  const text = stdout.trim();
  for (const candidate of [text, text.split("\n").pop() ?? ""]) {
    try {
      const parsed = JSON.parse(candidate) as { runId?: unknown; run?: { runId?: unknown } };
      const id = parsed.runId ?? parsed.run?.runId;
      if (typeof id === "string") return id;
    } catch {
      // not JSON: callers fall back to the only run in the work directory
    }
  }
  return undefined;
}

/**
 * `node CLI run --local --patients N --workdir DIR --json`; returns the run id and its step
 * times from the metrics it wrote. With `advance`, the next run in that work directory one
 * simulated day later (`run --local --workdir DIR --advance --json`: the incremental run).
 * Fails with "run --local is not available yet" when the CLI has no local pipeline.
 */
export async function runLocalPipeline(
  cli: string,
  patients: number,
  workdir: string,
  log: (line: string) => void,
  opts: { advance?: boolean } = {},
): Promise<{ runId: string; steps: StepTime[] }> {
  fs.mkdirSync(workdir, { recursive: true });
  const args = opts.advance
    ? [cli, "run", "--local", "--workdir", workdir, "--advance", "--json"]
    : [cli, "run", "--local", "--patients", String(patients), "--workdir", workdir, "--json"];
  const what = `fhir-pipeline run --local ${opts.advance ? "--advance" : `--patients ${patients}`}`;
  let stdout: string;
  try {
    ({ stdout } = await runProcess(process.execPath, args, { cwd: ROOT, log, what }));
  } catch (err) {
    const stderr = (err as Error & { stderr?: string }).stderr ?? "";
    if (NOT_AVAILABLE.test(stderr)) throw new Error(`run --local is not available yet (${stderr.trim().split("\n").pop()})`);
    throw err;
  }
  const rows = readMetrics(workdir);
  const runId = runIdOf(stdout) ?? listRuns(rows).pop()?.runId;
  if (!runId) throw new Error(`${what} recorded no metrics in ${workdir}`);
  return { runId, steps: stepTimes(rows, runId) };
}

/**
 * Bronze only: the built-in simulator with `patients` patients, bulk-extracted by the real
 * extractor (`fhir-pipeline extract`) into `bronzeDir`. Returns the bronze run id, the resources
 * extracted and the seconds the extraction took.
 */
export async function extractBronze(
  patients: number,
  workdir: string,
  bronzeDir: string,
  log: (line: string) => void,
): Promise<{ runId: string; resources?: number; seconds: number }> {
  // Loaded lazily: benchmarks that run the whole pipeline do not need the simulator in-process.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startSimulator } = require("../lib/simulator") as typeof import("../lib/simulator");
  const clientFile = path.join(workdir, "client.json");
  const sim = await startSimulator({ patients, seed: 7, clientOut: clientFile, workdir: path.join(workdir, "sim") });
  try {
    const t0 = process.hrtime.bigint();
    const { stdout } = await runProcess(
      process.execPath,
      [CLI, "extract", "--client", clientFile, "--out", pathToFileURL(bronzeDir).href, "--json"],
      {
        cwd: ROOT,
        log,
        what: "fhir-pipeline extract",
      },
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    // extract --json: { run_id, resources: { Type: n, ... }, rejected, bytes, seconds }
    const summary = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as { run_id?: string; resources?: Record<string, number> };
    const runId = summary.run_id;
    if (!runId) throw new Error("extract --json printed no run_id");
    const resources = summary.resources ? Object.values(summary.resources).reduce((a, b) => a + b, 0) : undefined;
    return { runId, resources, seconds };
  } finally {
    await sim.stop();
  }
}
