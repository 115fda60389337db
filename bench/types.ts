// The shape every benchmark returns. A verdict is always a ratio measured side by side in one
// run (never a bare wall-clock time); absolute figures go to `info` for context only.
export interface BenchRatio {
  /** Stable key, e.g. "extract.bulk_vs_parse". Used by the regression gate's baseline. */
  name: string;
  value: number;
  /** true when a larger ratio is better (throughput ratios); false for cost/time/memory ratios. */
  higherIsBetter: boolean;
  /** The target from the issue, if any, e.g. { op: ">=", value: 0.5 }. */
  target?: { op: ">=" | "<="; value: number };
  /** One line saying what was compared with what. */
  detail: string;
}

export interface BenchResult {
  name: string;
  ratios: BenchRatio[];
  /** Context only (absolute throughputs, peak memory, sizes); never a verdict. */
  info: Record<string, number | string>;
}

export interface BenchOptions {
  /** A smaller data size for a quick look; the default size is what the issues ask for. */
  quick: boolean;
  /** Scratch directory the benchmark may use and must leave removable. */
  workdir: string;
  log: (line: string) => void;
}

/** A TypeScript benchmark module: bench/NAME.bench.ts exporting `run`. */
export type BenchModule = { run(opts: BenchOptions): Promise<BenchResult> };
