// Reads a Step Functions execution history (pure: events in, facts out): which state is running,
// which states ended how, which EMR Serverless job runs a Spark step started, and what the
// CheckDrained step reported about the extraction work units.
import type { HistoryEvent } from "@aws-sdk/client-sfn";
import { SPARK_STEPS, STEP, type DrainStatus, type PublishMetricsOutput } from "../core/pipeline-steps";

export type HistoryFact =
  | { kind: "execution"; status: "started" | "succeeded" | "failed" | "aborted" | "timed-out"; error?: string; cause?: string }
  | { kind: "state"; name: string; status: "entered" | "succeeded" | "failed"; detail?: string }
  | { kind: "emr-job"; stateName: string; step: string; applicationId: string; jobRunId: string }
  | { kind: "drain"; status: DrainStatus }
  | { kind: "published"; metrics: PublishMetricsOutput };

/** States during which extraction runs (the queue depth is worth showing). */
export const EXTRACTION_STATES: ReadonlySet<string> = new Set([
  STEP.extractGroups,
  STEP.bulkOrSearch,
  STEP.bulkKickOff,
  STEP.waitForExport,
  STEP.pollBulkStatus,
  STEP.exportReady,
  STEP.fanOut,
  STEP.checkDrained,
  STEP.drained,
  STEP.waitForDrain,
]);

function parseJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Finds the first value of any of `keys` anywhere in a JSON value (breadth first). */
function findKey(value: unknown, keys: string[]): string | undefined {
  const queue: unknown[] = [value];
  while (queue.length) {
    const v = queue.shift();
    if (!v || typeof v !== "object") continue;
    for (const k of keys) {
      const found = (v as Record<string, unknown>)[k];
      if (typeof found === "string" && found) return found;
    }
    for (const child of Object.values(v as Record<string, unknown>)) if (child && typeof child === "object") queue.push(child);
  }
  return undefined;
}

function isEmrServerless(resourceType: string | undefined): boolean {
  return /emr-?serverless/i.test(resourceType ?? "");
}

/** The Spark job name of a state: SilverJob -> silver; other states keep their own name. */
export function sparkStepOf(stateName: string): string {
  return (SPARK_STEPS as Record<string, string>)[stateName] ?? stateName;
}

/**
 * Interprets history events in order. `stateOfEvent` carries, across calls, which state each
 * event id belongs to (Task events point back to their TaskStateEntered via previousEventId).
 */
export function interpretHistory(events: readonly HistoryEvent[], stateOfEvent: Map<number, string> = new Map()): HistoryFact[] {
  const facts: HistoryFact[] = [];
  const sorted = [...events].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  for (const e of sorted) {
    const type = e.type ?? "";
    const id = e.id ?? 0;
    const entered = e.stateEnteredEventDetails?.name;
    const stateName = entered ?? stateOfEvent.get(e.previousEventId ?? -1) ?? e.stateExitedEventDetails?.name;
    if (stateName) stateOfEvent.set(id, stateName);

    if (type === "ExecutionStarted") facts.push({ kind: "execution", status: "started" });
    else if (type === "ExecutionSucceeded") facts.push({ kind: "execution", status: "succeeded" });
    else if (type === "ExecutionFailed")
      facts.push({
        kind: "execution",
        status: "failed",
        error: e.executionFailedEventDetails?.error,
        cause: e.executionFailedEventDetails?.cause,
      });
    else if (type === "ExecutionAborted")
      facts.push({
        kind: "execution",
        status: "aborted",
        error: e.executionAbortedEventDetails?.error,
        cause: e.executionAbortedEventDetails?.cause,
      });
    else if (type === "ExecutionTimedOut")
      facts.push({
        kind: "execution",
        status: "timed-out",
        error: e.executionTimedOutEventDetails?.error,
        cause: e.executionTimedOutEventDetails?.cause,
      });
    else if (type.endsWith("StateEntered") && entered) facts.push({ kind: "state", name: entered, status: "entered" });
    else if (type.endsWith("StateExited") && e.stateExitedEventDetails?.name) {
      facts.push({ kind: "state", name: e.stateExitedEventDetails.name, status: "succeeded" });
    } else if (type === "TaskFailed" || type === "TaskTimedOut" || type === "TaskStartFailed" || type === "TaskSubmitFailed") {
      const d = e.taskFailedEventDetails ?? e.taskTimedOutEventDetails ?? e.taskStartFailedEventDetails ?? e.taskSubmitFailedEventDetails;
      // Only the error name: causes can quote request data, which stays out of progress output.
      if (stateName) facts.push({ kind: "state", name: stateName, status: "failed", detail: d?.error });
    } else if (type === "TaskSubmitted" || type === "TaskSucceeded") {
      const details = type === "TaskSubmitted" ? e.taskSubmittedEventDetails : e.taskSucceededEventDetails;
      const output = parseJson(details?.output);
      if (isEmrServerless(details?.resourceType)) {
        const jobRunId = findKey(output, ["JobRunId", "jobRunId"]);
        const applicationId = findKey(output, ["ApplicationId", "applicationId"]);
        if (jobRunId && applicationId && stateName) {
          facts.push({ kind: "emr-job", stateName, step: sparkStepOf(stateName), applicationId, jobRunId });
        }
      }
      if (type === "TaskSucceeded" && stateName === STEP.checkDrained && output && typeof output === "object") {
        const drain = output as Partial<DrainStatus>;
        if (typeof drain.unitsEnqueued === "number" && typeof drain.unitsDone === "number")
          facts.push({ kind: "drain", status: drain as DrainStatus });
      }
      if (type === "TaskSucceeded" && stateName === STEP.publishMetrics && output && typeof output === "object") {
        const published = output as Partial<PublishMetricsOutput>;
        if (typeof published.resources === "number") facts.push({ kind: "published", metrics: published as PublishMetricsOutput });
      }
    }
  }
  return facts;
}

/** Standard-workflow state transitions billed for a history: one per state entered. */
export function countStateTransitions(events: readonly HistoryEvent[]): number {
  return events.filter((e) => (e.type ?? "").endsWith("StateEntered")).length;
}
