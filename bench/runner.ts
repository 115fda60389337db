// The benchmark runner behind `npm run bench [-- NAME...]`: discovers bench/*.bench.ts, runs
// each (optionally K times), prints every ratio with its target, and applies the regression gate
// (bench/gate.ts) against a baseline file or records a new baseline.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  type Baseline,
  type BenchMode,
  type GateFinding,
  type MachineInfo,
  type RatioSamples,
  baselineMode,
  buildBaseline,
  collectSamples,
  mean,
  modeForComparison,
  parseBaseline,
  runGate,
  targetMet,
} from "./gate";
import type { BenchModule, BenchResult } from "./types";

export const BENCH_DIR = __dirname;
export const DEFAULT_BASELINE = path.join(__dirname, "baseline.json");

export interface RunnerOptions {
  /** Benchmarks to run (file names without .bench.ts); empty = all. */
  names: string[];
  quick: boolean;
  /** Runs of each benchmark; the ratios' mean is judged and their variance sets tolerances. */
  repeat: number;
  /** Baseline file to gate against. */
  compare?: string;
  /** Baseline file to (re)write from this run. */
  updateBaseline?: string;
  json: boolean;
  /** Directory holding *.bench.ts (default: bench/). */
  dir: string;
  /** Keep each benchmark's scratch directory (printed) instead of removing it. */
  keep: boolean;
  log: (line: string) => void;
}

export interface BenchFailure {
  name: string;
  error: string;
}

export interface RunnerReport {
  machine: MachineInfo;
  startedAt: string;
  repeat: number;
  quick: boolean;
  results: BenchResult[][];
  samples: RatioSamples[];
  failures: BenchFailure[];
  gate?: { baseline: string; mode: BenchMode; findings: GateFinding[]; failed: boolean };
  baselineWritten?: string;
  exitCode: number;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    platform: `${os.platform()}-${os.arch()}`,
    node: process.version,
  };
}

/** Benchmarks in a directory: NAME for each NAME.bench.ts, sorted. */
export function discoverBenches(dir: string): { name: string; file: string }[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".bench.ts"))
    .sort()
    .map((f) => ({ name: f.slice(0, -".bench.ts".length), file: path.join(dir, f) }));
}

function selectBenches(dir: string, names: string[]): { name: string; file: string }[] {
  const all = discoverBenches(dir);
  if (names.length === 0) return all;
  const unknown = names.filter((n) => !all.some((b) => b.name === n));
  if (unknown.length) throw new Error(`unknown benchmark ${unknown.join(", ")}; available: ${all.map((b) => b.name).join(", ") || "none"}`);
  return all.filter((b) => names.includes(b.name));
}

function validateResult(name: string, result: unknown): BenchResult {
  const r = result as BenchResult;
  if (!r || !Array.isArray(r.ratios)) throw new Error(`benchmark ${name} returned no ratios`);
  for (const ratio of r.ratios) {
    if (
      typeof ratio.name !== "string" ||
      typeof ratio.value !== "number" ||
      !Number.isFinite(ratio.value) ||
      typeof ratio.higherIsBetter !== "boolean"
    ) {
      throw new Error(`benchmark ${name} returned a malformed ratio ${JSON.stringify(ratio)}`);
    }
  }
  return { name, ratios: r.ratios, info: r.info ?? {} };
}

const pct = (x: number | undefined) => (x === undefined ? "-" : `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`);
const fmt = (x: number | undefined) =>
  x === undefined ? "-" : Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(3);

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}

/** The ratios table (with gate columns when a baseline was compared) and each benchmark's info. */
export function renderRunnerReport(report: RunnerReport): string {
  const gateBy = new Map((report.gate?.findings ?? []).map((f) => [f.name, f]));
  const rows = report.samples.map((s) => {
    const value = mean(s.samples);
    const met = targetMet(value, s.target);
    const g = gateBy.get(s.name);
    const row = [
      s.name,
      fmt(value) + (s.samples.length > 1 ? ` (n=${s.samples.length})` : ""),
      s.higherIsBetter ? "higher" : "lower",
      s.target ? `${s.target.op} ${s.target.value}` : "-",
      met === undefined ? "-" : met ? "met" : "NOT met",
    ];
    if (report.gate)
      row.push(
        fmt(g?.baseline),
        pct(g?.worsening === undefined ? undefined : -g.worsening),
        g ? `${g.status}${g.tolerance !== undefined ? ` (tol ${(g.tolerance * 100).toFixed(0)}%)` : ""}` : "-",
      );
    return row;
  });
  const header = ["ratio", "value", "better", "target", "verdict"];
  if (report.gate) header.push("baseline", "change", "gate");
  let out = `benchmarks on ${report.machine.cores} cores, ${report.machine.memoryGiB} GiB (${report.machine.cpuModel})${report.quick ? ", quick sizes" : ""}\n\n`;
  out += rows.length ? table(header, rows) : "no ratios\n";
  for (const f of report.gate?.findings ?? []) {
    if (f.status === "missing") out += `GATE: ${f.name} is in the baseline but ${f.bench} no longer reports it\n`;
  }
  const last = report.results[report.results.length - 1] ?? [];
  for (const r of last) {
    const info = Object.entries(r.info);
    if (info.length)
      out += `\n${r.name} info: ${info.map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? fmt(v) : v}`).join(", ")}\n`;
    for (const ratio of r.ratios) out += `  ${ratio.name}: ${ratio.detail}\n`;
  }
  for (const f of report.failures) out += `\nFAILED ${f.name}: ${f.error}\n`;
  if (report.gate) {
    const bad = report.gate.findings.filter((f) => f.status === "regressed");
    const against = `${report.gate.baseline} (${report.gate.mode} sizes)`;
    out += bad.length
      ? `\nREGRESSION against ${against}:\n${bad.map((f) => `  ${f.name}: ${fmt(f.current)} vs baseline ${fmt(f.baseline)}, ${(f.worsening! * 100).toFixed(1)}% worse (tolerance ${(f.tolerance! * 100).toFixed(0)}%)`).join("\n")}\n`
      : report.gate.failed
        ? `\ngate FAILED against ${against}\n`
        : `\ngate passed against ${against}\n`;
  }
  if (report.baselineWritten) out += `\nbaseline written to ${report.baselineWritten}\n`;
  return out;
}

/** Runs the benchmarks and the gate; returns the report (its exitCode is the command's). */
export async function runBenchmarks(opts: RunnerOptions): Promise<RunnerReport> {
  const benches = selectBenches(opts.dir, opts.names);
  if (benches.length === 0) throw new Error(`no benchmarks (*.bench.ts) in ${opts.dir}`);
  // The gate compares like with like: the run takes the baseline's sizes.
  const baseline = opts.compare ? parseBaseline(JSON.parse(fs.readFileSync(opts.compare, "utf8")), opts.compare) : undefined;
  let quick = opts.quick;
  if (baseline) {
    quick = modeForComparison(baseline, opts.quick, opts.compare!) === "quick";
    if (quick && !opts.quick) opts.log(`${opts.compare} was recorded at --quick sizes: running at --quick sizes`);
  }
  const report: RunnerReport = {
    machine: machineInfo(),
    startedAt: new Date().toISOString(),
    repeat: opts.repeat,
    quick,
    results: [],
    samples: [],
    failures: [],
    exitCode: 0,
  };
  const failed = new Set<string>();
  for (let i = 0; i < opts.repeat; i++) {
    const round: BenchResult[] = [];
    for (const bench of benches) {
      if (failed.has(bench.name)) continue;
      const workdir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${bench.name}-`));
      const log = (line: string) => opts.log(`[${bench.name}${opts.repeat > 1 ? ` ${i + 1}/${opts.repeat}` : ""}] ${line}`);
      const t0 = process.hrtime.bigint();
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const mod = require(bench.file) as Partial<BenchModule>;
        if (typeof mod.run !== "function") throw new Error(`${bench.file} does not export run(opts)`);
        round.push(validateResult(bench.name, await mod.run({ quick, workdir, log })));
        log(`done in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);
      } catch (err) {
        failed.add(bench.name);
        report.failures.push({ name: bench.name, error: err instanceof Error ? err.message : String(err) });
        log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        if (opts.keep) log(`scratch directory kept: ${workdir}`);
        else fs.rmSync(workdir, { recursive: true, force: true });
      }
    }
    report.results.push(round);
  }
  // A benchmark that failed in any repetition contributes no samples: partial samples would
  // understate its variance.
  report.samples = collectSamples(report.results.map((round) => round.filter((r) => !failed.has(r.name))));

  if (opts.compare && baseline) {
    report.gate = { baseline: opts.compare, mode: baselineMode(baseline), ...runGate(report.samples, baseline) };
  }
  if (opts.updateBaseline) {
    if (report.failures.length) {
      opts.log(`not writing ${opts.updateBaseline}: ${report.failures.map((f) => f.name).join(", ")} failed`);
    } else {
      const previous = fs.existsSync(opts.updateBaseline)
        ? parseBaseline(JSON.parse(fs.readFileSync(opts.updateBaseline, "utf8")), opts.updateBaseline)
        : undefined;
      const written: Baseline = buildBaseline(report.samples, report.machine, new Date(), previous, undefined, quick ? "quick" : "full");
      fs.writeFileSync(opts.updateBaseline, JSON.stringify(written, null, 2) + "\n");
      report.baselineWritten = opts.updateBaseline;
    }
  }
  report.exitCode = report.failures.length || report.gate?.failed ? 1 : 0;
  return report;
}
