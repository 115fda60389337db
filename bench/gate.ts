// The performance regression gate (pure): a baseline records each benchmark ratio with a
// tolerance derived from its measured run-to-run variance; a later run fails the gate when a
// ratio is worse than its baseline by more than that tolerance, in the ratio's own direction.
import type { BenchRatio, BenchResult } from "./types";

export interface MachineInfo {
  cores: number;
  memoryGiB: number;
  cpuModel: string;
  platform: string;
  node: string;
}

export interface BaselineRatio {
  /** Benchmark that produces the ratio (its file name without .bench.ts). */
  bench: string;
  /** Mean of the samples. */
  value: number;
  higherIsBetter: boolean;
  /** Largest relative worsening accepted, e.g. 0.12 = 12 %. */
  tolerance: number;
  /** Relative standard deviation of the samples (stddev / |mean|), 0 with one sample. */
  relStddev: number;
  samples: number[];
  detail: string;
  target?: BenchRatio["target"];
  recordedAt: string;
}

/** The data sizes a run used: the benchmarks' default sizes, or --quick. */
export type BenchMode = "full" | "quick";

export interface Baseline {
  version: 1;
  /** When the file was last written. */
  updatedAt: string;
  /**
   * The sizes its ratios were measured at. Ratios depend on data size (fixed costs weigh more on
   * small data), so the gate only compares a run at the same sizes. Absent in older files: full.
   */
  mode?: BenchMode;
  machine: MachineInfo;
  /** How tolerances are derived: max(k * relStddev, floor). */
  tolerancePolicy: { k: number; floor: number };
  ratios: Record<string, BaselineRatio>;
}

/** All samples of one ratio across repeated runs. */
export interface RatioSamples {
  bench: string;
  name: string;
  samples: number[];
  higherIsBetter: boolean;
  detail: string;
  target?: BenchRatio["target"];
}

export const DEFAULT_POLICY = { k: 3, floor: 0.1 };

export function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n - 1); 0 for fewer than two samples. */
export function stddev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((acc, x) => acc + (x - m) ** 2, 0) / (xs.length - 1));
}

export function relStddev(xs: readonly number[]): number {
  const m = Math.abs(mean(xs));
  return m > 0 ? stddev(xs) / m : 0;
}

/** Tolerance from measured variance: k standard deviations (relative), never below the floor. */
export function toleranceFromSamples(samples: readonly number[], policy = DEFAULT_POLICY): number {
  return Math.max(policy.k * relStddev(samples), policy.floor);
}

/** Groups the ratios of repeated runs (`runs[i]` = the results of repetition i) by name. */
export function collectSamples(runs: readonly (readonly BenchResult[])[]): RatioSamples[] {
  const byName = new Map<string, RatioSamples>();
  for (const results of runs) {
    for (const result of results) {
      for (const r of result.ratios) {
        let s = byName.get(r.name);
        if (!s)
          byName.set(
            r.name,
            (s = { bench: result.name, name: r.name, samples: [], higherIsBetter: r.higherIsBetter, detail: r.detail, target: r.target }),
          );
        s.samples.push(r.value);
      }
    }
  }
  return [...byName.values()];
}

/**
 * A baseline from measured samples. Ratios of benchmarks that did not run are kept from
 * `previous`, so `bench NAME --update-baseline` refreshes one benchmark only.
 */
export function buildBaseline(
  samples: readonly RatioSamples[],
  machine: MachineInfo,
  now: Date,
  previous?: Baseline,
  policy = DEFAULT_POLICY,
  mode: BenchMode = "full",
): Baseline {
  const ranBenches = new Set(samples.map((s) => s.bench));
  const ratios: Record<string, BaselineRatio> = {};
  // Ratios measured at other sizes are not comparable with these: a new mode starts a new file.
  const keepPrevious = previous && baselineMode(previous) === mode;
  for (const [name, r] of Object.entries(keepPrevious ? previous.ratios : {})) if (!ranBenches.has(r.bench)) ratios[name] = r;
  for (const s of samples) {
    const entry: BaselineRatio = {
      bench: s.bench,
      value: mean(s.samples),
      higherIsBetter: s.higherIsBetter,
      tolerance: toleranceFromSamples(s.samples, policy),
      relStddev: relStddev(s.samples),
      samples: [...s.samples],
      detail: s.detail,
      recordedAt: now.toISOString(),
    };
    if (s.target) entry.target = s.target;
    ratios[s.name] = entry;
  }
  const sorted = Object.fromEntries(Object.entries(ratios).sort(([a], [b]) => a.localeCompare(b)));
  return { version: 1, updatedAt: now.toISOString(), mode, machine, tolerancePolicy: policy, ratios: sorted };
}

/** The sizes a baseline was measured at (files written before modes were recorded: full). */
export function baselineMode(b: Baseline): BenchMode {
  return b.mode ?? "full";
}

/**
 * The mode a run must use to be compared with `baseline`: the baseline's. Asking for quick sizes
 * against a full-size baseline is an error (the ratios would differ by size, not by regression);
 * without --quick, a quick baseline makes the run quick.
 */
export function modeForComparison(baseline: Baseline, quickRequested: boolean, source: string): BenchMode {
  const mode = baselineMode(baseline);
  if (quickRequested && mode === "full")
    throw new Error(`${source} was recorded at the benchmarks' full sizes: compare a run without --quick, or record a --quick baseline`);
  return mode;
}

export type GateStatus = "ok" | "improved" | "regressed" | "missing" | "new";

export interface GateFinding {
  name: string;
  bench: string;
  status: GateStatus;
  current?: number;
  baseline?: number;
  tolerance?: number;
  /** Relative change in the bad direction: +0.2 = 20 % worse, -0.1 = 10 % better. */
  worsening?: number;
}

/**
 * How much worse `current` is than `baseline` relative to the baseline, in the ratio's
 * direction (positive = worse). A zero baseline compares absolutely.
 */
export function worsening(current: number, baseline: number, higherIsBetter: boolean): number {
  const delta = higherIsBetter ? baseline - current : current - baseline;
  return delta / (Math.abs(baseline) || 1);
}

/**
 * Compares the ratios measured now with the baseline. Only benchmarks that ran are judged: a
 * baseline ratio of a benchmark that ran but no longer reports it is "missing" (fails).
 */
export function runGate(current: readonly RatioSamples[], baseline: Baseline): { findings: GateFinding[]; failed: boolean } {
  const findings: GateFinding[] = [];
  const seen = new Set<string>();
  for (const s of current) {
    seen.add(s.name);
    const value = mean(s.samples);
    const base = baseline.ratios[s.name];
    if (!base) {
      findings.push({ name: s.name, bench: s.bench, status: "new", current: value });
      continue;
    }
    const w = worsening(value, base.value, base.higherIsBetter);
    const status: GateStatus = w > base.tolerance ? "regressed" : w < -base.tolerance ? "improved" : "ok";
    findings.push({ name: s.name, bench: s.bench, status, current: value, baseline: base.value, tolerance: base.tolerance, worsening: w });
  }
  const ranBenches = new Set(current.map((s) => s.bench));
  for (const [name, base] of Object.entries(baseline.ratios)) {
    if (ranBenches.has(base.bench) && !seen.has(name))
      findings.push({ name, bench: base.bench, status: "missing", baseline: base.value, tolerance: base.tolerance });
  }
  return { findings, failed: findings.some((f) => f.status === "regressed" || f.status === "missing") };
}

/** Whether a value meets its target (undefined when the ratio has none). */
export function targetMet(value: number, target: BenchRatio["target"]): boolean | undefined {
  if (!target) return undefined;
  return target.op === ">=" ? value >= target.value : value <= target.value;
}

/** Checks that a parsed JSON file is a baseline, naming what is wrong. */
export function parseBaseline(raw: unknown, source: string): Baseline {
  const b = raw as Partial<Baseline>;
  if (!b || typeof b !== "object" || b.version !== 1 || typeof b.ratios !== "object" || b.ratios === null) {
    throw new Error(`${source} is not a benchmark baseline (expected { version: 1, ratios: {...} })`);
  }
  if (b.mode !== undefined && b.mode !== "full" && b.mode !== "quick") throw new Error(`${source}: mode must be "full" or "quick"`);
  for (const [name, r] of Object.entries(b.ratios)) {
    if (
      typeof r?.value !== "number" ||
      typeof r.tolerance !== "number" ||
      typeof r.higherIsBetter !== "boolean" ||
      typeof r.bench !== "string"
    ) {
      throw new Error(`${source}: ratio ${name} needs numeric value and tolerance, boolean higherIsBetter and a bench name`);
    }
  }
  return b as Baseline;
}
