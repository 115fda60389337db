// `fhir-pipeline report --env NAME`: the cost of each recent run of a deployed environment (from
// the cost step of the metrics contract, which PublishMetrics writes at the end of every run), per
// million resources, and the trend; plus what the workgroup's recent Athena queries scanned. What
// a finished run's record lacks (the Step Functions transitions, which only the finished history
// has; everything, for a run that failed before PublishMetrics) is costed now and recorded.
import { GetQueryExecutionCommand, ListQueryExecutionsCommand } from "@aws-sdk/client-athena";
import { ListExecutionsCommand, type ExecutionListItem } from "@aws-sdk/client-sfn";
import type { MetricRecord } from "../core/metrics";
import { AwsClients } from "./clients";
import { athenaQueryCost, formatBytes, formatUsd, trend, type Trend } from "./cost";
import { resolveEnvironment, type DeployedEnvironment } from "./environment";
import { OperatorError, withOperatorErrors } from "./errors";
import { historySince } from "./execution-follower";
import { interpretHistory } from "./execution-history";
import { s3LakeObjects, type LakeObjects } from "./lake-objects";
import { ALL_PARTS, COST_STEP, completeRunCost, costRowOf, type RunCostSummary, type RunJob } from "./run-cost";
import { readStepMetrics } from "./run-metrics";

/** Which prices the report's figures use (DEPLOYED_PRICES). */
export const REPORT_PRICES = "us-east-1 on-demand list prices for arm64, lib/aws/cost.ts";

export interface RunCostRow extends RunCostSummary {
  status: string;
  startedAt?: string;
  /** True when this report computed and recorded (part of) the cost: nobody had recorded it all. */
  backfilled: boolean;
}

export interface CostReport {
  environment: string;
  prices: string;
  runs: RunCostRow[];
  totalTrend?: Trend;
  perMillionTrend?: Trend;
  athena: { queries: number; bytesScanned: number; costUsd: number };
}

/** Completes the cost record of a finished run that lacks parts, from its history and GetJobRun. */
async function backfillRun(
  clients: AwsClients,
  env: DeployedEnvironment,
  objects: LakeObjects,
  e: ExecutionListItem,
  rows: readonly MetricRecord[],
): Promise<RunCostSummary> {
  const history = await historySince(clients, e.executionArn!, 0);
  const jobs = new Map<string, RunJob>();
  for (const fact of interpretHistory(history)) {
    if (fact.kind === "emr-job")
      jobs.set(fact.jobRunId, { step: fact.step, usage: { applicationId: fact.applicationId, jobRunId: fact.jobRunId } });
  }
  const durationSeconds = e.startDate && e.stopDate ? (e.stopDate.getTime() - e.startDate.getTime()) / 1000 : undefined;
  const completed = await completeRunCost({
    clients,
    env,
    objects,
    rows,
    run: { runId: e.name!, startedAt: e.startDate, stoppedAt: e.stopDate, jobs: [...jobs.values()], history, durationSeconds },
  });
  return completed.cost;
}

/** Bytes scanned by the workgroup's most recent queries (up to `limit`), and their cost. */
async function recentAthenaUsage(clients: AwsClients, workgroup: string, limit: number): Promise<CostReport["athena"]> {
  const listed = await clients.athena.send(new ListQueryExecutionsCommand({ WorkGroup: workgroup, MaxResults: Math.min(limit, 50) }));
  let bytes = 0;
  let cost = 0;
  const ids = (listed.QueryExecutionIds ?? []).slice(0, limit);
  for (const id of ids) {
    const q = (await clients.athena.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution;
    const scanned = q?.Statistics?.DataScannedInBytes ?? 0;
    bytes += scanned;
    cost += athenaQueryCost(scanned);
  }
  return { queries: ids.length, bytesScanned: bytes, costUsd: cost };
}

export interface CostReportOptions {
  limit?: number;
  /** Cost and record finished runs that have no cost yet (default true). */
  backfill?: boolean;
}

export async function costReport(
  clients: AwsClients,
  env: DeployedEnvironment,
  objects: LakeObjects,
  options: CostReportOptions = {},
): Promise<CostReport> {
  const limit = options.limit ?? 20;
  const listed = await clients.stepFunctions.send(new ListExecutionsCommand({ stateMachineArn: env.stateMachineArn, maxResults: limit }));
  const executions = (listed.executions ?? []).filter((e) => e.status !== "RUNNING").slice(0, limit);
  const costRows = await readStepMetrics(objects, `s3://${env.buckets.metrics}`, COST_STEP);
  const byRun = new Map<string, MetricRecord[]>();
  for (const r of costRows) byRun.set(r.runId, [...(byRun.get(r.runId) ?? []), r]);

  const runs: RunCostRow[] = [];
  for (const e of executions) {
    const rows = byRun.get(e.name!) ?? [];
    let cost = costRowOf(e.name!, rows);
    let backfilled = false;
    if (cost.parts.length < ALL_PARTS.length && options.backfill !== false) {
      cost = await backfillRun(clients, env, objects, e, rows);
      backfilled = true;
    }
    if (!cost.parts.length) continue;
    runs.push({ ...cost, status: e.status ?? "UNKNOWN", startedAt: e.startDate?.toISOString(), backfilled });
  }
  runs.sort((a, b) => (a.startedAt ?? "").localeCompare(b.startedAt ?? ""));
  const at = (r: RunCostRow) => (r.startedAt ? Date.parse(r.startedAt) : 0);
  return {
    environment: env.name,
    prices: REPORT_PRICES,
    runs,
    totalTrend: trend(runs.map((r) => ({ at: at(r), value: r.totalUsd }))),
    perMillionTrend: trend(
      runs.filter((r) => r.usdPerMillionResources !== undefined).map((r) => ({ at: at(r), value: r.usdPerMillionResources! })),
    ),
    athena: await recentAthenaUsage(clients, env.workgroup, 50),
  };
}

function describeTrend(label: string, t: Trend | undefined, unit: (v: number) => string): string {
  if (!t) return `${label}: not enough runs for a trend`;
  const pct = Number.isFinite(t.change) ? `${t.change >= 0 ? "+" : ""}${(t.change * 100).toFixed(0)}%` : "from zero";
  return `${label}: ${t.direction} (${pct} newer half vs older half of ${t.points} runs, ${t.slopePerRun >= 0 ? "+" : "-"}${unit(Math.abs(t.slopePerRun))} per run)`;
}

/** Pure: the text of the cost report. */
export function renderCostReport(report: CostReport): string {
  const lines = [`cost of runs in environment ${report.environment} (${report.prices})`, ""];
  if (report.runs.length === 0) lines.push("no finished runs");
  else {
    const header = ["run", "status", "resources", "vCPU-h", "GB-h", "Lambda GB-s", "EMR", "Lambda", "Step Fn", "total", "per 1M resources"];
    const rows = report.runs.map((r) => [
      r.runId + (r.backfilled ? "*" : ""),
      r.status,
      String(r.resources),
      r.emrVcpuHours.toFixed(3),
      r.emrMemoryGbHours.toFixed(3),
      r.lambdaGbSeconds.toFixed(1),
      formatUsd(r.emrUsd),
      formatUsd(r.lambdaUsd),
      r.parts.includes("stepfunctions") ? formatUsd(r.stepFunctionsUsd) : "-",
      formatUsd(r.totalUsd),
      r.usdPerMillionResources !== undefined ? formatUsd(r.usdPerMillionResources) : "-",
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const fmt = (row: string[]) => row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
    lines.push(fmt(header), fmt(widths.map((w) => "-".repeat(w))), ...rows.map(fmt));
    if (report.runs.some((r) => r.backfilled))
      lines.push("* completed now from the run's history, GetJobRun and CloudWatch, and recorded (PublishMetrics had not recorded it all)");
    lines.push(
      "",
      describeTrend("cost per run", report.totalTrend, formatUsd),
      describeTrend("cost per million resources", report.perMillionTrend, formatUsd),
    );
  }
  lines.push(
    "",
    `Athena (last ${report.athena.queries} queries in the workgroup): ${formatBytes(report.athena.bytesScanned)} scanned, ${formatUsd(report.athena.costUsd)} (10 MB minimum per query)`,
  );
  return lines.join("\n") + "\n";
}

export interface ReportInAwsOptions {
  envName: string;
  region?: string;
  outputsFile?: string;
  json?: boolean;
  limit?: number;
  clients?: AwsClients;
  out?: NodeJS.WritableStream;
}

/** The `report --env` command: resolves the environment, builds and prints the cost report. */
export async function reportInAws(options: ReportInAwsOptions): Promise<CostReport> {
  const limit = options.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new OperatorError("--limit must be an integer from 1 to 1000");
  const clients = options.clients ?? new AwsClients({ region: options.region });
  const out = options.out ?? process.stdout;
  try {
    return await withOperatorErrors({ envName: options.envName, region: options.region }, async () => {
      const env = await resolveEnvironment({ envName: options.envName, outputsFile: options.outputsFile, clients });
      const report = await costReport(clients, env, s3LakeObjects(clients), { limit });
      out.write(options.json ? JSON.stringify(report, null, 2) + "\n" : renderCostReport(report));
      return report;
    });
  } finally {
    if (!options.clients) clients.destroy();
  }
}
