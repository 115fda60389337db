// Gold benchmark: spark-jobs/src/fhir_lakehouse/bench_gold.py builds synthetic silver views, times
// the gold job in full and incrementally after 1% of the patients changed (same session, side by
// side), runs the aggregates with their other strategy on a second 1% change, and measures the
// bytes a one-patient lookup on gold.latest_observation reads (Iceberg partition pruning, Parquet
// row-group statistics and bloom filters) against the table's size. It prints the BenchResult this
// module returns.
//
// Size: 20,000 patients (~1.7 million silver rows); --quick: 2,000.
import * as fs from "node:fs";
import * as path from "node:path";
import { loadConfig } from "../config/load";
import { ROOT, runProcess } from "./local-pipeline";
import type { BenchOptions, BenchResult } from "./types";

const SPARK_JOBS = path.join(ROOT, "spark-jobs");
const PYTHON = path.join(SPARK_JOBS, ".venv", "bin", "python");

export const FULL_PATIENTS = 20000;
export const QUICK_PATIENTS = 2000;

/** The BenchResult printed by bench_gold.py (the last line of its stdout). */
export function parseBenchOutput(stdout: string): BenchResult {
  const line = stdout.trim().split("\n").pop() ?? "";
  const parsed = JSON.parse(line) as BenchResult;
  if (parsed.name !== "gold" || !Array.isArray(parsed.ratios)) throw new Error("bench_gold.py printed no BenchResult");
  return parsed;
}

export async function run(opts: BenchOptions): Promise<BenchResult> {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run node scripts/setup.js --python`);
  const patients = opts.quick ? QUICK_PATIENTS : FULL_PATIENTS;
  const spark = loadConfig("local").processing.localSpark;
  opts.log(`gold: ${patients} synthetic patients; full vs incremental gold run, one-patient lookup bytes`);
  const { stdout } = await runProcess(
    PYTHON,
    ["-m", "fhir_lakehouse.bench_gold", "--workdir", opts.workdir, "--patients", String(patients), "--settings-json", JSON.stringify(spark)],
    {
      cwd: SPARK_JOBS,
      // Spark's own log is noise here; bench_gold.py's progress lines are prefixed.
      log: (line) => {
        if (line.includes("[bench_gold]")) opts.log(line);
      },
      what: "bench_gold.py",
    },
  );
  return parseBenchOutput(stdout);
}
