// `fhir-pipeline bench [NAME...]` (what `npm run bench` runs): the benchmarks of bench/, each
// printing ratios measured side by side, with the regression gate against a baseline file.
import type { Command } from "commander";
import { BENCH_DIR, DEFAULT_BASELINE, renderRunnerReport, runBenchmarks } from "../../../bench/runner";

interface BenchCliOptions {
  quick?: boolean;
  repeat?: string;
  compare?: string;
  updateBaseline?: string | boolean;
  json?: boolean;
  dir?: string;
  keep?: boolean;
}

export function register(program: Command): void {
  program
    .command("bench")
    .description("run the benchmarks (bench/*.bench.ts): ratios with their targets, and the regression gate against a baseline")
    .argument("[names...]", "benchmarks to run (file names without .bench.ts); default: all")
    .option("--quick", "smaller data sizes for a quick look")
    .option(
      "--repeat <k>",
      "run each benchmark K times (default 1, or 3 with --update-baseline): the mean is judged, the variance sets tolerances",
    )
    .option("--compare <file>", "exit non-zero when a ratio is worse than in this baseline by more than its tolerance")
    .option(
      "--update-baseline [file]",
      `write a baseline with tolerances from the measured variance (default ${DEFAULT_BASELINE.replace(process.cwd() + "/", "")})`,
    )
    .option("--json", "print the results as JSON")
    .option("--dir <dir>", "directory of the *.bench.ts files", BENCH_DIR)
    .option("--keep", "keep each benchmark's scratch directory")
    .addHelpText(
      "after",
      "\nExamples:\n  npm run bench                                  all benchmarks\n  npm run bench -- extract                       one\n  npm run bench -- --compare bench/baseline.json the regression gate\n  npm run bench -- --update-baseline --repeat 5  record a new baseline",
    )
    .action(async (names: string[], opts: BenchCliOptions) => {
      const updateBaseline = opts.updateBaseline === true ? DEFAULT_BASELINE : opts.updateBaseline || undefined;
      const repeat = opts.repeat !== undefined ? Number(opts.repeat) : updateBaseline ? 3 : 1;
      if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, not ${opts.repeat}`);
      const report = await runBenchmarks({
        names,
        quick: Boolean(opts.quick),
        repeat,
        compare: opts.compare,
        updateBaseline,
        json: Boolean(opts.json),
        dir: opts.dir ?? BENCH_DIR,
        keep: Boolean(opts.keep),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + "\n" : renderRunnerReport(report));
      if (report.exitCode !== 0) process.exitCode = report.exitCode;
    });
}
