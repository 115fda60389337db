// The demo (`npm run demo`): a local run against the built-in simulator in a fixed work directory,
// then what a person wants to see: resources per type at each layer, the time of each stage,
// what changed, three named gold queries answered, and where the report is. Each next demo lets
// one simulated day pass first (an incremental run); an interrupted demo run is resumed instead.
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { executeLocalRun } from "./local-run";
import { renderChangeLine, renderLayerTable, renderStageTable, fmtSeconds, type RunSummary } from "./run-summary";
import { REPO_ROOT, SPARK_JOBS_PYTHON } from "./spark-step-server";
import { lastUnfinishedRun, listRunRecords, readSimulatorState, workdirLayout } from "./workdir";

export const DEFAULT_DEMO_PATIENTS = 300;
export const DEFAULT_DEMO_WORKDIR = ".work/demo";
/** The named gold queries (analytics/queries/NAME.sql) the demo answers. */
export const DEMO_QUERIES = ["patients_by_age_band_and_sex", "top_conditions", "monthly_admissions"];

export interface QueryAnswer {
  name: string;
  description?: string;
  seconds?: number;
  rows?: number;
  /** The answer as a text table (first rows). */
  table?: string;
  error?: string;
}

/** Answers named queries over the lake with the local query runner (DuckDB + PyIceberg, no JVM). */
export async function answerNamedQueries(lakeDir: string, names: readonly string[], maxRows = 8): Promise<QueryAnswer[]> {
  const script = path.join(__dirname, "named_query_answers.py");
  const { stdout } = await promisify(execFile)(SPARK_JOBS_PYTHON, [script, "--lake", lakeDir, "--max-rows", String(maxRows), ...names], {
    cwd: REPO_ROOT,
    maxBuffer: 16 << 20,
  });
  return JSON.parse(stdout) as QueryAnswer[];
}

export interface DemoOptions {
  patients: number;
  workdir: string;
  json?: boolean;
  /** Where the text goes (default stdout). */
  out?: NodeJS.WritableStream;
}

export interface DemoResult {
  summary: RunSummary;
  kind: "first" | "incremental" | "resumed";
  answers: QueryAnswer[];
}

/** What the next demo run does in a work directory: build the lake, advance a day, or resume. */
export function nextDemoRun(workdir: string): DemoResult["kind"] {
  const layout = workdirLayout(workdir);
  if (lastUnfinishedRun(layout)) return "resumed";
  const state = readSimulatorState(layout);
  const succeeded = listRunRecords(layout).some((r) => r.status === "succeeded");
  return state && succeeded ? "incremental" : "first";
}

/** Runs the demo and prints its account; returns the run summary. */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const out = opts.out ?? process.stdout;
  const layout = workdirLayout(opts.workdir);
  const kind = nextDemoRun(opts.workdir);
  const state = readSimulatorState(layout);
  const patients = state?.patients ?? opts.patients;
  const previous = listRunRecords(layout)
    .filter((r) => r.status === "succeeded" && r.outcome)
    .pop();
  const first = listRunRecords(layout).find((r) => r.status === "succeeded" && r.outcome);
  if (!opts.json) {
    const what =
      kind === "first"
        ? `building the lake from ${patients} simulated patients`
        : kind === "incremental"
          ? `one simulated day passes (day ${(state?.day ?? 0) + 1}): changes, additions and deletions, then an incremental run`
          : "resuming the interrupted run";
    const rel = path.relative(process.cwd(), layout.root);
    out.write(`FHIR lakehouse demo in ${rel.startsWith("..") ? layout.root : rel || "."}: ${what}\n\n`);
  }
  const summary = await executeLocalRun({
    workdir: opts.workdir,
    json: opts.json,
    ...(kind === "resumed" ? { resume: true } : { patients, advance: kind === "incremental" }),
  });
  let answers: QueryAnswer[] = [];
  if (summary.status === "succeeded") {
    answers = await answerNamedQueries(layout.lakeDir, DEMO_QUERIES).catch((err: Error) => [
      { name: DEMO_QUERIES.join(", "), error: err.message.split("\n")[0] },
    ]);
  }
  if (opts.json) {
    out.write(JSON.stringify({ kind, summary, answers }, null, 2) + "\n");
    return { summary, kind, answers };
  }
  out.write("\n" + renderDemoText(summary, kind, answers, previous?.outcome?.stages.total, first?.outcome?.stages.total));
  return { summary, kind, answers };
}

/** The demo's account of a run (pure). */
export function renderDemoText(
  summary: RunSummary,
  kind: DemoResult["kind"],
  answers: readonly QueryAnswer[],
  previousTotal?: number,
  firstTotal?: number,
): string {
  const out: string[] = [];
  if (summary.status !== "succeeded") {
    out.push(`The run failed: ${summary.error?.error}: ${summary.error?.cause}`, "Run `npm run demo` again to resume it.", "");
  }
  out.push("Resources per type at each layer", renderLayerTable(summary), "");
  out.push("Time of each stage", renderStageTable(summary), "");
  out.push(`What changed: ${renderChangeLine(summary)}`);
  const total = summary.stages.total;
  if (kind === "incremental" && firstTotal !== undefined && total !== undefined) {
    out.push(
      `This incremental run took ${fmtSeconds(total)}; the first run took ${fmtSeconds(firstTotal)} (${(firstTotal / Math.max(total, 0.001)).toFixed(1)}x).`,
    );
  } else if (kind !== "first" && previousTotal !== undefined && total !== undefined) {
    out.push(`This run took ${fmtSeconds(total)}; the previous one ${fmtSeconds(previousTotal)}.`);
  }
  out.push(
    summary.reconciled
      ? "Reconciled: for every type, served by the simulator = bronze rows + rejects, and silver holds what bronze holds."
      : `Not reconciled${summary.reconciliation.problems.length ? `: ${summary.reconciliation.problems.join("; ")}` : ""}.`,
  );
  out.push("");
  answers.forEach((a, i) => {
    out.push(`Gold query ${i + 1}: ${a.name}${a.description ? ` — ${a.description}` : ""}`);
    out.push(a.error ? `  (no answer: ${a.error})` : (a.table ?? "").trimEnd(), "");
  });
  if (summary.report) out.push(`HTML report (stage timings, throughput, counts per layer, slowest operations): ${summary.report}`);
  if (summary.status === "succeeded") out.push("Run `npm run demo` again: one simulated day passes and the pipeline runs incrementally.");
  return out.join("\n") + "\n";
}
