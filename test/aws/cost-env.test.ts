// Cost per run against moto running as a real HTTP server on 127.0.0.1: executions really run in
// moto's Step Functions interpreter and start EMR Serverless job runs in moto; the PublishMetrics
// handler (lambdas/handlers/publish-metrics.ts) runs in-process against moto and records the cost in
// the metrics bucket; `run --env` / `report --env` complete it. Two things moto cannot do:
//   - its GetJobRun answers zero billed utilisation (its jobs do no work), so, only for that call,
//     an in-process SDK middleware answers GetJobRun with known utilisation for the job runs moto
//     created;
//   - it runs no Lambda service that would emit the AWS/Lambda Duration and Invocations metrics, so
//     the test writes those datapoints itself with PutMetricData, as the Lambda service would.
// Everything else (history, S3 metrics, CloudWatch GetMetricStatistics, Athena, CloudFormation) is moto.
import { PutMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import type { GetJobRunCommandOutput } from "@aws-sdk/client-emr-serverless";
import type { AwsClients } from "../../lib/aws/clients";
import { US_EAST_1_PRICES, emrJobCost, type EmrUtilisation } from "../../lib/aws/cost";
import { costReport, renderCostReport } from "../../lib/aws/cost-report";
import { followExecution, type FollowResult } from "../../lib/aws/execution-follower";
import { s3LakeObjects } from "../../lib/aws/lake-objects";
import { newRunId, startRun } from "../../lib/aws/run";
import { COST_METRICS, COST_STEP, completeRunCost, costRowOf } from "../../lib/aws/run-cost";
import { readRunMetrics } from "../../lib/aws/run-metrics";
import { FUNCTION_ENV, functionConfig } from "../../lib/core/function-environment";
import type { PublishMetricsInput } from "../../lib/core/pipeline-steps";
import { QuietProgressRenderer } from "../../lib/core/progress";
import { AWS_ENDPOINT_ENV } from "../../lib/core/storage";
import { runManifestUri, type RunManifest } from "../../lambdas/extractor/run-records";
import { emulatorEnv, runCli } from "./cli-process";
import { ENV_NAME, FUNCTIONS, useDeployedEnvironment } from "./deployed-env-fixture";

const arm = US_EAST_1_PRICES.arm64;

/** Billed utilisation the GetJobRun stand-in reports, per job name prefix; `scale` grows per run. */
let scale = 1;
const BILLED: Record<string, EmrUtilisation> = {
  silver: { vCPUHour: 2.5, memoryGBHour: 10, storageGBHour: 50 },
  gold: { vCPUHour: 0.5, memoryGBHour: 2, storageGBHour: 0 },
};

function getJobRunStandIn(client: AwsClients["emrServerless"]): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName !== "GetJobRunCommand") return result;
      const jobRun = (result.output as GetJobRunCommandOutput).jobRun!;
      const billed = BILLED[(jobRun.name ?? "").split("-")[0]];
      if (billed) {
        const times = (u: EmrUtilisation, f: number) => ({
          vCPUHour: u.vCPUHour * f,
          memoryGBHour: u.memoryGBHour * f,
          storageGBHour: u.storageGBHour * f,
        });
        jobRun.billedResourceUtilization = times(billed, scale);
        // What the job really used: a little less than billed (1-minute minimum, free storage).
        jobRun.totalResourceUtilization = times(billed, scale * 0.9);
        jobRun.totalExecutionDurationSeconds = 600;
      }
      return result;
    },
    { step: "initialize", name: "getJobRunStandIn" },
  );
}

const h = useDeployedEnvironment((clients) => getJobRunStandIn(clients.emrServerless));
const fn = (role: string) => FUNCTIONS.find((f) => f.role === role)!;

/**
 * Lambda Duration (ms) and Invocations per function in a run, as the Lambda service publishes
 * them to CloudWatch (AWS/Lambda, dimension FunctionName): 3 downloads of 30 s at 2048 MB, one
 * FanOut of 1.5 s and two CheckDrained of 1 s at 512 MB.
 */
const LAMBDA_DATAPOINTS: [role: string, durationMs: number][] = [
  ["DownloadFile", 30_000],
  ["DownloadFile", 30_000],
  ["DownloadFile", 30_000],
  ["FanOut", 1_500],
  ["CheckDrained", 1_000],
  ["CheckDrained", 1_000],
];
/** 90 s x 2 GB + 1.5 s x 0.5 GB + 2 s x 0.5 GB. */
const RUN_GB_SECONDS = 180 + 0.75 + 1;

/** What the Lambda service would emit for the run's invocations (moto has no Lambda service doing it). */
async function emitLambdaMetrics(at: Date): Promise<void> {
  for (const [role, ms] of LAMBDA_DATAPOINTS) {
    const dims = [{ Name: "FunctionName", Value: fn(role).name }];
    await h.clients.cloudWatch.send(
      new PutMetricDataCommand({
        Namespace: "AWS/Lambda",
        MetricData: [
          { MetricName: "Duration", Dimensions: dims, Timestamp: at, Value: ms, Unit: "Milliseconds" },
          { MetricName: "Invocations", Dimensions: dims, Timestamp: at, Value: 1, Unit: "Count" },
        ],
      }),
    );
  }
}

/** The run manifest CheckDrained writes at the end of extraction (what PublishMetrics reads). */
async function writeManifest(runId: string, resources: number): Promise<void> {
  const now = new Date().toISOString();
  const manifest: RunManifest = {
    runId,
    mode: "bulk",
    startedAt: now,
    finishedAt: now,
    requested: { types: ["Patient"], since: null, sinceSource: null, groups: ["g0"] },
    complete: true,
    scope: { groups: ["g0"], types: ["Patient"] },
    transactionTime: now,
    bulk: {},
    resources: { Patient: resources },
    bytes: { Patient: resources * 1000 },
    parts: { Patient: 1 },
    rejects: { total: 0, byReason: {}, byType: {}, untyped: 0 },
    errors: { files: 0, outcomes: 0, uris: [] },
    deleted: [],
    units: { total: 1, done: 1, failed: 0 },
    inputBytes: resources * 1000,
    fileBytes: resources * 200,
    files: [],
    timings: { totalSeconds: 60, unitSecondsSum: 60 },
  };
  const uri = runManifestUri(h.env.lake.bronze, runId);
  await s3LakeObjects(h.clients).write(uri, new TextEncoder().encode(JSON.stringify(manifest)));
}

/** The environment the ingestion stack gives PublishMetrics, and what the Lambda runtime sets. */
let publishMetricsEnv: Record<string, string>;
function publishMetricsEnvironment(): Record<string, string> {
  const others = h.env.functions.filter((f) => f.role !== "PublishMetrics");
  return {
    [FUNCTION_ENV.config]: JSON.stringify(functionConfig(h.env.config)),
    [FUNCTION_ENV.bronzeUri]: h.env.lake.bronze,
    [FUNCTION_ENV.metricsUri]: h.env.lake.metrics,
    [FUNCTION_ENV.lambdaFunctions]: JSON.stringify(others),
    AWS_LAMBDA_FUNCTION_NAME: fn("PublishMetrics").name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1024",
    [AWS_ENDPOINT_ENV]: h.moto.endpoint,
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_LOG_LEVEL: "ERROR",
  };
}

/** Runs fn with these environment variables set, then restores the environment. */
async function withEnvironment<T>(vars: Record<string, string>, fn: () => Promise<T> | T): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

let publishMetricsHandler: typeof import("../../lambdas/handlers/publish-metrics");
beforeAll(async () => {
  publishMetricsEnv = publishMetricsEnvironment();
  await withEnvironment(publishMetricsEnv, async () => {
    publishMetricsHandler = await import("../../lambdas/handlers/publish-metrics");
    // The handler's own clients (created once per container) get the same GetJobRun stand-in.
    getJobRunStandIn(publishMetricsHandler.costClients().emrServerless);
  });
});

/** PublishMetrics as the state machine invokes it at the end of the run (after the Spark jobs). */
async function publishMetrics(follow: FollowResult): Promise<void> {
  const job = (step: string) => {
    const j = follow.jobs.find((x) => x.step === step)!;
    return { ApplicationId: j.usage.applicationId, JobRunId: j.usage.jobRunId };
  };
  const input: PublishMetricsInput = {
    run: { runId: follow.runId, startedAt: follow.startedAt!.toISOString(), mode: "bulk", groupIds: ["g0"], request: {} },
    groups: [{ groupId: "g0", mode: "bulk", unitsEnqueued: 1 }],
    drain: { state: "drained", unitsEnqueued: 1, unitsDone: 1, unitsFailed: 0, waitSeconds: 1 },
    silver: job("silver"),
    gold: job("gold"),
    maintenance: {},
  };
  await withEnvironment(publishMetricsEnv, () => publishMetricsHandler.handler(input));
}

/** A run as the deployed pipeline makes it: the execution, the Lambdas' metrics, PublishMetrics. */
async function pipelineRun(resources: number): Promise<FollowResult> {
  const runId = newRunId();
  const { executionArn } = await startRun(h.clients, h.env, {}, runId);
  const follow = await followExecution({ clients: h.clients, executionArn, sink: new QuietProgressRenderer(), pollIntervalMs: 250 });
  // Early in the run, where the extraction's invocations are.
  await emitLambdaMetrics(new Date(follow.startedAt!.getTime() + (follow.stoppedAt!.getTime() - follow.startedAt!.getTime()) / 4));
  await writeManifest(runId, resources);
  await publishMetrics(follow);
  return follow;
}

describe("cost per run", () => {
  it("PublishMetrics records EMR utilisation and Lambda GB-seconds (CloudWatch Duration x memory); run --env adds Step Functions", async () => {
    scale = 1;
    // Lambda work of another time (an hour earlier) is outside the run's window and not counted.
    await emitLambdaMetrics(new Date(Date.now() - 3600_000));
    const follow = await pipelineRun(200_000);
    expect(follow.status).toBe("SUCCEEDED");

    const objects = s3LakeObjects(h.clients);
    const recorded = (await readRunMetrics(objects, `s3://${h.env.buckets.metrics}`, follow.runId)).filter((r) => r.step === COST_STEP);
    const byFunction = Object.fromEntries(
      recorded.filter((r) => r.name === COST_METRICS.lambdaGbSeconds).map((r) => [r.attributes.function, r.value]),
    );
    expect(byFunction).toEqual({
      BulkKickOff: 0,
      PollBulkStatus: 0,
      FanOut: 0.75,
      CheckDrained: 1,
      DownloadFile: 180,
      SearchWorker: 0,
      PublishMetrics: 0, // its own invocation is still running when it reads
    });
    const inRun = costRowOf(follow.runId, recorded);
    expect(inRun.parts).toEqual(["emr", "lambda", "athena"]);
    expect(inRun.lambdaGbSeconds).toBeCloseTo(RUN_GB_SECONDS, 9);
    // arm64 (the functions' architecture): GB-seconds x $0.0000133334, plus $0.20 per million requests.
    expect(inRun.lambdaUsd).toBeCloseTo(RUN_GB_SECONDS * 0.0000133334 + 6 * 0.2e-6, 12);
    expect(inRun.resources).toBe(200_000);
    const silver = emrJobCost(BILLED.silver, arm).totalUsd;
    const gold = emrJobCost(BILLED.gold, arm).totalUsd;
    // 2.5 vCPU-h x $0.042094 + 10 GB-h x $0.004628 + 50 GB-h x $0.000111
    expect(silver).toBeCloseTo(0.105235 + 0.04628 + 0.00555, 10);
    expect(inRun.emrUsd).toBeCloseTo(silver + gold, 12);
    const vcpu = recorded.filter((r) => r.name === COST_METRICS.emrVcpuHours);
    expect(vcpu.map((r) => [r.attributes.job, r.value, r.unit, r.metricType]).sort()).toEqual([
      ["gold", 0.5, "vCPU-hours", "COUNT"],
      ["silver", 2.5, "vCPU-hours", "COUNT"],
    ]);
    expect(recorded.find((r) => r.name === COST_METRICS.athenaBytesScanned)!.metricType).toBe("BYTES");

    // After following the run, the CLI adds what only the finished history has.
    const completed = await completeRunCost({ clients: h.clients, env: h.env, run: follow });
    expect(completed.recorded).toEqual(["stepfunctions"]);
    expect(completed.cost.stateTransitions).toBe(6);
    expect(completed.cost.stepFunctionsUsd).toBeCloseTo(6 * 0.000025, 12);
    expect(completed.cost.totalUsd).toBeCloseTo(inRun.totalUsd + 6 * 0.000025, 12);
    expect(completed.cost.usdPerMillionResources).toBeCloseTo(completed.cost.totalUsd * 5, 12);
    expect(completed.summary).toContain(`Lambda $${inRun.lambdaUsd.toPrecision(3)} (181.8 GB-s)`);
    // A second completion records nothing more.
    expect((await completeRunCost({ clients: h.clients, env: h.env, run: follow })).recorded).toEqual([]);
  });

  it("reports cost per run and per million resources, its trend, and completes runs nobody followed", async () => {
    // Two more runs, each using more EMR capacity for the same number of resources, followed by run --env.
    for (const s of [2, 4]) {
      scale = s;
      const follow = await pipelineRun(200_000);
      await completeRunCost({ clients: h.clients, env: h.env, run: follow });
    }
    // A scheduled run nobody followed: PublishMetrics recorded its cost; the report adds Step Functions.
    scale = 8;
    const scheduled = await pipelineRun(200_000);
    // A run that never reached PublishMetrics (nobody recorded anything): the report costs it all.
    const { executionArn } = await startRun(h.clients, h.env, {});
    await followExecution({ clients: h.clients, executionArn, sink: new QuietProgressRenderer(), pollIntervalMs: 250 });

    const report = await costReport(h.clients, h.env, s3LakeObjects(h.clients), { limit: 20 });
    expect(report.runs).toHaveLength(5);
    expect(report.runs.map((r) => r.emrVcpuHours)).toEqual([3, 6, 12, 24, 24]);
    expect(report.runs.map((r) => r.backfilled)).toEqual([false, false, false, true, true]);
    const completedScheduled = report.runs.find((r) => r.runId === scheduled.runId)!;
    expect(completedScheduled.parts).toEqual(["emr", "lambda", "athena", "stepfunctions"]);
    expect(completedScheduled.lambdaGbSeconds).toBeCloseTo(RUN_GB_SECONDS, 9);
    const unpublished = report.runs.find((r) => r.runId === executionArn.split(":").pop())!;
    expect(unpublished.resources).toBe(0);
    for (const r of report.runs.slice(0, 4)) expect(r.usdPerMillionResources).toBeCloseTo((r.totalUsd / 200_000) * 1e6, 9);
    expect(report.totalTrend!.direction).toBe("rising");
    expect(report.perMillionTrend!.direction).toBe("rising");

    const text = renderCostReport(report);
    expect(text).toContain("per 1M resources");
    expect(text).toMatch(/cost per million resources: rising/);
    expect(text).toContain("* completed now from the run's history, GetJobRun and CloudWatch, and recorded");

    // Recorded: a second report reads every run's cost from the metrics, completing nothing.
    const again = await costReport(h.clients, h.env, s3LakeObjects(h.clients), { limit: 20 });
    expect(again.runs.every((r) => !r.backfilled)).toBe(true);
    expect(again.runs.map((r) => r.totalUsd)).toEqual(report.runs.map((r) => r.totalUsd));
  });

  it("prints the report from the command line (report --env)", async () => {
    const cli = await runCli(["report", "--env", ENV_NAME], emulatorEnv(h.moto.endpoint));
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`cost of runs in environment ${ENV_NAME}`);
    expect(cli.stdout).toMatch(/Lambda GB-s/);
    expect(cli.stdout).toMatch(/cost per run: rising/);
  });
});
