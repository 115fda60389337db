// Spark tuning evidence for the silver job: the configured local Spark settings
// (config/local.json processing.localSpark) against Spark's defaults, on the same bronze data,
// all at once and one non-default setting at a time (bench/spark-tuning-plan.ts). Each trial is a
// fresh silver job process (a fresh JVM, since memory settings are fixed per JVM) writing to its
// own lake. The verdict is the CPU time of the job's processes (Python and its JVM, sampled from
// /proc): on a 2-core machine other jobs keep busy, one job's wall time swings by 2x between runs
// while its CPU time does not. Wall time and the silver step time it records go to `info`.
//
// Bronze comes from the simulator through the real extractor (100 patients, ~16 k resources; 20
// with --quick). Each trial runs once (`bench --repeat K` repeats the whole benchmark); --quick
// runs only the first two trials.
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { loadConfig } from "../config/load";
import { readMetrics } from "../lib/core/report";
import { stepTimes } from "../lib/core/report-analysis";
import { ROOT, extractBronze } from "./local-pipeline";
import { procAvailable, runMeasured } from "./process-cpu";
import { type Trial, nonDefaultKeys, trialOrder, tuningRatios, tuningTrials } from "./spark-tuning-plan";
import type { BenchOptions, BenchResult } from "./types";

const SPARK_JOBS = path.join(ROOT, "spark-jobs");
const PYTHON = path.join(SPARK_JOBS, ".venv", "bin", "python");

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const configured = loadConfig("local").processing.localSpark;
  const patients = opts.quick ? 20 : 100;
  // One run per trial: CPU time varies by a few percent between runs (wall time by 2x), and the
  // bench budget (30 minutes for the suite on 2 cores) has room for five silver runs here.
  const reps = 1;
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run node scripts/setup.js --python`);
  if (!procAvailable()) throw new Error("the tuning benchmark measures CPU time from /proc: it runs on Linux only");

  opts.log(`bronze: simulator with ${patients} patients, bulk extraction`);
  const bronzeDir = path.join(opts.workdir, "source", "bronze");
  const extracted = await extractBronze(patients, opts.workdir, bronzeDir, () => undefined);
  const { runId } = extracted;
  const bronze = pathToFileURL(bronzeDir).href;

  const trials = opts.quick ? tuningTrials(configured).slice(0, 2) : tuningTrials(configured);
  const measured = await timeTrials(trials, { runId, bronze, reps, workdir: opts.workdir, log: opts.log });

  const info: Record<string, number | string> = {
    patients,
    resources: extracted.resources ?? "unknown",
    non_default: nonDefaultKeys(configured).join(",") || "none",
    repetitions: reps,
  };
  const cpu = new Map([...measured].map(([name, m]) => [name, m.cpu]));
  const wall = new Map([...measured].map(([name, m]) => [name, m.wall]));
  for (const [name, m] of measured) {
    info[`${name}_cpu_s`] = m.cpu.map((x) => x.toFixed(1)).join(",");
    info[`${name}_wall_s`] = m.wall.map((x) => x.toFixed(1)).join(",");
    info[`${name}_silver_step_s`] = m.step.map((x) => x.toFixed(1)).join(",");
  }
  // Context: the same comparison in wall time (noisy on a shared machine).
  for (const r of tuningRatios(trials, wall, configured)) info[`${r.name}.wall_ratio`] = Number(r.value.toFixed(3));
  return { name: "spark-tuning", ratios: tuningRatios(trials, cpu, configured), info };
}

/** What one trial measured, per repetition. */
export interface TrialTimes {
  /** CPU seconds of the job's processes (Python and its JVM). */
  cpu: number[];
  /** Wall seconds of the job's process, start to exit. */
  wall: number[];
  /** The silver step time the job recorded in its metrics. */
  step: number[];
}

/**
 * Runs the silver job once per trial and repetition, each into its own fresh lake, and returns
 * what each trial measured.
 */
export async function timeTrials(
  trials: readonly Trial[],
  opts: { runId: string; bronze: string; reps: number; workdir: string; log: (line: string) => void },
): Promise<Map<string, TrialTimes>> {
  const { runId, bronze, reps } = opts;
  const measured = new Map<string, TrialTimes>(trials.map((t) => [t.name, { cpu: [], wall: [], step: [] }]));
  for (let rep = 0; rep < reps; rep++) {
    for (const trial of trialOrder(trials, rep)) {
      const lake = path.join(opts.workdir, `trial-${rep}-${trial.name.replace(/[^a-zA-Z0-9]/g, "_")}`);
      fs.mkdirSync(lake, { recursive: true });
      const settingsFile = path.join(opts.workdir, `settings-${trial.name.replace(/[^a-zA-Z0-9]/g, "_")}.json`);
      fs.writeFileSync(settingsFile, JSON.stringify(trial.settings));
      const { wallSeconds, cpuSeconds } = await runMeasured(
        PYTHON,
        [
          "-m",
          "fhir_lakehouse.silver_job",
          "--lake",
          pathToFileURL(lake).href,
          "--run-id",
          runId,
          "--bronze",
          bronze,
          "--settings-json",
          settingsFile,
        ],
        { cwd: SPARK_JOBS, what: `silver job (${trial.name})` },
      );
      const silver = stepTimes(readMetrics(lake), runId).find((s) => s.step === "silver");
      if (!silver || silver.source !== "step_total") throw new Error(`silver job (${trial.name}) recorded no step_total`);
      const m = measured.get(trial.name)!;
      m.cpu.push(cpuSeconds);
      m.wall.push(wallSeconds);
      m.step.push(silver.seconds);
      opts.log(
        `${trial.name}: CPU ${cpuSeconds.toFixed(1)} s, wall ${wallSeconds.toFixed(1)} s (silver step ${silver.seconds.toFixed(1)} s)`,
      );
      fs.rmSync(lake, { recursive: true, force: true });
    }
  }
  return measured;
}
