// The pipeline's ASL definition: valid for asl-validator, accepted by aws-local-stepfunctions, and
// its control flow actually runs there (bulk with polling, search, drain loop, every failure path).
// The Task implementations here are small in-test functions keyed by state name — exactly how the
// local runner plugs in the real steps — because this suite tests the control flow, not the steps.
import aslValidator from "asl-validator";
import { StateMachine } from "aws-local-stepfunctions";
import { loadConfig } from "../../config/load";
import type { PipelineConfig } from "../../config/schema";
import {
  localContext,
  sparkJobArguments,
  STEP,
  TASK_STEPS,
  WAIT_STEPS,
  type BulkExportState,
  type DrainStatus,
  type FanOutOutput,
  type GroupState,
  type NotifyFailureInput,
  type PollBulkStatusInput,
  type SparkJobInput,
} from "../../lib/core/pipeline-steps";
import { renderStateMachineDefinition, type AslDefinition } from "../../lib/core/state-machine-definition";
import type { CfnValue } from "./template-values";

type Handler = (input: CfnValue) => Promise<CfnValue>;

const config: PipelineConfig = loadConfig("dev");
const twoGroups: PipelineConfig = { ...config, epic: { ...config.epic, groupIds: ["group-a", "group-b"] } };
const lake = {
  bronze: "file:///w/lake/bronze",
  silver: "file:///w/lake/silver",
  gold: "file:///w/lake/gold",
  metrics: "file:///w/lake/metrics",
};

/** A scripted set of steps that records the order it was called in. */
function scriptedSteps(
  opts: { pollsBeforeComplete?: number; drainChecks?: DrainStatus["state"][]; failAt?: string; failName?: string } = {},
) {
  const calls: { step: string; input: CfnValue }[] = [];
  const polls = new Map<string, number>();
  const drains = [...(opts.drainChecks ?? ["drained"])];
  const record =
    (step: string, fn: Handler): Handler =>
    async (input) => {
      calls.push({ step, input });
      if (opts.failAt === step) {
        const err = new Error(`${step} failed in test`);
        err.name = opts.failName ?? "Error";
        throw err;
      }
      return fn(input);
    };
  const handlers: Record<string, Handler> = {
    BulkKickOff: record("BulkKickOff", async ({ groupId }): Promise<BulkExportState> => ({
      statusUrl: `https://epic.test/bulk/${groupId}`,
      kickedOffAt: "2025-01-01T00:00:00Z",
      state: "in-progress",
      retryAfterSeconds: 120,
    })),
    PollBulkStatus: record("PollBulkStatus", async ({ groupId, export: exp }: PollBulkStatusInput): Promise<BulkExportState> => {
      const n = (polls.get(groupId) ?? 0) + 1;
      polls.set(groupId, n);
      const done = n > (opts.pollsBeforeComplete ?? 1);
      return {
        ...exp,
        state: done ? "complete" : "in-progress",
        retryAfterSeconds: 30,
        ...(done ? { manifestUri: `file:///w/m-${groupId}.json`, outputFiles: 3 } : {}),
      };
    }),
    FanOut: record("FanOut", async (input: GroupState): Promise<FanOutOutput> => ({
      groupId: input.groupId,
      mode: input.run.mode,
      unitsEnqueued: input.export ? (input.export.outputFiles ?? 0) : 5,
    })),
    CheckDrained: record("CheckDrained", async ({ groups }): Promise<DrainStatus> => {
      const enq = (groups as FanOutOutput[]).reduce((s, g) => s + g.unitsEnqueued, 0);
      const state = drains.length > 1 ? drains.shift()! : drains[0];
      return {
        state,
        unitsEnqueued: enq,
        unitsDone: state === "drained" ? enq : 0,
        unitsFailed: state === "failed" ? 1 : 0,
        waitSeconds: 15,
      };
    }),
    SilverJob: record("SilverJob", async (p: SparkJobInput) => ({ ApplicationId: p.ApplicationId, JobRunId: "silver-1" })),
    GoldJob: record("GoldJob", async (p: SparkJobInput) => ({ ApplicationId: p.ApplicationId, JobRunId: "gold-1" })),
    Maintenance: record("Maintenance", async (p: SparkJobInput) => ({ ApplicationId: p.ApplicationId, JobRunId: "maint-1" })),
    PublishMetrics: record("PublishMetrics", async () => ({ metricsUri: "file:///w/lake/metrics/performance_metrics", resources: 42 })),
    NotifyFailure: record("NotifyFailure", async () => ({ MessageId: "m-1" })),
  };
  return { calls, handlers, steps: () => calls.map((c) => c.step) };
}

async function run(def: AslDefinition, input: object, handlers: Record<string, Handler>, runId = "run-1") {
  const sm = new StateMachine(def as CfnValue);
  const waits = Object.fromEntries(WAIT_STEPS.map((w) => [w, 0]));
  const retries = Object.fromEntries(TASK_STEPS.map((t) => [t, 0]));
  const execution = sm.run(input as CfnValue, {
    overrides: { taskResourceLocalHandlers: handlers, waitTimeOverrides: waits, retryIntervalOverrides: retries },
    context: localContext(runId, input) as CfnValue,
  });
  return execution.result;
}

describe("the pipeline state machine definition", () => {
  const def = renderStateMachineDefinition(config, { lake, catalog: "local" });

  test("is valid ASL (asl-validator) and loads in aws-local-stepfunctions", () => {
    const result = aslValidator(structuredClone(def)); // it annotates what it is given
    expect(result.errorsText("\n")).toBe("");
    expect(result.isValid).toBe(true);
    expect(() => new StateMachine(def as CfnValue)).not.toThrow();
  });

  test("contains each step, with the documented types", () => {
    const s = def.States;
    const inner = (s.ExtractGroups.ItemProcessor as CfnValue).States;
    expect(s.ChooseMode.Type).toBe("Choice");
    expect(s.StartRun.Type).toBe("Pass");
    expect(s.ExtractGroups.Type).toBe("Map");
    expect(inner.BulkKickOff.Type).toBe("Task");
    expect(inner.WaitForExport).toMatchObject({ Type: "Wait", SecondsPath: "$.export.retryAfterSeconds" });
    expect(inner.PollBulkStatus.Type).toBe("Task");
    expect(inner.FanOut.Type).toBe("Task");
    expect(s.CheckDrained.Type).toBe("Task");
    expect(s.WaitForDrain).toMatchObject({ Type: "Wait", SecondsPath: "$.drain.waitSeconds" });
    for (const job of ["SilverJob", "GoldJob", "Maintenance"]) {
      expect(s[job].Resource).toBe("arn:aws:states:::emr-serverless:startJobRun.sync");
    }
    expect(s.PublishMetrics.Type).toBe("Task");
    expect(s.NotifyFailure.Resource).toBe("arn:aws:states:::sns:publish");
    expect(s.RunFailed.Type).toBe("Fail");
  });

  test("every Task retries with backoff; every top-level Task and the Map catch into NotifyFailure", () => {
    const inner = (def.States.ExtractGroups.ItemProcessor as CfnValue).States;
    const tasks = [...Object.entries(def.States), ...Object.entries(inner)].filter(([, s]: CfnValue) => s.Type === "Task");
    expect(tasks.map(([n]) => n).sort()).toEqual([...TASK_STEPS].sort());
    for (const [name, state] of tasks as [string, CfnValue][]) {
      expect({ name, retry: state.Retry.some((r: CfnValue) => r.MaxAttempts > 0 && r.BackoffRate >= 2) }).toEqual({ name, retry: true });
      expect(state.TimeoutSeconds).toBeGreaterThan(0);
    }
    for (const [name, state] of Object.entries(def.States) as [string, CfnValue][]) {
      if ((state.Type === "Task" && name !== "NotifyFailure") || state.Type === "Map") {
        expect({ name, next: state.Catch[0].Next }).toEqual({ name, next: "NotifyFailure" });
      }
    }
  });

  test("bulk mode: kick-off, poll until complete (Wait driven by Retry-After), fan out, drain, silver, gold, maintenance, metrics", async () => {
    const s = scriptedSteps({ pollsBeforeComplete: 2, drainChecks: ["pending", "pending", "drained"] });
    const out: CfnValue = await run(renderStateMachineDefinition(twoGroups, { lake, catalog: "local" }), { mode: "bulk" }, s.handlers);
    const steps = s.steps();
    expect(steps.filter((x) => x === "BulkKickOff")).toHaveLength(2);
    expect(steps.filter((x) => x === "PollBulkStatus")).toHaveLength(6); // 3 polls per group
    expect(steps.filter((x) => x === "FanOut")).toHaveLength(2);
    expect(steps.filter((x) => x === "CheckDrained")).toHaveLength(3);
    expect(steps.slice(-4)).toEqual(["SilverJob", "GoldJob", "Maintenance", "PublishMetrics"]);
    expect(steps).not.toContain("NotifyFailure");
    expect(out.run).toMatchObject({ runId: "run-1", mode: "bulk", groupIds: ["group-a", "group-b"] });
    expect(out.groups.map((g: FanOutOutput) => g.unitsEnqueued)).toEqual([3, 3]);
    expect(out.metrics.resources).toBe(42);
    const poll = s.calls.find((c) => c.step === "PollBulkStatus")!.input as PollBulkStatusInput;
    expect(poll.export.statusUrl).toMatch(/^https:\/\/epic.test\/bulk\//);
  });

  test("the Spark steps get the job command line and the configured submit parameters", async () => {
    const s = scriptedSteps();
    await run(def, {}, s.handlers, "run-42");
    const silver = s.calls.find((c) => c.step === "SilverJob")!.input as SparkJobInput;
    expect(silver.Name).toBe("silver-run-42");
    expect(silver.JobDriver.SparkSubmit.EntryPointArguments).toEqual(sparkJobArguments("silver", "run-42", lake, "local"));
    expect(silver.JobDriver.SparkSubmit.SparkSubmitParameters).toContain(
      `--conf spark.executor.memory=${config.processing.spark.executorMemory}`,
    );
    const metrics = s.calls.find((c) => c.step === "PublishMetrics")!.input;
    expect(metrics.silver.JobRunId).toBe("silver-1");
    expect(metrics.maintenance.JobRunId).toBe("maint-1");
  });

  test("lake paths with quotes and braces reach the Spark steps intact", async () => {
    const odd = { ...lake, bronze: "file:///tmp/it's {odd}\\dir/bronze" };
    const s = scriptedSteps();
    await run(renderStateMachineDefinition(config, { lake: odd, catalog: "local" }), {}, s.handlers);
    const silver = s.calls.find((c) => c.step === "SilverJob")!.input as SparkJobInput;
    expect(silver.JobDriver.SparkSubmit.EntryPointArguments).toEqual(sparkJobArguments("silver", "run-1", odd, "local"));
  });

  test("no mode in the input means the config's mode; search mode skips kick-off and polling", async () => {
    const dflt = scriptedSteps();
    const out: CfnValue = await run(def, {}, dflt.handlers);
    expect(out.run.mode).toBe(config.extraction.mode);

    const s = scriptedSteps();
    const result: CfnValue = await run(def, { mode: "search", resourceTypes: ["Patient"] }, s.handlers);
    expect(s.steps()).not.toContain("BulkKickOff");
    expect(s.steps()).not.toContain("PollBulkStatus");
    expect(s.steps()[0]).toBe("FanOut");
    expect(result.run.request.resourceTypes).toEqual(["Patient"]);
    expect(result.groups[0]).toEqual({ groupId: config.epic.groupIds[0], mode: "search", unitsEnqueued: 5 });
  });

  test.each([
    ["an invalid mode", { input: { mode: "sideways" } }, "InvalidInput"],
    ["a failed kick-off (non-retryable)", { failAt: "BulkKickOff", failName: "EpicRequestRejected" }, "EpicRequestRejected"],
    ["units in a dead-letter queue", { drainChecks: ["failed"] as DrainStatus["state"][] }, "UnitsFailed"],
    ["a failed Spark job", { failAt: "GoldJob" }, "Error"],
  ])("%s ends in NotifyFailure then RunFailed", async (_label, opts: CfnValue, errorName) => {
    const s = scriptedSteps(opts);
    // aws-local-stepfunctions wraps the Fail state's error in an ExecutionError (as `cause`).
    await expect(run(def, opts.input ?? {}, s.handlers)).rejects.toMatchObject({ cause: { name: errorName } });
    const steps = s.steps();
    expect(steps[steps.length - 1]).toBe("NotifyFailure");
    const notify = s.calls[s.calls.length - 1].input as NotifyFailureInput;
    expect(notify.Message).toContain("run-1");
    expect(notify.Message).toContain(errorName);
    expect(notify.Subject).toContain(config.name);
    if (opts.failName === "EpicRequestRejected") expect(steps.filter((x) => x === "BulkKickOff")).toHaveLength(1);
    if (opts.failAt === "GoldJob") expect(steps.filter((x) => x === "GoldJob")).toHaveLength(2); // retried once
    expect(steps).not.toContain("PublishMetrics");
  });

  test("state names are stable: the local runner overrides exactly these", () => {
    expect([...TASK_STEPS].sort()).toEqual(
      [
        "BulkKickOff",
        "CheckDrained",
        "FanOut",
        "GoldJob",
        "Maintenance",
        "NotifyFailure",
        "PollBulkStatus",
        "PublishMetrics",
        "SilverJob",
      ].sort(),
    );
    expect(STEP.waitForExport).toBe("WaitForExport");
  });
});
