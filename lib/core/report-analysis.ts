// Pure analysis of the metrics contract's rows: the runs, a run's five slowest operations, its
// per-step times and bottleneck, and the comparison with the previous run. No I/O here: the CLI
// (lib/cli/commands/report.ts) and the HTML page (report-html.ts) read the rows and call these.
import type { MetricRecord } from "./metrics";
import { STEP_METRICS } from "./metrics";

export interface RunInfo {
  runId: string;
  /** Earliest recorded_at of the run, ISO 8601 UTC. */
  startedAt: string;
  /** Steps in the order they first recorded something. */
  steps: string[];
  records: number;
}

export interface Operation {
  step: string;
  name: string;
  seconds: number;
  recordedAt: string;
  attributes: Record<string, unknown>;
}

export interface StepTime {
  step: string;
  seconds: number;
  /** Share of the run's step time (0..1). */
  share: number;
  /**
   * "step_total": the sum of the step's step_total records (one per process: parallel workers
   * add up to busy time); "largest_runtime": no step_total, so its largest RUNTIME record.
   */
  source: "step_total" | "largest_runtime";
  records?: number;
  bytes?: number;
  /** records / seconds, or the step_throughput record when records are not known. */
  throughput?: number;
}

export interface StepComparison {
  step: string;
  seconds?: number;
  previousSeconds?: number;
  /** current / previous time: below 1 is faster. */
  timeRatio?: number;
  throughput?: number;
  previousThroughput?: number;
  /** current / previous throughput: above 1 is better. */
  throughputRatio?: number;
}

export interface RunReport {
  run: RunInfo;
  previousRun?: RunInfo;
  /** DESIGN.md's query on the run: RUNTIME rows by value, descending, first five. */
  slowest: Operation[];
  steps: StepTime[];
  bottleneck?: StepTime;
  comparison: StepComparison[];
  /** Every COUNT record of the run summed per step and name (e.g. resources per layer). */
  counts: { step: string; name: string; value: number }[];
}

const isoOf = (micros: bigint) => new Date(Number(micros / 1000n)).toISOString();

/** Runs in the order they started (earliest recorded_at). */
export function listRuns(rows: readonly MetricRecord[]): RunInfo[] {
  const runs = new Map<string, { start: bigint; steps: Map<string, bigint>; records: number }>();
  for (const r of rows) {
    let run = runs.get(r.runId);
    if (!run) runs.set(r.runId, (run = { start: r.recordedAtMicros, steps: new Map(), records: 0 }));
    if (r.recordedAtMicros < run.start) run.start = r.recordedAtMicros;
    const first = run.steps.get(r.step);
    if (first === undefined || r.recordedAtMicros < first) run.steps.set(r.step, r.recordedAtMicros);
    run.records++;
  }
  return [...runs.entries()]
    .sort(([a, x], [b, y]) => (x.start < y.start ? -1 : x.start > y.start ? 1 : a.localeCompare(b)))
    .map(([runId, run]) => ({
      runId,
      startedAt: isoOf(run.start),
      steps: [...run.steps.entries()].sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)).map(([s]) => s),
      records: run.records,
    }));
}

/** The `n` longest RUNTIME records of a run, longest first (ties keep file order). */
export function slowestOperations(rows: readonly MetricRecord[], runId: string, n = 5): Operation[] {
  return rows
    .filter((r) => r.runId === runId && r.metricType === "RUNTIME")
    .sort((a, b) => b.value - a.value)
    .slice(0, n)
    .map((r) => ({ step: r.step, name: r.name, seconds: r.value, recordedAt: isoOf(r.recordedAtMicros), attributes: r.attributes }));
}

/** Each step's time, records, bytes and throughput in a run, in pipeline order. */
export function stepTimes(rows: readonly MetricRecord[], runId: string): StepTime[] {
  const info = listRuns(rows).find((r) => r.runId === runId);
  if (!info) return [];
  const runRows = rows.filter((r) => r.runId === runId);
  const steps = info.steps.map((step) => {
    const mine = runRows.filter((r) => r.step === step);
    const totals = mine.filter((r) => r.metricType === "RUNTIME" && r.name === STEP_METRICS.runtime);
    const runtimes = mine.filter((r) => r.metricType === "RUNTIME");
    const sum = (xs: MetricRecord[]) => xs.reduce((acc, r) => acc + r.value, 0);
    const seconds = totals.length ? sum(totals) : runtimes.reduce((m, r) => Math.max(m, r.value), 0);
    const recordRows = mine.filter((r) => r.metricType === "COUNT" && r.name === STEP_METRICS.records);
    const byteRows = mine.filter((r) => r.metricType === "BYTES" && r.name === STEP_METRICS.bytes);
    const tputRows = mine.filter((r) => r.metricType === "THROUGHPUT" && r.name === STEP_METRICS.throughput);
    const records = recordRows.length ? sum(recordRows) : undefined;
    const throughput = records !== undefined && seconds > 0 ? records / seconds : tputRows.length === 1 ? tputRows[0].value : undefined;
    const step_: StepTime = { step, seconds, share: 0, source: totals.length ? "step_total" : "largest_runtime" };
    if (records !== undefined) step_.records = records;
    if (byteRows.length) step_.bytes = sum(byteRows);
    if (throughput !== undefined) step_.throughput = throughput;
    return step_;
  });
  const total = steps.reduce((acc, s) => acc + s.seconds, 0);
  for (const s of steps) s.share = total > 0 ? s.seconds / total : 0;
  return steps;
}

/** The step with the largest share of the run's time (undefined when nothing was timed). */
export function bottleneck(steps: readonly StepTime[]): StepTime | undefined {
  let best: StepTime | undefined;
  for (const s of steps) if (s.seconds > 0 && (!best || s.seconds > best.seconds)) best = s;
  return best;
}

/** Per step (of either run): time and throughput of `current` relative to `previous`. */
export function compareSteps(current: readonly StepTime[], previous: readonly StepTime[]): StepComparison[] {
  const prev = new Map(previous.map((s) => [s.step, s]));
  const names = [...current.map((s) => s.step), ...previous.map((s) => s.step).filter((s) => !current.some((c) => c.step === s))];
  return names.map((step) => {
    const c = current.find((s) => s.step === step);
    const p = prev.get(step);
    const out: StepComparison = { step };
    if (c) out.seconds = c.seconds;
    if (p) out.previousSeconds = p.seconds;
    if (c && p && p.seconds > 0) out.timeRatio = c.seconds / p.seconds;
    if (c?.throughput !== undefined) out.throughput = c.throughput;
    if (p?.throughput !== undefined) out.previousThroughput = p.throughput;
    if (c?.throughput !== undefined && p?.throughput) out.throughputRatio = c.throughput / p.throughput;
    return out;
  });
}

/**
 * The whole report for `runId` (default: the run that started last), compared with the run
 * that started just before it.
 */
export function buildReport(rows: readonly MetricRecord[], runId?: string): RunReport {
  const runs = listRuns(rows);
  if (runs.length === 0) throw new Error("no metrics recorded yet");
  const index = runId === undefined ? runs.length - 1 : runs.findIndex((r) => r.runId === runId);
  if (index < 0) throw new Error(`no metrics for run ${runId}; runs: ${runs.map((r) => r.runId).join(", ")}`);
  const run = runs[index];
  const previousRun = index > 0 ? runs[index - 1] : undefined;
  const steps = stepTimes(rows, run.runId);
  const counts = new Map<string, { step: string; name: string; value: number }>();
  for (const r of rows) {
    if (r.runId !== run.runId || r.metricType !== "COUNT") continue;
    const key = `${r.step}\u0000${r.name}`;
    const c = counts.get(key);
    if (c) c.value += r.value;
    else counts.set(key, { step: r.step, name: r.name, value: r.value });
  }
  return {
    run,
    previousRun,
    slowest: slowestOperations(rows, run.runId),
    steps,
    bottleneck: bottleneck(steps),
    comparison: previousRun ? compareSteps(steps, stepTimes(rows, previousRun.runId)) : [],
    counts: [...counts.values()],
  };
}

// ---------------------------------------------------------------------------------------------
// Plain-text rendering for the terminal (pure).

const fmtSeconds = (s: number | undefined) => (s === undefined ? "-" : s >= 100 ? s.toFixed(0) : s >= 1 ? s.toFixed(2) : s.toFixed(3));
const fmtRatio = (r: number | undefined) => (r === undefined ? "-" : `${r.toFixed(2)}x`);
const fmtRate = (r: number | undefined) => (r === undefined ? "-" : r >= 100 ? r.toFixed(0) : r.toPrecision(3));

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

/** The report as terminal text. */
export function renderReportText(report: RunReport): string {
  const out: string[] = [];
  out.push(`run ${report.run.runId} (started ${report.run.startedAt}, steps: ${report.run.steps.join(" -> ")})`);
  out.push("");
  out.push("Five slowest operations (RUNTIME, seconds):");
  out.push(
    ...table(
      ["seconds", "step", "operation"],
      report.slowest.map((o) => [fmtSeconds(o.seconds), o.step, o.name]),
    ).map((l) => `  ${l}`),
  );
  out.push("");
  if (report.bottleneck) {
    const b = report.bottleneck;
    out.push(`Bottleneck: ${b.step}: ${fmtSeconds(b.seconds)} s, ${(b.share * 100).toFixed(0)}% of the run's step time`);
  } else {
    out.push("Bottleneck: none (no step recorded a runtime)");
  }
  out.push(
    ...table(
      ["step", "seconds", "share", "records", "records/s"],
      report.steps.map((s) => [
        s.step,
        fmtSeconds(s.seconds),
        `${(s.share * 100).toFixed(0)}%`,
        s.records === undefined ? "-" : String(s.records),
        fmtRate(s.throughput),
      ]),
    ).map((l) => `  ${l}`),
  );
  out.push("");
  if (!report.previousRun) {
    out.push("No previous run to compare with.");
  } else {
    out.push(`Compared with the previous run ${report.previousRun.runId} (time ratio < 1 is faster, throughput ratio > 1 is better):`);
    out.push(
      ...table(
        ["step", "seconds", "previous", "time ratio", "throughput ratio"],
        report.comparison.map((c) => [
          c.step,
          fmtSeconds(c.seconds),
          fmtSeconds(c.previousSeconds),
          fmtRatio(c.timeRatio),
          fmtRatio(c.throughputRatio),
        ]),
      ).map((l) => `  ${l}`),
    );
  }
  return out.join("\n") + "\n";
}
