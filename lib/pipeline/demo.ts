// The demo (`npm run demo`): a local run against the built-in simulator in a fixed work directory,
// then what a person wants to see: resources per type at each layer, the time of each stage,
// what changed, three named gold queries answered, and where the report is. Each next demo lets
// one simulated day pass first (an incremental run); an interrupted demo run is resumed instead.
import * as path from "node:path";
import { executeLocalRun } from "./local-run";
import { renderChangeLine, renderLayerTable, renderStageTable, fmtSeconds, type RunSummary } from "./run-summary";
import { lastUnfinishedRun, listRunRecords, readSimulatorState, workdirLayout } from "./workdir";

export const DEFAULT_DEMO_PATIENTS = 300;
export const DEFAULT_DEMO_WORKDIR = ".work/demo";

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
    out.write(`FHIR lakehouse demo in ${path.relative(process.cwd(), layout.root) || "."}: ${what}\n\n`);
  }
  const summary = await executeLocalRun({
    workdir: opts.workdir,
    json: opts.json,
    ...(kind === "resumed" ? { resume: true } : { patients, advance: kind === "incremental" }),
  });
  if (opts.json) {
    out.write(JSON.stringify({ kind, summary }, null, 2) + "\n");
    return { summary, kind };
  }
  out.write("\n" + renderDemoText(summary, kind, previous?.outcome?.stages.total, first?.outcome?.stages.total));
  return { summary, kind };
}

/** The demo's account of a run (pure). */
export function renderDemoText(summary: RunSummary, kind: DemoResult["kind"], previousTotal?: number, firstTotal?: number): string {
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
  if (summary.report) out.push(`HTML report (stage timings, throughput, counts per layer, slowest operations): ${summary.report}`);
  if (summary.status === "succeeded") out.push("Run `npm run demo` again: one simulated day passes and the pipeline runs incrementally.");
  return out.join("\n") + "\n";
}
