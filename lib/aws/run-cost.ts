// The cost of one run in AWS: gathers what it used (EMR Serverless billed utilisation from
// GetJobRun, Lambda duration from CloudWatch, Step Functions transitions from the history) and
// records it in the metrics contract (step "cost"), which `fhir-pipeline report --env` reads.
import { GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { MetricsCollector, type MetricRecord } from "../core/metrics";
import type { AwsClients } from "./clients";
import { US_EAST_1_PRICES, formatUsd, lambdaGbSeconds, runCost, type PriceTable, type RunCost, type RunUsage } from "./cost";
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
  lambdaGbSeconds: "lambda_gb_seconds", // GB-seconds
  lambdaRequests: "lambda_requests", // count
  stateTransitions: "sfn_state_transitions", // count
  athenaBytesScanned: "athena_bytes_scanned", // BYTES, bytes
  resources: "resources_extracted", // count
  runDuration: "run_duration", // RUNTIME, s
  costUsd: "cost_usd", // USD, attributes.component = emr|lambda|stepfunctions|athena|total
} as const;

export interface CostInputs {
  runId: string;
  startedAt?: Date;
  stoppedAt?: Date;
  jobs: { step: string; usage: JobRunUsage }[];
  history: HistoryEvent[];
}

export interface RecordedRunCost {
  usage: RunUsage;
  cost: RunCost;
  /** False when the stacks export no extractor function names (Lambda cost then unknown, shown as 0). */
  lambdaMeasured: boolean;
  summary: string;
  metricsUri?: string;
}

/** Sum of a CloudWatch metric over [start, end] for one Lambda function. */
async function lambdaMetricSum(
  clients: AwsClients,
  functionName: string,
  metric: "Duration" | "Invocations",
  start: Date,
  end: Date,
): Promise<number> {
  const seconds = Math.max(60, (end.getTime() - start.getTime()) / 1000);
  // At most 1,440 datapoints per request; periods are multiples of 60 s.
  const period = Math.max(60, Math.ceil(seconds / 1440 / 60) * 60);
  const answer = await clients.cloudWatch.send(
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

/** What a finished run used. Lambda figures cover the run's time window (overlapping runs share it). */
export async function gatherRunUsage(
  clients: AwsClients,
  env: DeployedEnvironment,
  inputs: CostInputs,
  objects?: LakeObjects,
): Promise<{ usage: RunUsage; lambdaMeasured: boolean }> {
  const emrJobs: RunUsage["emrJobs"] = [];
  for (const job of inputs.jobs) {
    const usage = job.usage.billed ? job.usage : await getJobRunUsage(clients, job.usage.applicationId, job.usage.jobRunId);
    emrJobs.push({ step: job.step, jobRunId: usage.jobRunId, billed: usage.billed ?? {} });
  }
  let gbSeconds = 0;
  let requests = 0;
  const lambdaMeasured = env.functionNames.length > 0 && env.functionMemoryMb !== undefined;
  if (lambdaMeasured && inputs.startedAt) {
    const end = inputs.stoppedAt ?? new Date();
    for (const fn of env.functionNames) {
      gbSeconds += lambdaGbSeconds(await lambdaMetricSum(clients, fn, "Duration", inputs.startedAt, end), env.functionMemoryMb!);
      requests += await lambdaMetricSum(clients, fn, "Invocations", inputs.startedAt, end);
    }
  }
  // Resources extracted: what PublishMetrics reported, else the extract step's own record count.
  let resources: number | undefined;
  for (const fact of interpretHistory(inputs.history)) if (fact.kind === "published") resources = fact.metrics.resources;
  if (resources === undefined && objects) {
    resources = recordsPerStep(await readRunMetrics(objects, `s3://${env.buckets.metrics}`, inputs.runId))[EXTRACT_STEP];
  }
  return {
    usage: {
      emrJobs,
      lambdaGbSeconds: gbSeconds,
      lambdaRequests: requests,
      stateTransitions: countStateTransitions(inputs.history),
      // The run itself issues no Athena queries (Spark reads and writes through the Glue catalog);
      // queries are billed to whoever runs them (`fhir-pipeline query` reports each one's cost).
      athenaQueryBytes: [],
      resources: resources ?? 0,
    },
    lambdaMeasured,
  };
}

/** Pure: the cost step's metric rows for a run. */
export function costMetricRows(
  usage: RunUsage,
  cost: RunCost,
  durationSeconds?: number,
): Omit<MetricRecord, "recordedAtMicros" | "runId" | "step">[] {
  const rows: Omit<MetricRecord, "recordedAtMicros" | "runId" | "step">[] = [];
  const count = (name: string, value: number, unit: string, attributes: Record<string, unknown> = {}) =>
    rows.push({ name, metricType: "COUNT", value, unit, attributes });
  for (const job of usage.emrJobs) {
    const attrs = { job: job.step, job_run_id: job.jobRunId ?? null, billed: true };
    count(COST_METRICS.emrVcpuHours, job.billed.vCPUHour ?? 0, "vCPU-hours", attrs);
    count(COST_METRICS.emrMemoryGbHours, job.billed.memoryGBHour ?? 0, "GB-hours", attrs);
    count(COST_METRICS.emrStorageGbHours, job.billed.storageGBHour ?? 0, "GB-hours", attrs);
  }
  count(COST_METRICS.lambdaGbSeconds, usage.lambdaGbSeconds, "GB-seconds");
  count(COST_METRICS.lambdaRequests, usage.lambdaRequests, "count");
  count(COST_METRICS.stateTransitions, usage.stateTransitions, "count");
  rows.push({
    name: COST_METRICS.athenaBytesScanned,
    metricType: "BYTES",
    value: usage.athenaQueryBytes.reduce((a, b) => a + b, 0),
    unit: "bytes",
    attributes: { queries: usage.athenaQueryBytes.length },
  });
  count(COST_METRICS.resources, usage.resources, "count");
  if (durationSeconds !== undefined)
    rows.push({ name: COST_METRICS.runDuration, metricType: "RUNTIME", value: durationSeconds, unit: "s", attributes: {} });
  const components: [string, number][] = [
    ["emr", cost.emrUsd],
    ["lambda", cost.lambdaUsd],
    ["stepfunctions", cost.stepFunctionsUsd],
    ["athena", cost.athenaUsd],
    ["total", cost.totalUsd],
  ];
  for (const [component, usd] of components) count(COST_METRICS.costUsd, usd, "USD", { component, prices: "us-east-1" });
  return rows;
}

export function costSummary(cost: RunCost, lambdaMeasured: boolean): string {
  const parts = [
    `EMR ${formatUsd(cost.emrUsd)}`,
    `Lambda ${lambdaMeasured ? formatUsd(cost.lambdaUsd) : "not measured"}`,
    `Step Functions ${formatUsd(cost.stepFunctionsUsd)}`,
  ];
  const perMillion = cost.usdPerMillionResources !== undefined ? `, ${formatUsd(cost.usdPerMillionResources)} per million resources` : "";
  return `${formatUsd(cost.totalUsd)} (${parts.join(", ")})${perMillion}, us-east-1 prices`;
}

export interface RecordRunCostOptions {
  clients: AwsClients;
  env: DeployedEnvironment;
  follow: CostInputs & { durationSeconds?: number };
  prices?: PriceTable;
  objects?: LakeObjects;
}

/** Gathers a finished run's usage, prices it and writes the cost step's rows to the metrics lake. */
export async function recordRunCost(options: RecordRunCostOptions): Promise<RecordedRunCost> {
  const { clients, env, follow } = options;
  const objects = options.objects ?? s3LakeObjects(clients);
  const { usage, lambdaMeasured } = await gatherRunUsage(clients, env, follow, objects);
  const cost = runCost(usage, options.prices ?? US_EAST_1_PRICES.x86_64);
  const collector = new MetricsCollector({
    runId: follow.runId,
    step: COST_STEP,
    lakeRoot: `s3://${env.buckets.metrics}`,
    writer: objects.write,
  });
  for (const row of costMetricRows(usage, cost, follow.durationSeconds)) {
    collector.record(row.name, row.metricType, row.value, row.unit, row.attributes as Record<string, string | number | boolean | null>);
  }
  const metricsUri = await collector.flush();
  return { usage, cost, lambdaMeasured, summary: costSummary(cost, lambdaMeasured), metricsUri };
}
