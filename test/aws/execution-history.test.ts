// Reading a Step Functions execution history (pure): the shapes AWS records for the deployed
// machine (Lambda tasks, emr-serverless:startJobRun.sync, a failure caught to NotifyFailure).
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { countStateTransitions, interpretHistory, sparkStepOf } from "../../lib/aws/execution-history";
import { STEP } from "../../lib/core/pipeline-steps";

let id = 0;
function ev(type: string, previousEventId: number, details: Partial<HistoryEvent> = {}): HistoryEvent {
  id++;
  return { id, previousEventId, type: type as HistoryEvent["type"], timestamp: new Date(1_700_000_000_000 + id * 1000), ...details };
}

function history(): HistoryEvent[] {
  id = 0;
  return [
    ev("ExecutionStarted", 0),
    ev("TaskStateEntered", 1, { stateEnteredEventDetails: { name: STEP.checkDrained } }),
    ev("TaskScheduled", 2),
    ev("TaskStarted", 3),
    ev("TaskSucceeded", 4, {
      taskSucceededEventDetails: {
        resourceType: "lambda",
        resource: "invoke",
        output: JSON.stringify({ state: "drained", unitsEnqueued: 40, unitsDone: 40, unitsFailed: 0, waitSeconds: 1 }),
      },
    }),
    ev("TaskStateExited", 5, { stateExitedEventDetails: { name: STEP.checkDrained } }),
    ev("TaskStateEntered", 6, { stateEnteredEventDetails: { name: STEP.silverJob } }),
    ev("TaskScheduled", 7, {
      taskScheduledEventDetails: { resourceType: "emr-serverless", resource: "startJobRun.sync", region: "us-east-1", parameters: "{}" },
    }),
    ev("TaskStarted", 8),
    ev("TaskSubmitted", 9, {
      taskSubmittedEventDetails: {
        resourceType: "emr-serverless",
        resource: "startJobRun.sync",
        output: JSON.stringify({ ApplicationId: "app1", JobRunId: "jr-silver", Arn: "arn" }),
      },
    }),
    ev("TaskSucceeded", 10, {
      taskSucceededEventDetails: {
        resourceType: "emr-serverless",
        resource: "startJobRun.sync",
        output: JSON.stringify({ ApplicationId: "app1", JobRunId: "jr-silver" }),
      },
    }),
    ev("TaskStateExited", 11, { stateExitedEventDetails: { name: STEP.silverJob } }),
    ev("TaskStateEntered", 12, { stateEnteredEventDetails: { name: STEP.goldJob } }),
    ev("TaskScheduled", 13),
    ev("TaskStarted", 14),
    ev("TaskFailed", 15, {
      taskFailedEventDetails: {
        resourceType: "emr-serverless",
        resource: "startJobRun.sync",
        error: "States.TaskFailed",
        cause: "job failed",
      },
    }),
    ev("TaskStateExited", 16, { stateExitedEventDetails: { name: STEP.goldJob } }),
    ev("TaskStateEntered", 17, { stateEnteredEventDetails: { name: STEP.publishMetrics } }),
    ev("TaskSucceeded", 18, {
      taskSucceededEventDetails: {
        resourceType: "lambda",
        resource: "invoke",
        output: JSON.stringify({ metricsUri: "s3://m/metrics", resources: 4321 }),
      },
    }),
    ev("TaskStateExited", 19, { stateExitedEventDetails: { name: STEP.publishMetrics } }),
    ev("FailStateEntered", 20, { stateEnteredEventDetails: { name: STEP.runFailed } }),
    ev("ExecutionFailed", 21, { executionFailedEventDetails: { error: "States.TaskFailed", cause: "gold failed" } }),
  ];
}

describe("interpretHistory", () => {
  it("reads states, EMR job runs, the drain status, published metrics and the outcome", () => {
    const facts = interpretHistory(history());
    expect(facts.filter((f) => f.kind === "state" && f.status === "entered").map((f) => (f as { name: string }).name)).toEqual([
      STEP.checkDrained,
      STEP.silverJob,
      STEP.goldJob,
      STEP.publishMetrics,
      STEP.runFailed,
    ]);
    // The job run is reported by TaskSubmitted and again by TaskSucceeded: same ids both times.
    const jobs = facts.filter((f) => f.kind === "emr-job");
    expect(jobs).toEqual([
      { kind: "emr-job", stateName: STEP.silverJob, step: "silver", applicationId: "app1", jobRunId: "jr-silver" },
      { kind: "emr-job", stateName: STEP.silverJob, step: "silver", applicationId: "app1", jobRunId: "jr-silver" },
    ]);
    expect(facts).toContainEqual({ kind: "state", name: STEP.goldJob, status: "failed", detail: "States.TaskFailed" });
    expect(facts).toContainEqual({
      kind: "drain",
      status: { state: "drained", unitsEnqueued: 40, unitsDone: 40, unitsFailed: 0, waitSeconds: 1 },
    });
    expect(facts).toContainEqual({ kind: "published", metrics: { metricsUri: "s3://m/metrics", resources: 4321 } });
    expect(facts[facts.length - 1]).toEqual({ kind: "execution", status: "failed", error: "States.TaskFailed", cause: "gold failed" });
  });

  it("keeps task events attached to their state across calls (new events only)", () => {
    const all = history();
    const memory = new Map<number, string>();
    const first = interpretHistory(all.slice(0, 9), memory);
    const rest = interpretHistory(all.slice(9), memory);
    expect(first.some((f) => f.kind === "emr-job")).toBe(false);
    expect(rest.find((f) => f.kind === "emr-job")).toMatchObject({ stateName: STEP.silverJob, jobRunId: "jr-silver" });
  });

  it("never carries a failure cause into progress details (it may quote request data)", () => {
    const failed = interpretHistory(history()).find((f) => f.kind === "state" && f.status === "failed");
    expect(JSON.stringify(failed)).not.toContain("job failed");
  });

  it("counts one billed transition per state entered", () => {
    expect(countStateTransitions(history())).toBe(5);
  });

  it("names Spark steps after their job", () => {
    expect(sparkStepOf(STEP.silverJob)).toBe("silver");
    expect(sparkStepOf(STEP.maintenance)).toBe("maintenance");
    expect(sparkStepOf(STEP.fanOut)).toBe(STEP.fanOut);
  });
});
