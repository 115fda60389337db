// Silver benchmark: bronze from the simulator through the real extractor (`fhir-pipeline
// extract`, bulk), then spark-jobs/src/fhir_lakehouse/bench_silver.py times, side by side on that
// bronze run, the silver job, the naive way (spark.read.json + a Python UDF per column) and DuckDB
// (read_ndjson_objects + JSON/unnest), and prints the BenchResult this module returns. Silver and
// DuckDB run on every resource; the naive way (about ten times slower per resource) on a
// deterministic sample of the same run at full size (every Nth resource of each view type by id
// hash, at least 100,000 resources), compared by resources per second.
//
// Size: 6,200 patients (~1 million resources, ~165 each); --quick: 300 patients (~50 k).
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { startSimulator } from "../lib/simulator";
import { CLI, ROOT, runProcess } from "./local-pipeline";
import type { BenchOptions, BenchResult } from "./types";

const SPARK_JOBS = path.join(ROOT, "spark-jobs");
const PYTHON = path.join(SPARK_JOBS, ".venv", "bin", "python");

export const FULL_PATIENTS = 6200;
export const QUICK_PATIENTS = 300;

/** The BenchResult printed by bench_silver.py (the last line of its stdout). */
export function parseBenchOutput(stdout: string): BenchResult {
  const line = stdout.trim().split("\n").pop() ?? "";
  const parsed = JSON.parse(line) as BenchResult;
  if (parsed.name !== "silver" || !Array.isArray(parsed.ratios)) throw new Error("bench_silver.py printed no BenchResult");
  return parsed;
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run node scripts/setup.js --python`);
  const patients = opts.quick ? QUICK_PATIENTS : FULL_PATIENTS;
  const bronzeDir = path.join(opts.workdir, "lake", "bronze");
  const clientFile = path.join(opts.workdir, "client.json");
  opts.log(`simulator with ${patients} patients, bulk extraction to bronze`);
  const sim = await startSimulator({ patients, seed: 7, clientOut: clientFile, workdir: path.join(opts.workdir, "sim") });
  let runId: string;
  let extractSeconds: number;
  try {
    const t0 = Date.now();
    const { stdout } = await runProcess(
      process.execPath,
      [CLI, "extract", "--client", clientFile, "--out", pathToFileURL(bronzeDir).href, "--json"],
      { cwd: ROOT, log: () => undefined, what: "fhir-pipeline extract" },
    );
    extractSeconds = (Date.now() - t0) / 1000;
    const summary = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as { run_id?: string; runId?: string };
    const id = summary.run_id ?? summary.runId;
    if (!id) throw new Error("extract --json printed no run id");
    runId = id;
  } finally {
    await sim.stop();
  }
  opts.log(`bronze run ${runId} extracted in ${extractSeconds.toFixed(1)} s; timing silver, naive and DuckDB`);
  const { stdout } = await runProcess(
    PYTHON,
    ["-m", "fhir_lakehouse.bench_silver", "--bronze", pathToFileURL(bronzeDir).href, "--run-id", runId, "--workdir", opts.workdir],
    { cwd: SPARK_JOBS, log: opts.log, what: "bench_silver.py" },
  );
  const result = parseBenchOutput(stdout);
  result.info.patients = patients;
  result.info.extract_s = Number(extractSeconds.toFixed(1));
  return result;
}
