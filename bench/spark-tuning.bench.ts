// Spark tuning evidence for the silver job: the configured local Spark settings
// (config/local.json processing.localSpark) against Spark's defaults, on the same bronze data,
// all at once and one non-default setting at a time (bench/spark-tuning-plan.ts). Each trial is a
// fresh silver job process (a fresh JVM, since memory settings are fixed per JVM) writing to its
// own lake; its time is the silver step_total it records in its metrics.
//
// Bronze comes from the simulator through the real extractor (100 patients, ~16 k resources; 20
// with --quick). Each trial runs once (`bench --repeat K` repeats the whole benchmark); --quick
// compares only the configured settings with all defaults, without the per-setting trials.
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { loadConfig } from "../config/load";
import { readMetrics } from "../lib/core/report";
import { stepTimes } from "../lib/core/report-analysis";
import { ROOT, extractBronze, runProcess } from "./local-pipeline";
import { type Trial, nonDefaultKeys, trialOrder, tuningRatios, tuningTrials } from "./spark-tuning-plan";
import type { BenchOptions, BenchResult } from "./types";

const SPARK_JOBS = path.join(ROOT, "spark-jobs");
const PYTHON = path.join(SPARK_JOBS, ".venv", "bin", "python");

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const configured = loadConfig("local").processing.localSpark;
  const patients = opts.quick ? 20 : 100;
  const reps = 1;
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run node scripts/setup.js --python`);

  opts.log(`bronze: simulator with ${patients} patients, bulk extraction`);
  const bronzeDir = path.join(opts.workdir, "source", "bronze");
  const extracted = await extractBronze(patients, opts.workdir, bronzeDir, () => undefined);
  const { runId } = extracted;
  const bronze = pathToFileURL(bronzeDir).href;

  const trials = opts.quick ? tuningTrials(configured).slice(0, 2) : tuningTrials(configured);
  const seconds = await timeTrials(trials, { runId, bronze, reps, workdir: opts.workdir, log: opts.log });

  const info: Record<string, number | string> = {
    patients,
    resources: extracted.resources ?? "unknown",
    non_default: nonDefaultKeys(configured).join(",") || "none",
    repetitions: reps,
  };
  for (const [name, t] of seconds) info[`${name}_seconds`] = t.map((x) => x.toFixed(2)).join(",");
  return { name: "spark-tuning", ratios: tuningRatios(trials, seconds, configured), info };
}

/**
 * Runs the silver job once per trial and repetition, each into its own fresh lake, and returns
 * the silver step seconds per trial name.
 */
export async function timeTrials(
  trials: readonly Trial[],
  opts: { runId: string; bronze: string; reps: number; workdir: string; log: (line: string) => void },
): Promise<Map<string, number[]>> {
  const { runId, bronze, reps } = opts;
  const seconds = new Map<string, number[]>(trials.map((t) => [t.name, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const trial of trialOrder(trials, rep)) {
      const lake = path.join(opts.workdir, `trial-${rep}-${trial.name.replace(/[^a-zA-Z0-9]/g, "_")}`);
      fs.mkdirSync(lake, { recursive: true });
      const settingsFile = path.join(opts.workdir, `settings-${trial.name.replace(/[^a-zA-Z0-9]/g, "_")}.json`);
      fs.writeFileSync(settingsFile, JSON.stringify(trial.settings));
      await runProcess(
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
        { cwd: SPARK_JOBS, log: () => undefined, what: `silver job (${trial.name})` },
      );
      const silver = stepTimes(readMetrics(lake), runId).find((s) => s.step === "silver");
      if (!silver || silver.source !== "step_total") throw new Error(`silver job (${trial.name}) recorded no step_total`);
      seconds.get(trial.name)?.push(silver.seconds);
      opts.log(`${trial.name}: silver ${silver.seconds.toFixed(2)} s`);
      fs.rmSync(lake, { recursive: true, force: true });
    }
  }

  return seconds;
}
