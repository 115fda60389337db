// The cost of one run in AWS, recorded in the metrics contract under the step "cost", which
// `fhir-pipeline report --env` and `status --env` read. Two writers, each recording what it can see:
//   - PublishMetrics, the run's last step (recordInRunCost): the billed vCPU-, memory- and
//     storage-hours of the run's EMR Serverless jobs (GetJobRun), the Lambda GB-seconds (CloudWatch
//     AWS/Lambda Duration per function x its memory), Athena bytes (the run issues no queries) and
//     the resources extracted;
//   - the CLI (completeRunCost), after a run it followed or in `report --env`: the Step Functions
//     state transitions (only the finished history has them) and the run's duration; and the whole
//     record for a run PublishMetrics did not cost (a failed run, or an older deployment).
// A run's cost is the sum of its cost_usd rows, whoever wrote them.
import { GetMetricStatisticsCommand, type CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { EMRServerlessClient } from "@aws-sdk/client-emr-serverless";
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { MetricsCollector, type MetricRecord, type MetricType, type ObjectWriter } from "../core/metrics";
import type { DeployedFunction } from "../core/stack-outputs";
import type { AwsClients } from "./clients";
import {
  DEPLOYED_PRICES,
  formatUsd,
  lambdaGbSeconds,
  runCost,
  type LambdaFunctionUsage,
  type PriceTable,
  type RunCost,
  type RunUsage,
} from "./cost";
import { getJobRunUsage, type JobRunUsage } from "./emr-jobs";
import type { DeployedEnvironment } from "./environment";
import { countStateTransitions, interpretHistory } from "./execution-history";
import { s3LakeObjects, type LakeObjects } from "./lake-objects";
import { readRunMetrics, recordsPerStep } from "./run-metrics";

/** The step whose `step_records` count is the run's extracted resources (MetricsCollector step name). */
export const EXTRACT_STEP = "extract";

/** The metrics-contract step under which a run's cost is recorded. */
export const COST_STEP = "cost";

/** Metric names of the cost step (metric_type COUNT unless noted; units in the comments). */
export const COST_METRICS = {
  emrVcpuHours: "emr_vcpu_hours", // vCPU-hours, billed, attributes.job = silver|gold|maintenance
  emrMemoryGbHours: "emr_memory_gb_hours", // GB-hours
  emrStorageGbHours: "emr_storage_gb_hours", // GB-hours
  lambdaGbSeconds: "lambda_gb_seconds", // GB-seconds, attributes.function = role, memory_mb
  lambdaRequests: "lambda_requests", // count, attributes.function
  stateTransitions: "sfn_state_transitions", // count
  athenaBytesScanned: "athena_bytes_scanned", // BYTES, bytes
  resources: "resources_extracted", // count
  runDuration: "run_duration", // RUNTIME, s
  costUsd: "cost_usd", // USD, attributes.component = emr|lambda|stepfunctions|athena
} as const;

/** The parts of a run's cost; each is recorded by exactly one writer. */
export type CostPart = "emr" | "lambda" | "athena" | "stepfunctions";
/** What PublishMetrics records while the run is still running. */
export const IN_RUN_PARTS: readonly CostPart[] = ["emr", "lambda", "athena"];
export const ALL_PARTS: readonly CostPart[] = [...IN_RUN_PARTS, "stepfunctions"];

/** The AWS clients gathering usage needs: the CLI's AwsClients, or a Lambda's own two clients. */
export interface UsageClients {
  emrServerless: EMRServerlessClient;
  cloudWatch: CloudWatchClient;
}

const DAY_MS = 86_400_000;

/**
 * The GetMetricStatistics period for [start, end]: at most 1,440 datapoints per request, and what
 * CloudWatch keeps for data that old (1-minute data for 15 days, 5-minute for 63, hourly after
 * that; a finer period for older data returns no datapoints at all, not an error).
 */
export function metricPeriodSeconds(start: Date, end: Date, now: Date = new Date()): number {
  const age = now.getTime() - start.getTime();
  const unit = age > 63 * DAY_MS ? 3600 : age > 15 * DAY_MS ? 300 : 60;
  const seconds = Math.max(unit, (end.getTime() - start.getTime()) / 1000);
  return Math.max(unit, Math.ceil(seconds / 1440 / unit) * unit);
}

/** Sum of one AWS/Lambda metric of one function over [start, end] (GetMetricStatistics, Sum). */
async function lambdaMetricSum(
  cloudWatch: CloudWatchClient,
  functionName: string,
  metric: "Duration" | "Invocations",
  start: Date,
  end: Date,
): Promise<number> {
  const period = metricPeriodSeconds(start, end);
  const answer = await cloudWatch.send(
    new GetMetricStatisticsCommand({
      Namespace: "AWS/Lambda",
      MetricName: metric,
      Dimensions: [{ Name: "FunctionName", Value: functionName }],
      StartTime: start,
      EndTime: end,
      Period: period,
      Statistics: ["Sum"],
    }),
  );
  return (answer.Datapoints ?? []).reduce((s, d) => s + (d.Sum ?? 0), 0);
}

/**
 * Each function's Duration and Invocations over [start, end], and its GB-seconds (Duration x
 * configured memory). Duration is the measured time; Lambda bills it rounded up to the next ms per
 * invocation, so this is low by under 1 ms per invocation. Runs that overlap in time share the window.
 */
export async function lambdaUsage(
  clients: { cloudWatch: CloudWatchClient },
  functions: readonly DeployedFunction[],
  start: Date,
  end: Date,
): Promise<LambdaFunctionUsage[]> {
  const out: LambdaFunctionUsage[] = [];
  for (const f of functions) {
    const durationMs = await lambdaMetricSum(clients.cloudWatch, f.name, "Duration", start, end);
    const invocations = await lambdaMetricSum(clients.cloudWatch, f.name, "Invocations", start, end);
    out.push({ ...f, durationMs, invocations, gbSeconds: lambdaGbSeconds(durationMs, f.memoryMb) });
  }
  return out;
}

/** A Spark job of the run, by its step (silver, gold, maintenance). */
export interface RunJob {
  step: string;
  usage: Pick<JobRunUsage, "applicationId" | "jobRunId"> & Partial<JobRunUsage>;
}

/** Billed utilisation of each job (GetJobRun unless already known). */
async function emrUsage(clients: { emrServerless: EMRServerlessClient }, jobs: readonly RunJob[]): Promise<RunUsage["emrJobs"]> {
  const out: RunUsage["emrJobs"] = [];
  for (const job of jobs) {
    const usage = job.usage.billed ? job.usage : await getJobRunUsage(clients, job.usage.applicationId, job.usage.jobRunId);
    out.push({ step: job.step, jobRunId: usage.jobRunId, billed: usage.billed ?? {} });
  }
  return out;
}

function lambdaTotals(functions: readonly LambdaFunctionUsage[]): Pick<RunUsage, "lambdaGbSeconds" | "lambdaRequests" | "lambdaFunctions"> {
  return {
    lambdaGbSeconds: functions.reduce((s, f) => s + f.gbSeconds, 0),
    lambdaRequests: functions.reduce((s, f) => s + f.invocations, 0),
    lambdaFunctions: [...functions],
  };
}

type CostRow = {
  name: string;
  metricType: MetricType;
  value: number;
  unit: string;
  attributes: Record<string, string | number | boolean | null>;
};

/** Pure: the cost step's metric rows of the given parts of a run's usage. */
export function costMetricRows(
  usage: RunUsage,
  cost: RunCost,
  parts: readonly CostPart[] = ALL_PARTS,
  durationSeconds?: number,
): CostRow[] {
  const rows: CostRow[] = [];
  const count = (name: string, value: number, unit: string, attributes: CostRow["attributes"] = {}) =>
    rows.push({ name, metricType: "COUNT", value, unit, attributes });
  const has = (p: CostPart) => parts.includes(p);
  const usd = (component: CostPart, value: number) => count(COST_METRICS.costUsd, value, "USD", { component, prices: "us-east-1" });
  if (has("emr")) {
    for (const job of usage.emrJobs) {
      const attrs = { job: job.step, job_run_id: job.jobRunId ?? null, billed: true };
      count(COST_METRICS.emrVcpuHours, job.billed.vCPUHour ?? 0, "vCPU-hours", attrs);
      count(COST_METRICS.emrMemoryGbHours, job.billed.memoryGBHour ?? 0, "GB-hours", attrs);
      count(COST_METRICS.emrStorageGbHours, job.billed.storageGBHour ?? 0, "GB-hours", attrs);
    }
    // Whoever records the EMR part records the resources (the run's one primary record).
    count(COST_METRICS.resources, usage.resources, "count");
    usd("emr", cost.emrUsd);
  }
  if (has("lambda")) {
    if (usage.lambdaFunctions?.length) {
      for (const f of usage.lambdaFunctions) {
        const attrs = { function: f.role, memory_mb: f.memoryMb };
        count(COST_METRICS.lambdaGbSeconds, f.gbSeconds, "GB-seconds", attrs);
        count(COST_METRICS.lambdaRequests, f.invocations, "count", attrs);
      }
    } else {
      count(COST_METRICS.lambdaGbSeconds, usage.lambdaGbSeconds, "GB-seconds");
      count(COST_METRICS.lambdaRequests, usage.lambdaRequests, "count");
    }
    usd("lambda", cost.lambdaUsd);
  }
  if (has("athena")) {
    rows.push({
      name: COST_METRICS.athenaBytesScanned,
      metricType: "BYTES",
      value: usage.athenaQueryBytes.reduce((a, b) => a + b, 0),
      unit: "bytes",
      attributes: { queries: usage.athenaQueryBytes.length },
    });
    usd("athena", cost.athenaUsd);
  }
  if (has("stepfunctions")) {
    count(COST_METRICS.stateTransitions, usage.stateTransitions, "count");
    usd("stepfunctions", cost.stepFunctionsUsd);
    if (durationSeconds !== undefined)
      rows.push({ name: COST_METRICS.runDuration, metricType: "RUNTIME", value: durationSeconds, unit: "s", attributes: {} });
  }
  return rows;
}

/** One run's cost as read back from its cost-step rows. */
export interface RunCostSummary {
  runId: string;
  durationSeconds?: number;
  resources: number;
  emrVcpuHours: number;
  emrMemoryGbHours: number;
  emrStorageGbHours: number;
  lambdaGbSeconds: number;
  stateTransitions?: number;
  athenaBytesScanned: number;
  emrUsd: number;
  lambdaUsd: number;
  stepFunctionsUsd: number;
  athenaUsd: number;
  /** Sum of the run's cost_usd rows. */
  totalUsd: number;
  usdPerMillionResources?: number;
  /** The parts recorded so far (a run PublishMetrics costed lacks "stepfunctions" until the CLI adds it). */
  parts: CostPart[];
}

/** Pure: a run's cost from its cost-step rows (rows of other steps are ignored). */
export function costRowOf(runId: string, allRows: readonly MetricRecord[]): RunCostSummary {
  const rows = allRows.filter((r) => r.step === COST_STEP);
  const sum = (name: string, pred: (r: MetricRecord) => boolean = () => true) =>
    rows.filter((r) => r.name === name && pred(r)).reduce((s, r) => s + r.value, 0);
  const usd = (component: CostPart) => sum(COST_METRICS.costUsd, (r) => r.attributes.component === component);
  const parts = ALL_PARTS.filter((p) => rows.some((r) => r.name === COST_METRICS.costUsd && r.attributes.component === p));
  const resources = sum(COST_METRICS.resources);
  const [emrUsd, lambdaUsd, stepFunctionsUsd, athenaUsd] = (["emr", "lambda", "stepfunctions", "athena"] as const).map(usd);
  const totalUsd = emrUsd + lambdaUsd + stepFunctionsUsd + athenaUsd;
  return {
    runId,
    durationSeconds: rows.find((r) => r.name === COST_METRICS.runDuration)?.value,
    resources,
    emrVcpuHours: sum(COST_METRICS.emrVcpuHours),
    emrMemoryGbHours: sum(COST_METRICS.emrMemoryGbHours),
    emrStorageGbHours: sum(COST_METRICS.emrStorageGbHours),
    lambdaGbSeconds: sum(COST_METRICS.lambdaGbSeconds),
    stateTransitions: parts.includes("stepfunctions") ? sum(COST_METRICS.stateTransitions) : undefined,
    athenaBytesScanned: sum(COST_METRICS.athenaBytesScanned),
    emrUsd,
    lambdaUsd,
    stepFunctionsUsd,
    athenaUsd,
    totalUsd,
    usdPerMillionResources: resources > 0 ? (totalUsd / resources) * 1_000_000 : undefined,
    parts,
  };
}

/** Pure: one line of a run's cost. */
export function costSummary(c: RunCostSummary): string {
  const parts = [
    `EMR ${formatUsd(c.emrUsd)}`,
    `Lambda ${formatUsd(c.lambdaUsd)} (${c.lambdaGbSeconds.toFixed(1)} GB-s)`,
    `Step Functions ${c.parts.includes("stepfunctions") ? formatUsd(c.stepFunctionsUsd) : "not recorded"}`,
  ];
  const perMillion = c.usdPerMillionResources !== undefined ? `, ${formatUsd(c.usdPerMillionResources)} per million resources` : "";
  return `${formatUsd(c.totalUsd)} (${parts.join(", ")})${perMillion}, us-east-1 prices`;
}

/** Writes cost rows of a run as one metrics-contract file; returns its URI. */
async function writeCostRows(lakeRoot: string, writer: ObjectWriter, runId: string, rows: readonly CostRow[]): Promise<string | undefined> {
  const collector = new MetricsCollector({ runId, step: COST_STEP, lakeRoot, writer });
  for (const row of rows) collector.record(row.name, row.metricType, row.value, row.unit, row.attributes);
  return collector.flush();
}

// ---------------------------------------------------------------------------------------------
// PublishMetrics: the part of the cost known inside the run.

export interface InRunCostInputs {
  runId: string;
  /** The execution's start ($.run.startedAt): the window of the Lambda metrics starts here. */
  startedAt: Date;
  /** End of the window (now, when PublishMetrics runs). */
  until: Date;
  /** The Spark jobs the run ran (from the Spark Tasks' outputs). */
  jobs: { step: string; applicationId: string; jobRunId: string }[];
  /** The extractor functions and their memory. */
  functions: readonly DeployedFunction[];
  /** Resources the run extracted. */
  resources: number;
}

/**
 * Records the EMR, Lambda and Athena parts of a run's cost while it runs (PublishMetrics). The
 * Lambda window ends now: PublishMetrics's own invocation is still running and not counted.
 */
export async function recordInRunCost(
  clients: UsageClients,
  target: { lakeRoot: string; writer: ObjectWriter },
  inputs: InRunCostInputs,
  prices: PriceTable = DEPLOYED_PRICES,
): Promise<{ usage: RunUsage; cost: RunCost; metricsUri?: string }> {
  const usage: RunUsage = {
    emrJobs: await emrUsage(
      clients,
      inputs.jobs.map((j) => ({ step: j.step, usage: { applicationId: j.applicationId, jobRunId: j.jobRunId } })),
    ),
    ...lambdaTotals(await lambdaUsage(clients, inputs.functions, inputs.startedAt, inputs.until)),
    stateTransitions: 0,
    athenaQueryBytes: [],
    resources: inputs.resources,
  };
  const cost = runCost(usage, prices);
  const metricsUri = await writeCostRows(target.lakeRoot, target.writer, inputs.runId, costMetricRows(usage, cost, IN_RUN_PARTS));
  return { usage, cost, metricsUri };
}

// ---------------------------------------------------------------------------------------------
// The CLI: completing a finished run's cost.

export interface CostInputs {
  runId: string;
  startedAt?: Date;
  stoppedAt?: Date;
  durationSeconds?: number;
  jobs: RunJob[];
  history: HistoryEvent[];
}

/** What a finished run used. Lambda figures cover the run's time window (overlapping runs share it). */
export async function gatherRunUsage(
  clients: UsageClients,
  env: DeployedEnvironment,
  inputs: CostInputs,
  objects?: LakeObjects,
): Promise<RunUsage> {
  const emrJobs = await emrUsage(clients, inputs.jobs);
  const functions = inputs.startedAt ? await lambdaUsage(clients, env.functions, inputs.startedAt, inputs.stoppedAt ?? new Date()) : [];
  // Resources extracted: what PublishMetrics reported, else the extract step's own record count.
  let resources: number | undefined;
  for (const fact of interpretHistory(inputs.history)) if (fact.kind === "published") resources = fact.metrics.resources;
  if (resources === undefined && objects) {
    resources = recordsPerStep(await readRunMetrics(objects, `s3://${env.buckets.metrics}`, inputs.runId))[EXTRACT_STEP];
  }
  return {
    emrJobs,
    ...lambdaTotals(functions),
    stateTransitions: countStateTransitions(inputs.history),
    // The run itself issues no Athena queries (Spark reads and writes through the Glue catalog);
    // queries are billed to whoever runs them (`fhir-pipeline query` reports each one's cost).
    athenaQueryBytes: [],
    resources: resources ?? 0,
  };
}

export interface CompleteRunCostOptions {
  clients: AwsClients;
  env: DeployedEnvironment;
  run: CostInputs;
  prices?: PriceTable;
  objects?: LakeObjects;
  /** The run's metrics rows if already read (saves a listing). */
  rows?: readonly MetricRecord[];
}

export interface CompletedRunCost {
  /** The run's cost, read back from the metrics contract. */
  cost: RunCostSummary;
  /** What this call recorded: the missing parts, or nothing when the run's cost was complete. */
  recorded: CostPart[];
  summary: string;
}

/**
 * Completes a finished run's cost record: the parts nobody recorded yet (all of them for a run
 * PublishMetrics did not reach; Step Functions and the duration for one it did), then reads the
 * whole record back.
 */
export async function completeRunCost(options: CompleteRunCostOptions): Promise<CompletedRunCost> {
  const { clients, env, run } = options;
  const objects = options.objects ?? s3LakeObjects(clients);
  const lakeRoot = `s3://${env.buckets.metrics}`;
  const before = options.rows ?? (await readRunMetrics(objects, lakeRoot, run.runId));
  const present = costRowOf(run.runId, before).parts;
  const missing = ALL_PARTS.filter((p) => !present.includes(p));
  let rows = before;
  if (missing.length) {
    const usage: RunUsage = missing.some((p) => IN_RUN_PARTS.includes(p))
      ? await gatherRunUsage(clients, env, run, objects)
      : {
          emrJobs: [],
          lambdaGbSeconds: 0,
          lambdaRequests: 0,
          stateTransitions: countStateTransitions(run.history),
          athenaQueryBytes: [],
          resources: 0,
        };
    const cost = runCost(usage, options.prices ?? DEPLOYED_PRICES);
    await writeCostRows(lakeRoot, objects.write, run.runId, costMetricRows(usage, cost, missing, run.durationSeconds));
    rows = await readRunMetrics(objects, lakeRoot, run.runId);
  }
  const cost = costRowOf(run.runId, rows);
  return { cost, recorded: missing, summary: costSummary(cost) };
}
