// `fhir-pipeline status --env NAME [--run ID]`: the recent runs of a deployed environment (outcome,
// duration, records per layer from the run's metrics, cost if recorded) and the alarms firing now.
import { DescribeAlarmsCommand, type MetricAlarm } from "@aws-sdk/client-cloudwatch";
import { DescribeExecutionCommand, ListExecutionsCommand } from "@aws-sdk/client-sfn";
import type { MetricRecord } from "../core/metrics";
import type { AwsClients } from "./clients";
import { formatUsd } from "./cost";
import type { DeployedEnvironment } from "./environment";
import { OperatorError } from "./errors";
import { historySince } from "./execution-follower";
import { interpretHistory, sparkStepOf } from "./execution-history";
import type { LakeObjects } from "./lake-objects";
import { costRowOf, costSummary, type RunCostSummary } from "./run-cost";
import { readRunsMetrics, recordsPerStep } from "./run-metrics";

export interface RunSummary {
  runId: string;
  executionArn: string;
  status: string;
  startedAt?: string;
  stoppedAt?: string;
  durationSeconds?: number;
  /** Records per step from the run's metrics (extract, silver, gold, …); empty if none written. */
  recordsPerStep: Record<string, number>;
  /** Total estimated cost if the run's cost was recorded. */
  costUsd?: number;
}

export interface RunDetail extends RunSummary {
  error?: string;
  cause?: string;
  /** The state that failed, when the run failed. */
  failedState?: string;
  /** EMR Serverless job runs of the run, by Spark step. */
  jobs: { step: string; jobRunId: string }[];
  /** The run's cost by part, if recorded. */
  cost?: RunCostSummary;
  /** The run's metrics rows (recorded_at as ISO 8601, so the detail serialises as JSON). */
  metrics: (Omit<MetricRecord, "recordedAtMicros"> & { recordedAt: string })[];
}

export interface FiringAlarm {
  name: string;
  reason?: string;
  since?: string;
  metric?: string;
}

export interface StatusReport {
  environment: string;
  runs: RunSummary[];
  run?: RunDetail;
  alarms: FiringAlarm[];
}

function lakeRootOf(env: DeployedEnvironment): string {
  return `s3://${env.buckets.metrics}`;
}

/** The run's cost so far (sum of its cost_usd rows), if any part was recorded. */
function totalCost(runId: string, rows: readonly MetricRecord[]): number | undefined {
  const cost = costRowOf(runId, rows);
  return cost.parts.length ? cost.totalUsd : undefined;
}

function duration(start?: Date, stop?: Date): number | undefined {
  return start && stop ? (stop.getTime() - start.getTime()) / 1000 : undefined;
}

/** Most recent executions first (ListExecutions), with their metrics. */
export async function recentRuns(clients: AwsClients, env: DeployedEnvironment, objects: LakeObjects, limit = 10): Promise<RunSummary[]> {
  const listed = await clients.stepFunctions.send(new ListExecutionsCommand({ stateMachineArn: env.stateMachineArn, maxResults: limit }));
  const executions = (listed.executions ?? []).slice(0, limit);
  const metrics = await readRunsMetrics(
    objects,
    lakeRootOf(env),
    executions.map((e) => e.name!),
  );
  return executions.map((e) => {
    const rows = metrics.get(e.name!) ?? [];
    return {
      runId: e.name!,
      executionArn: e.executionArn!,
      status: e.status ?? "UNKNOWN",
      startedAt: e.startDate?.toISOString(),
      stoppedAt: e.stopDate?.toISOString(),
      durationSeconds: duration(e.startDate, e.stopDate),
      recordsPerStep: recordsPerStep(rows),
      costUsd: totalCost(e.name!, rows),
    };
  });
}

/** The execution ARN of a run id (execution names are run ids). */
export function executionArnOf(stateMachineArn: string, runId: string): string {
  return `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${runId}`;
}

/** One run in detail: outcome, the failing state, its Spark jobs, its metrics. */
export async function runDetail(clients: AwsClients, env: DeployedEnvironment, objects: LakeObjects, runId: string): Promise<RunDetail> {
  const executionArn = runId.startsWith("arn:") ? runId : executionArnOf(env.stateMachineArn, runId);
  let described;
  try {
    described = await clients.stepFunctions.send(new DescribeExecutionCommand({ executionArn }));
  } catch (err) {
    if ((err as Error).name === "ExecutionDoesNotExist") {
      throw new OperatorError(
        `environment ${env.name} has no run ${runId}: list the recent runs with \`fhir-pipeline status --env ${env.name}\``,
      );
    }
    throw err;
  }
  const name = described.name ?? runId;
  const history = await historySince(clients, executionArn, 0);
  const jobs = new Map<string, { step: string; jobRunId: string }>();
  let failedState: string | undefined;
  for (const fact of interpretHistory(history)) {
    if (fact.kind === "emr-job") jobs.set(fact.jobRunId, { step: sparkStepOf(fact.stateName), jobRunId: fact.jobRunId });
    if (fact.kind === "state" && fact.status === "failed") failedState ??= fact.name;
  }
  const rows = (await readRunsMetrics(objects, lakeRootOf(env), [name])).get(name) ?? [];
  return {
    runId: name,
    executionArn,
    status: described.status ?? "UNKNOWN",
    startedAt: described.startDate?.toISOString(),
    stoppedAt: described.stopDate?.toISOString(),
    durationSeconds: duration(described.startDate, described.stopDate),
    recordsPerStep: recordsPerStep(rows),
    costUsd: totalCost(name, rows),
    cost: costRowOf(name, rows).parts.length ? costRowOf(name, rows) : undefined,
    error: described.error,
    cause: described.cause,
    failedState,
    jobs: [...jobs.values()],
    metrics: rows.map(({ recordedAtMicros, ...rest }) => ({
      ...rest,
      recordedAt: new Date(Number(recordedAtMicros / 1000n)).toISOString(),
    })),
  };
}

/** Alarms in ALARM state that notify this environment's topic (or, without one, all of them). */
export async function firingAlarms(clients: AwsClients, env: DeployedEnvironment): Promise<FiringAlarm[]> {
  const alarms: MetricAlarm[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.cloudWatch.send(new DescribeAlarmsCommand({ StateValue: "ALARM", NextToken: nextToken, MaxRecords: 100 }));
    alarms.push(...(page.MetricAlarms ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  const topic = env.alarmTopicArn;
  return alarms
    .filter((a) => !topic || (a.AlarmActions ?? []).includes(topic))
    .map((a) => ({
      name: a.AlarmName ?? "",
      reason: a.StateReason,
      since: a.StateUpdatedTimestamp?.toISOString(),
      metric: a.MetricName ? `${a.Namespace}/${a.MetricName}` : undefined,
    }));
}

export async function statusReport(
  clients: AwsClients,
  env: DeployedEnvironment,
  objects: LakeObjects,
  options: { runId?: string; limit?: number } = {},
): Promise<StatusReport> {
  const [runs, alarms, run] = await Promise.all([
    recentRuns(clients, env, objects, options.limit ?? 10),
    firingAlarms(clients, env),
    options.runId ? runDetail(clients, env, objects, options.runId) : Promise.resolve(undefined),
  ]);
  return { environment: env.name, runs, alarms, run };
}

function fmtDuration(seconds?: number): string {
  if (seconds === undefined) return "-";
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Pipeline order for display; steps not listed follow alphabetically. */
const STEP_ORDER = ["extract", "bronze", "silver", "gold", "maintenance"];

function fmtRecords(r: Record<string, number>): string {
  const rank = (k: string) => (STEP_ORDER.includes(k) ? STEP_ORDER.indexOf(k) : STEP_ORDER.length);
  const entries = Object.entries(r).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  return entries.length ? entries.map(([k, v]) => `${k} ${v}`).join(", ") : "-";
}

/** Pure: the human-readable status. */
export function renderStatus(report: StatusReport): string {
  const lines: string[] = [`environment ${report.environment}`, ""];
  if (report.runs.length === 0) lines.push("no runs yet");
  else {
    const header = ["run", "status", "started", "duration", "records per step", "cost"];
    const rows = report.runs.map((r) => [
      r.runId,
      r.status,
      r.startedAt?.replace(/\.\d+Z$/, "Z") ?? "-",
      fmtDuration(r.durationSeconds),
      fmtRecords(r.recordsPerStep),
      r.costUsd !== undefined ? formatUsd(r.costUsd) : "-",
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
    const fmt = (row: string[]) =>
      row
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd();
    lines.push(fmt(header), fmt(widths.map((w) => "-".repeat(w))), ...rows.map(fmt));
  }
  if (report.run) {
    const r = report.run;
    lines.push("", `run ${r.runId}: ${r.status}, ${fmtDuration(r.durationSeconds)}`);
    if (r.failedState || r.error) lines.push(`  failed${r.failedState ? ` in ${r.failedState}` : ""}${r.error ? `: ${r.error}` : ""}`);
    for (const j of r.jobs) lines.push(`  spark ${j.step}: EMR Serverless job run ${j.jobRunId}`);
    lines.push(`  records per step: ${fmtRecords(r.recordsPerStep)}`);
    if (r.cost) lines.push(`  estimated cost: ${costSummary(r.cost)}`);
  }
  lines.push("");
  if (report.alarms.length === 0) lines.push("alarms firing: none");
  else {
    lines.push(`alarms firing: ${report.alarms.length}`);
    for (const a of report.alarms) lines.push(`  ${a.name}${a.since ? ` since ${a.since}` : ""}${a.reason ? `: ${a.reason}` : ""}`);
    lines.push("  (what each alarm means and how to recover: docs/runbooks.md)");
  }
  return lines.join("\n") + "\n";
}
