// Progressive load: the whole local pipeline (`fhir-pipeline run --local`) at three sizes spanning
// 10x, then each stage's fitted exponent of time against resources (bench/scaling-fit.ts). The
// stage times come from each run's metrics Parquet (the report's step times), so the benchmark
// measures what the product measures. Ratios: scaling.<step>.exponent, target <= 1.1.
//
// Then the largest size runs once more, one simulated day later (`--advance`): the incremental
// run's time over the first's, target <= 0.5 (issue 6: "much faster than the first run").
//
// Sizes (patients, ~170 resources each): 30, 100, 300 by default; 10, 30, 100 with --quick (each
// local run pays several minutes of fixed Spark cost on 2 cores, so larger defaults would not fit
// the 30-minute budget of `npm run bench`); SCALING_SIZES=a,b,c
// overrides both.
import * as path from "node:path";
import { CLI, runLocalPipeline } from "./local-pipeline";
import { type ScalingPoint, fitPowerLaw, span, stageExponents } from "./scaling-fit";
import type { BenchOptions, BenchRatio, BenchResult } from "./types";

const EXTRACT_STEP = "extract";

export function scalingSizes(quick: boolean, env = process.env.SCALING_SIZES): number[] {
  if (env) {
    const sizes = env.split(",").map(Number);
    if (sizes.length < 3 || sizes.some((n) => !Number.isInteger(n) || n < 1))
      throw new Error(`SCALING_SIZES must list at least three positive integers, not ${env}`);
    return sizes;
  }
  return quick ? [10, 30, 100] : [30, 100, 300];
}

/** One size: run the pipeline, then take its step times and resources from its metrics. */
async function measure(cli: string, patients: number, workdir: string, log: (line: string) => void): Promise<ScalingPoint> {
  const { runId, steps } = await runLocalPipeline(cli, patients, workdir, log);
  const resources = steps.find((s) => s.step === EXTRACT_STEP)?.records;
  if (!resources) throw new Error(`run ${runId} recorded no ${EXTRACT_STEP} step_records: the resources the stages scale with are unknown`);
  return { size: patients, resources, stepSeconds: Object.fromEntries(steps.map((s) => [s.step, s.seconds])) };
}

/**
 * The incremental run's time over the first run's (pure): in total over the steps both ran, and
 * per step. A step only one of them ran is left out of both.
 */
export function incrementalRatios(
  first: Record<string, number>,
  next: Record<string, number>,
): { total: number; stages: Record<string, number> } {
  const steps = Object.keys(first).filter((s) => s in next && first[s] > 0);
  if (steps.length === 0) throw new Error("the first and the incremental run have no step in common");
  const sum = (times: Record<string, number>) => steps.reduce((a, s) => a + times[s], 0);
  return { total: sum(next) / sum(first), stages: Object.fromEntries(steps.map((s) => [s, next[s] / first[s]])) };
}

export function run(opts: BenchOptions): Promise<BenchResult> {
  return runScaling(opts, CLI);
}

/** The benchmark against a given CLI entry (`node CLI run --local ...`); `run` uses the real one. */
export async function runScaling(opts: BenchOptions, cli: string): Promise<BenchResult> {
  const sizes = scalingSizes(opts.quick);
  const points: ScalingPoint[] = [];
  for (const patients of sizes) {
    opts.log(`pipeline with ${patients} patients`);
    const point = await measure(cli, patients, path.join(opts.workdir, `patients-${patients}`), opts.log);
    opts.log(
      `${patients} patients: ${point.resources} resources; ${Object.entries(point.stepSeconds)
        .map(([s, t]) => `${s} ${t.toFixed(1)} s`)
        .join(", ")}`,
    );
    points.push(point);
  }
  // The largest size once more, one simulated day later: the incremental run against the first.
  const largest = sizes[sizes.length - 1];
  opts.log(`pipeline with ${largest} patients one simulated day later (incremental)`);
  const day1 = await runLocalPipeline(cli, largest, path.join(opts.workdir, `patients-${largest}`), opts.log, { advance: true });
  const first = points[points.length - 1].stepSeconds;
  const next = Object.fromEntries(day1.steps.map((s) => [s.step, s.seconds]));
  const incremental = incrementalRatios(first, next);
  opts.log(
    `${largest} patients, day 1: ${Object.entries(next)
      .map(([s, t]) => `${s} ${t.toFixed(1)} s`)
      .join(", ")}`,
  );
  const { fits, skipped } = stageExponents(points);
  const ratios: BenchRatio[] = fits.map(({ step, fit }) => ({
    name: `scaling.${step}.exponent`,
    value: fit.exponent,
    higherIsBetter: false,
    target: { op: "<=", value: 1.1 },
    detail: `${step}: time ~ resources^k fitted over ${fit.points} runs (${points.map((p) => p.resources).join(", ")} resources), r2 ${fit.r2.toFixed(3)}; 1.0 is linear`,
  }));
  ratios.push({
    name: "scaling.incremental_vs_first",
    value: incremental.total,
    higherIsBetter: false,
    target: { op: "<=", value: 0.5 },
    detail: `the whole local pipeline one simulated day later (incremental) / its first run, ${largest} patients, same work dir; per stage: ${Object.entries(
      incremental.stages,
    )
      .map(([s, r]) => `${s} ${r.toFixed(2)}`)
      .join(", ")}`,
  });
  const info: Record<string, number | string> = {
    sizes: sizes.join(","),
    resources: points.map((p) => p.resources).join(","),
    span: Number(span(points).toFixed(1)),
  };
  const totals = points.map((p) => Object.values(p.stepSeconds).reduce((a, b) => a + b, 0));
  info.total_exponent = Number(
    fitPowerLaw(
      points.map((p) => p.resources),
      totals,
    ).exponent.toFixed(3),
  );
  for (const { step } of fits) info[`${step}_seconds`] = points.map((p) => p.stepSeconds[step].toFixed(1)).join(",");
  if (skipped.length) info.not_fitted = skipped.join(",");
  for (const [step, ratio] of Object.entries(incremental.stages)) info[`incremental_${step}_vs_first`] = Number(ratio.toFixed(3));
  return { name: "scaling", ratios, info };
}
