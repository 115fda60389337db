// `fhir-pipeline demo` (what `npm run demo` runs): the whole pipeline on this machine against the
// built-in Epic simulator, in a fixed work directory. The first time it builds the lake from a
// few hundred simulated patients; every next time one simulated day passes (resources change,
// are added and deleted) and the run is incremental. A run that was interrupted is resumed first.
// It prints resources per type at each layer, the time of each stage, what changed, the answers
// of three named gold queries and where the HTML report is.
import type { Command } from "commander";
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_DEMO_PATIENTS, DEFAULT_DEMO_WORKDIR, runDemo } from "../../pipeline/demo";

export function register(program: Command): void {
  program
    .command("demo")
    .description(
      "run the whole pipeline locally against the built-in Epic simulator and show what each layer holds; " +
        "run it again and one simulated day passes, then the run is incremental",
    )
    .option("--patients <n>", "simulated patients (first run only)", String(DEFAULT_DEMO_PATIENTS))
    .option("--workdir <dir>", "where the lake, the catalog and the report go", DEFAULT_DEMO_WORKDIR)
    .option("--fresh", "start over: delete the work directory first")
    .option("--json", "no progress display; print the run's JSON summary and the query answers")
    .action(async (opts: { patients: string; workdir: string; fresh?: boolean; json?: boolean }) => {
      const patients = Number(opts.patients);
      if (!Number.isInteger(patients) || patients < 1) throw new Error(`--patients must be a positive integer, not ${opts.patients}`);
      if (opts.fresh) fs.rmSync(path.resolve(opts.workdir), { recursive: true, force: true });
      const result = await runDemo({ patients, workdir: opts.workdir, json: Boolean(opts.json) });
      if (result.summary.status !== "succeeded") process.exitCode = 1;
    });
}
