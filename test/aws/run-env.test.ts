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
import { followExecution } from "../../lib/aws/execution-follower";
import { newRunId, runInAws, startRun } from "../../lib/aws/run";
import { COST_METRICS, COST_STEP } from "../../lib/aws/run-cost";
import { readRunMetrics } from "../../lib/aws/run-metrics";
import { MetricsCollector } from "../../lib/core/metrics";
import { STEP } from "../../lib/core/pipeline-steps";
import { QuietProgressRenderer } from "../../lib/core/progress";
import { emulatorEnv, runCli } from "./cli-process";
import { ENV_NAME, outputsFileContent, useDeployedEnvironment } from "./deployed-env-fixture";

const h = useDeployedEnvironment();

describe("run --env", () => {
  it("resolves the environment from the stacks' outputs", async () => {
    const env = await resolveEnvironment({ envName: ENV_NAME, clients: h.fx.clients });
    expect(env.stateMachineArn).toBe(h.fx.stateMachineArn);
    expect(env.emrApplicationId).toBe(h.fx.applicationId);
    expect(env.workgroup).toBe(h.fx.workgroup);
    expect(env.queueUrls.download).toBe(h.fx.downloadQueueUrl);
    expect(env.goldDatabase).toBe("fhir_gold_dev");
    expect(env.lake.bronze).toBe(`s3://${h.fx.buckets.bronze}/bronze`);
    expect(env.source).toBe("cloudformation");
  });

  it("starts an execution and follows it to its end, feeding the progress display", async () => {
    const sink = new QuietProgressRenderer();
    const out: string[] = [];
    const result = await runInAws({
      envName: ENV_NAME,
      clients: h.fx.clients,
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
    const rows = await readRunMetrics(s3LakeObjects(h.fx.clients), `s3://${h.fx.buckets.metrics}`, result.runId);
    const costRows = rows.filter((r) => r.step === COST_STEP);
    expect(
      costRows
        .filter((r) => r.name === COST_METRICS.emrVcpuHours)
        .map((r) => r.attributes.job)
        .sort(),
    ).toEqual(["gold", "silver"]);
    expect(costRows.find((r) => r.name === COST_METRICS.stateTransitions)!.value).toBe(6);
    // Nobody (no PublishMetrics in this machine) had recorded any part: run --env recorded them all.
    expect(
      costRows
        .filter((r) => r.name === COST_METRICS.costUsd)
        .map((r) => [r.attributes.component, r.unit])
        .sort(),
    ).toEqual([
      ["athena", "USD"],
      ["emr", "USD"],
      ["lambda", "USD"],
      ["stepfunctions", "USD"],
    ]);

    const summary = JSON.parse(out.join(""));
    expect(summary).toMatchObject({ runId: result.runId, status: "SUCCEEDED" });
  });

  it("shows each Spark job's stage summary from the metrics it writes to the lake", async () => {
    // What the silver job's metrics collector writes before the job ends (moto's jobs end at once,
    // so it is written first here): two stages, and the step's records.
    const runId = newRunId();
    const c = new MetricsCollector({
      runId,
      step: "silver",
      lakeRoot: `s3://${h.fx.buckets.metrics}`,
      writer: s3LakeObjects(h.clients).write,
    });
    const stage = (id: number, tasks: number, inputBytes: number, shuffle: number) => {
      const attrs = { stage_id: id, attempt_id: 0, stage_name: `stage ${id}`, status: "COMPLETE", num_tasks: tasks };
      c.record("spark.stage.duration", "RUNTIME", 3.5, "s", attrs);
      c.record("spark.stage.input_bytes", "BYTES", inputBytes, "bytes", attrs);
      c.record("spark.stage.shuffle_read_bytes", "SHUFFLE", shuffle, "bytes", attrs);
    };
    stage(0, 8, 3 * 1024 ** 2, 0);
    stage(1, 4, 0, 512 * 1024);
    c.recordStep({ records: 1180, seconds: 12 });
    await c.flush();

    const { executionArn } = await startRun(h.clients, h.env, {}, runId);
    const sink = new QuietProgressRenderer();
    const follow = await followExecution({
      clients: h.clients,
      executionArn,
      sink,
      pollIntervalMs: 250,
      sparkMetrics: { objects: s3LakeObjects(h.clients), lakeRoot: `s3://${h.fx.buckets.metrics}` },
    });
    const silver = follow.jobs.find((j) => j.step === "silver")!;
    expect(silver.stages).toMatchObject({ stages: 2, tasks: 12, inputBytes: 3 * 1024 ** 2, shuffleBytes: 512 * 1024, records: 1180 });
    expect(sink.events).toContainEqual({
      kind: "job",
      name: "silver",
      id: silver.usage.jobRunId,
      state: "SUCCESS",
      completedTasks: 12,
      totalTasks: 12,
      detail: "2 stages (12 tasks), read 3.0 MB, shuffled 512.0 KB, 1180 records",
    });
    // The gold job wrote no metrics: its job states are all there is.
    expect(follow.jobs.find((j) => j.step === "gold")!.stages).toBeUndefined();
  });

  it("runs from the command line, and --detach prints the execution and returns", async () => {
    const followed = await runCli(["run", "--env", ENV_NAME, "--json", "--poll", "0.25"], emulatorEnv(h.moto.endpoint));
    expect(followed.stderr).toBe("");
    expect(followed.code).toBe(0);
    const summary = JSON.parse(followed.stdout);
    expect(summary.status).toBe("SUCCEEDED");
    expect(summary.jobs).toHaveLength(2);

    const detached = await runCli(["run", "--env", ENV_NAME, "--detach"], emulatorEnv(h.moto.endpoint));
    expect(detached.code).toBe(0);
    const arn = detached.stdout.trim();
    expect(arn).toMatch(/^arn:aws:states:us-east-1:\d+:execution:.+:run-\d{8}T\d{9}Z-\d{3}-[0-9a-f]{6}$/);
    const described = await h.fx.clients.stepFunctions.send(new DescribeExecutionCommand({ executionArn: arn }));
    expect(described.stateMachineArn).toBe(h.fx.stateMachineArn);
  });

  it("reads the environment from a `cdk deploy --outputs-file` file too", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "outputs-"));
    try {
      const file = path.join(dir, "cdk-outputs.json");
      fs.writeFileSync(file, JSON.stringify(await outputsFileContent(h.fx.clients)));
      const env = await resolveEnvironment({ envName: ENV_NAME, outputsFile: file, clients: h.fx.clients });
      expect(env.stateMachineArn).toBe(h.fx.stateMachineArn);
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
      clients: h.fx.clients,
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
        lakeRoot: `s3://${h.fx.buckets.metrics}`,
        writer: s3LakeObjects(h.fx.clients).write,
      });
      c.recordStep({ records, seconds: 10 });
      await c.flush();
    }

    const listed = await runCli(["status", "--env", ENV_NAME, "--json"], emulatorEnv(h.moto.endpoint));
    expect(listed.stderr).toBe("");
    expect(listed.code).toBe(0);
    const report = JSON.parse(listed.stdout);
    const mine = report.runs.find((r: { runId: string }) => r.runId === run.runId);
    expect(mine).toMatchObject({ status: "SUCCEEDED", recordsPerStep: { extract: 1200, silver: 1180, gold: 42 } });
    expect(typeof mine.durationSeconds).toBe("number");
    expect(typeof mine.costUsd).toBe("number");
    expect(report.alarms.map((a: { name: string }) => a.name)).toEqual(["fhir-lakehouse-dev-dlq-not-empty"]);

    const detail = await runCli(["status", "--env", ENV_NAME, "--run", run.runId], emulatorEnv(h.moto.endpoint));
    expect(detail.code).toBe(0);
    expect(detail.stdout).toContain(`run ${run.runId}: SUCCEEDED`);
    expect(detail.stdout).toMatch(/spark silver: EMR Serverless job run \S+/);
    expect(detail.stdout).toContain("records per step: extract 1200, silver 1180, gold 42");
    expect(detail.stdout).toMatch(/estimated cost: \$\S+ \(EMR \$\S+, Lambda \$\S+ \(0\.0 GB-s\), Step Functions \$\S+\)/);
    expect(detail.stdout).toContain("alarms firing: 1");
    expect(detail.stdout).toContain("fhir-lakehouse-dev-dlq-not-empty");
  });
});
