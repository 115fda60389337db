// Cost per run against moto running as a real HTTP server on 127.0.0.1: executions really run in
// moto's Step Functions interpreter and start EMR Serverless job runs in moto. moto's GetJobRun,
// however, answers zero billed utilisation and no totalResourceUtilization (its jobs do no work),
// so, and only for that call, an in-process SDK middleware answers GetJobRun with known
// utilisation for the job runs moto created. Everything else (history, S3 metrics, CloudWatch,
// Athena, CloudFormation) is moto.
import type { GetJobRunCommandOutput } from "@aws-sdk/client-emr-serverless";
import { AwsClients } from "../../lib/aws/clients";
import { US_EAST_1_PRICES, emrJobCost, type EmrUtilisation } from "../../lib/aws/cost";
import { costReport, renderCostReport } from "../../lib/aws/cost-report";
import { resolveEnvironment, type DeployedEnvironment } from "../../lib/aws/environment";
import { followExecution } from "../../lib/aws/execution-follower";
import { s3LakeObjects } from "../../lib/aws/lake-objects";
import { newRunId, startRun } from "../../lib/aws/run";
import { COST_METRICS, COST_STEP, recordRunCost } from "../../lib/aws/run-cost";
import { readRunMetrics } from "../../lib/aws/run-metrics";
import { MetricsCollector } from "../../lib/core/metrics";
import { QuietProgressRenderer } from "../../lib/core/progress";
import { emulatorEnv, runCli } from "./cli-process";
import { ENV_NAME, createDeployedEnvironment, type Fixture } from "./deployed-env-fixture";
import { MOTO_ENV, startMoto, type MotoServer } from "./moto-server";

let moto: MotoServer;
let fx: Fixture;
let clients: AwsClients;
let env: DeployedEnvironment;
const saved: Record<string, string | undefined> = {};

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

/** A run as the pipeline makes it: the extract step records its count, then the run is followed and costed. */
async function costedRun(resources: number) {
  const runId = newRunId();
  const c = new MetricsCollector({ runId, step: "extract", lakeRoot: `s3://${env.buckets.metrics}`, writer: s3LakeObjects(clients).write });
  c.recordStep({ records: resources, seconds: 60 });
  await c.flush();
  const { executionArn } = await startRun(clients, env, {}, runId);
  const follow = await followExecution({
    clients,
    executionArn,
    queueUrls: env.queueUrls,
    sink: new QuietProgressRenderer(),
    pollIntervalMs: 250,
  });
  return { follow, recorded: await recordRunCost({ clients, env, follow }) };
}

beforeAll(async () => {
  for (const [k, v] of Object.entries(MOTO_ENV)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  moto = await startMoto();
  fx = await createDeployedEnvironment(moto);
  clients = new AwsClients({ region: "us-east-1", endpoint: moto.endpoint });
  getJobRunStandIn(clients.emrServerless);
  env = await resolveEnvironment({ envName: ENV_NAME, clients });
});

afterAll(async () => {
  clients?.destroy();
  fx?.clients.destroy();
  await moto?.stop();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("cost per run", () => {
  it("computes the EMR cost from GetJobRun's billed utilisation and records it in the metrics contract", async () => {
    scale = 1;
    const { follow, recorded } = await costedRun(200_000);
    expect(follow.status).toBe("SUCCEEDED");
    const silver = emrJobCost(BILLED.silver, US_EAST_1_PRICES.x86_64).totalUsd;
    const gold = emrJobCost(BILLED.gold, US_EAST_1_PRICES.x86_64).totalUsd;
    expect(recorded.cost.emrByStep.silver).toBeCloseTo(silver, 12);
    expect(recorded.cost.emrByStep.gold).toBeCloseTo(gold, 12);
    // 2.5 vCPU-h * $0.052624 + 10 GB-h * $0.0057785 + 50 GB-h * $0.000111
    expect(silver).toBeCloseTo(0.13156 + 0.057785 + 0.00555, 10);
    expect(recorded.usage.stateTransitions).toBe(6);
    expect(recorded.cost.stepFunctionsUsd).toBeCloseTo(6 * 0.000025, 12);
    expect(recorded.usage.resources).toBe(200_000);
    expect(recorded.cost.usdPerMillionResources).toBeCloseTo(recorded.cost.totalUsd * 5, 12);
    // The stacks export no extractor function names, so Lambda is reported as not measured.
    expect(recorded.lambdaMeasured).toBe(false);
    expect(recorded.summary).toContain("Lambda not measured");

    const rows = (await readRunMetrics(s3LakeObjects(clients), `s3://${env.buckets.metrics}`, follow.runId)).filter(
      (r) => r.step === COST_STEP,
    );
    const vcpu = rows.filter((r) => r.name === COST_METRICS.emrVcpuHours);
    expect(vcpu.map((r) => [r.attributes.job, r.value, r.unit, r.metricType]).sort()).toEqual([
      ["gold", 0.5, "vCPU-hours", "COUNT"],
      ["silver", 2.5, "vCPU-hours", "COUNT"],
    ]);
    expect(rows.find((r) => r.name === COST_METRICS.emrStorageGbHours && r.attributes.job === "silver")!.unit).toBe("GB-hours");
    expect(rows.find((r) => r.name === COST_METRICS.athenaBytesScanned)!.metricType).toBe("BYTES");
    expect(rows.find((r) => r.name === COST_METRICS.costUsd && r.attributes.component === "total")!.value).toBeCloseTo(
      recorded.cost.totalUsd,
      12,
    );
  });

  it("reports cost per run and per million resources, its trend, and costs runs nobody followed", async () => {
    // Two more followed runs, each using more EMR capacity for the same number of resources.
    scale = 2;
    await costedRun(200_000);
    scale = 4;
    await costedRun(200_000);
    // A run started with --detach: nobody recorded its cost; the report costs it from its history.
    const { executionArn } = await startRun(clients, env, {});
    await followExecution({ clients, executionArn, sink: new QuietProgressRenderer(), pollIntervalMs: 250 });

    const report = await costReport(clients, env, s3LakeObjects(clients), { limit: 20 });
    expect(report.runs).toHaveLength(4);
    const followed = report.runs.filter((r) => !r.backfilled);
    expect(followed.map((r) => r.emrVcpuHours)).toEqual([3, 6, 12]);
    for (const r of followed) expect(r.usdPerMillionResources).toBeCloseTo((r.totalUsd / 200_000) * 1e6, 9);
    const detached = report.runs.find((r) => r.backfilled)!;
    expect(detached.runId).toBe(executionArn.split(":").pop());
    expect(detached.emrVcpuHours).toBe(12); // the stand-in's current scale
    expect(detached.resources).toBe(0);
    expect(report.totalTrend!.direction).toBe("rising");
    expect(report.perMillionTrend!.direction).toBe("rising");

    const text = renderCostReport(report);
    expect(text).toContain("per 1M resources");
    expect(text).toMatch(/cost per million resources: rising/);
    expect(text).toContain("* costed now from the run's history and GetJobRun, and recorded");

    // Recorded: a second report reads the backfilled run's cost from the metrics, not recomputing it.
    const again = await costReport(clients, env, s3LakeObjects(clients), { limit: 20 });
    expect(again.runs.every((r) => !r.backfilled)).toBe(true);
  });

  it("prints the report from the command line (report --env)", async () => {
    const cli = await runCli(["report", "--env", ENV_NAME], emulatorEnv(moto.endpoint));
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`cost of runs in environment ${ENV_NAME}`);
    expect(cli.stdout).toMatch(/cost per run: rising/);
  });
});
