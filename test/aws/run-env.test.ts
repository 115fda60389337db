// `fhir-pipeline run --env` and `status --env` against moto running as a real HTTP server on
// 127.0.0.1: the environment is resolved from CloudFormation stack outputs, the execution runs in
// moto's Step Functions interpreter (which sends the SQS message and starts the EMR Serverless
// job runs in moto), and the CLI follows it through GetExecutionHistory, GetJobRun and SQS.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DescribeExecutionCommand } from "@aws-sdk/client-sfn";
import { resolveEnvironment } from "../../lib/aws/environment";
import { s3LakeObjects } from "../../lib/aws/lake-objects";
import { runInAws } from "../../lib/aws/run";
import { COST_METRICS, COST_STEP } from "../../lib/aws/run-cost";
import { readRunMetrics } from "../../lib/aws/run-metrics";
import { MetricsCollector } from "../../lib/core/metrics";
import { STEP } from "../../lib/core/pipeline-steps";
import { QuietProgressRenderer } from "../../lib/core/progress";
import { emulatorEnv, runCli } from "./cli-process";
import { ENV_NAME, createDeployedEnvironment, outputsFileContent, type Fixture } from "./deployed-env-fixture";
import { MOTO_ENV, startMoto, type MotoServer } from "./moto-server";

let moto: MotoServer;
let fx: Fixture;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  for (const [k, v] of Object.entries(MOTO_ENV)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  moto = await startMoto();
  fx = await createDeployedEnvironment(moto);
});

afterAll(async () => {
  fx?.clients.destroy();
  await moto?.stop();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("run --env", () => {
  it("resolves the environment from the stacks' outputs", async () => {
    const env = await resolveEnvironment({ envName: ENV_NAME, clients: fx.clients });
    expect(env.stateMachineArn).toBe(fx.stateMachineArn);
    expect(env.emrApplicationId).toBe(fx.applicationId);
    expect(env.workgroup).toBe(fx.workgroup);
    expect(env.queueUrls.download).toBe(fx.downloadQueueUrl);
    expect(env.goldDatabase).toBe("fhir_gold_dev");
    expect(env.lake.bronze).toBe(`s3://${fx.buckets.bronze}/bronze`);
    expect(env.source).toBe("cloudformation");
  });

  it("starts an execution and follows it to its end, feeding the progress display", async () => {
    const sink = new QuietProgressRenderer();
    const out: string[] = [];
    const result = await runInAws({
      envName: ENV_NAME,
      clients: fx.clients,
      sink,
      json: true,
      pollIntervalMs: 250,
      out: { write: (s: string) => out.push(s) } as unknown as NodeJS.WritableStream,
    });
    expect(result.follow!.status).toBe("SUCCEEDED");

    // Every state transition, in order, from the execution history.
    const entered = sink.events.filter((e) => e.kind === "state" && e.status === "entered").map((e) => (e as { name: string }).name);
    expect(entered).toEqual([STEP.startRun, STEP.fanOut, STEP.waitForDrain, STEP.silverJob, STEP.goldJob, STEP.runSucceeded]);
    // The queue depth while extraction waits: the unit FanOut enqueued (no worker consumes it here).
    const queue = sink.events.filter((e) => e.kind === "queue");
    expect(queue.length).toBeGreaterThan(0);
    expect(queue.some((e) => e.kind === "queue" && e.name === "download" && e.visible >= 1)).toBe(true);
    // The EMR Serverless job runs the Spark states started, with their state from GetJobRun.
    const jobs = result.follow!.jobs;
    expect(jobs.map((j) => j.step).sort()).toEqual(["gold", "silver"]);
    for (const j of jobs) expect(j.usage.state).toBe("SUCCESS");
    expect(sink.events.some((e) => e.kind === "job" && e.name === "silver" && e.state === "SUCCESS")).toBe(true);
    expect(sink.events[0]).toMatchObject({ kind: "run", status: "started", runId: result.runId });
    expect(sink.events[sink.events.length - 1]).toMatchObject({ kind: "run", status: "succeeded", runId: result.runId });

    // The cost was recorded in the metrics contract, in the metrics bucket.
    const rows = await readRunMetrics(s3LakeObjects(fx.clients), `s3://${fx.buckets.metrics}`, result.runId);
    const costRows = rows.filter((r) => r.step === COST_STEP);
    expect(
      costRows
        .filter((r) => r.name === COST_METRICS.emrVcpuHours)
        .map((r) => r.attributes.job)
        .sort(),
    ).toEqual(["gold", "silver"]);
    expect(costRows.find((r) => r.name === COST_METRICS.stateTransitions)!.value).toBe(6);
    expect(costRows.find((r) => r.name === COST_METRICS.costUsd && r.attributes.component === "total")!.unit).toBe("USD");

    const summary = JSON.parse(out.join(""));
    expect(summary).toMatchObject({ runId: result.runId, status: "SUCCEEDED" });
  });

  it("runs from the command line, and --detach prints the execution and returns", async () => {
    const followed = await runCli(["run", "--env", ENV_NAME, "--json", "--poll", "0.25"], emulatorEnv(moto.endpoint));
    expect(followed.stderr).toBe("");
    expect(followed.code).toBe(0);
    const summary = JSON.parse(followed.stdout);
    expect(summary.status).toBe("SUCCEEDED");
    expect(summary.jobs).toHaveLength(2);

    const detached = await runCli(["run", "--env", ENV_NAME, "--detach"], emulatorEnv(moto.endpoint));
    expect(detached.code).toBe(0);
    const arn = detached.stdout.trim();
    expect(arn).toMatch(/^arn:aws:states:us-east-1:\d+:execution:.+:run-\d{8}T\d{9}Z-\d{3}-[0-9a-f]{6}$/);
    const described = await fx.clients.stepFunctions.send(new DescribeExecutionCommand({ executionArn: arn }));
    expect(described.stateMachineArn).toBe(fx.stateMachineArn);
  });

  it("reads the environment from a `cdk deploy --outputs-file` file too", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "outputs-"));
    try {
      const file = path.join(dir, "cdk-outputs.json");
      fs.writeFileSync(file, JSON.stringify(await outputsFileContent(fx.clients)));
      const env = await resolveEnvironment({ envName: ENV_NAME, outputsFile: file, clients: fx.clients });
      expect(env.stateMachineArn).toBe(fx.stateMachineArn);
      expect(env.source).toBe(file);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("status --env", () => {
  it("lists the runs with outcome, duration, records per layer and cost, and the alarms firing", async () => {
    const run = await runInAws({
      envName: ENV_NAME,
      clients: fx.clients,
      sink: new QuietProgressRenderer(),
      pollIntervalMs: 250,
      out: { write: () => true } as unknown as NodeJS.WritableStream,
    });
    // What the pipeline's steps write for a run: their record counts in the metrics contract.
    for (const [step, records] of [
      ["extract", 1200],
      ["silver", 1180],
      ["gold", 42],
    ] as const) {
      const c = new MetricsCollector({
        runId: run.runId,
        step,
        lakeRoot: `s3://${fx.buckets.metrics}`,
        writer: s3LakeObjects(fx.clients).write,
      });
      c.recordStep({ records, seconds: 10 });
      await c.flush();
    }

    const listed = await runCli(["status", "--env", ENV_NAME, "--json"], emulatorEnv(moto.endpoint));
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    const report = JSON.parse(listed.stdout);
    const mine = report.runs.find((r: { runId: string }) => r.runId === run.runId);
    expect(mine).toMatchObject({ status: "SUCCEEDED", recordsPerStep: { extract: 1200, silver: 1180, gold: 42 } });
    expect(typeof mine.durationSeconds).toBe("number");
    expect(typeof mine.costUsd).toBe("number");
    expect(report.alarms.map((a: { name: string }) => a.name)).toEqual(["fhir-lakehouse-dev-dlq-not-empty"]);

    const detail = await runCli(["status", "--env", ENV_NAME, "--run", run.runId], emulatorEnv(moto.endpoint));
    expect(detail.code).toBe(0);
    expect(detail.stdout).toContain(`run ${run.runId}: SUCCEEDED`);
    expect(detail.stdout).toMatch(/spark silver: EMR Serverless job run \S+/);
    expect(detail.stdout).toContain("records per step: extract 1200, silver 1180, gold 42");
    expect(detail.stdout).toContain("alarms firing: 1");
    expect(detail.stdout).toContain("fhir-lakehouse-dev-dlq-not-empty");
  });
});
