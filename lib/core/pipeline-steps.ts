// The input and output of every Task in the pipeline's state machine: the one contract that the
// Lambda handlers (cloud) and the local step implementations (aws-local-stepfunctions overrides,
// keyed by state name) both implement. The control flow itself lives only in
// lib/core/state-machine-definition.ts.
//
// Data layout of the execution state as it moves through the machine:
//   { run, lake: LakeLocations }              after StartRun
//   { run, groups: FanOutOutput[] }           after ExtractGroups (one item per Epic group)
//   { ..., drain: DrainStatus }               after CheckDrained
//   { ..., silver, gold, maintenance }        after the Spark jobs (their SparkJobOutput)
//   { ..., metrics: PublishMetricsOutput }    after PublishMetrics
//   { ..., error: StepError }                 on any failure, then NotifyFailure -> RunFailed
import type { FhirResourceType } from "../../config/schema";

/** Stable state names: local overrides and CloudWatch/console views key on them. */
export const STEP = {
  chooseMode: "ChooseMode",
  defaultMode: "DefaultMode",
  invalidInput: "InvalidInput",
  startRun: "StartRun",
  extractGroups: "ExtractGroups",
  bulkOrSearch: "BulkOrSearch",
  bulkKickOff: "BulkKickOff",
  waitForExport: "WaitForExport",
  pollBulkStatus: "PollBulkStatus",
  exportReady: "ExportReady",
  fanOut: "FanOut",
  checkDrained: "CheckDrained",
  drained: "Drained",
  waitForDrain: "WaitForDrain",
  unitsFailed: "UnitsFailed",
  silverJob: "SilverJob",
  goldJob: "GoldJob",
  maintenance: "Maintenance",
  publishMetrics: "PublishMetrics",
  runSucceeded: "RunSucceeded",
  notifyFailure: "NotifyFailure",
  runFailed: "RunFailed",
} as const;
export type StepName = (typeof STEP)[keyof typeof STEP];

/** Task states backed by a Lambda handler in the cloud (lambdas/handlers/<handler>.ts). */
export const LAMBDA_STEPS = {
  BulkKickOff: "bulk-kickoff",
  PollBulkStatus: "bulk-status",
  FanOut: "fan-out",
  CheckDrained: "queue-drained",
  PublishMetrics: "publish-metrics",
} as const;
export type LambdaStepName = keyof typeof LAMBDA_STEPS;

/** Task states backed by an EMR Serverless job (startJobRun.sync) in the cloud. */
export const SPARK_STEPS = { SilverJob: "silver", GoldJob: "gold", Maintenance: "maintenance" } as const;
export type SparkStepName = keyof typeof SPARK_STEPS;
export type SparkJobName = (typeof SPARK_STEPS)[SparkStepName];

/** Every Task state: the keys of `overrides.taskResourceLocalHandlers` for a local run. */
export const TASK_STEPS = [
  ...(Object.keys(LAMBDA_STEPS) as LambdaStepName[]),
  ...(Object.keys(SPARK_STEPS) as SparkStepName[]),
  STEP.notifyFailure,
] as const;
/** Every Wait state: the keys of `overrides.waitTimeOverrides` for a local run. */
export const WAIT_STEPS = [STEP.waitForExport, STEP.waitForDrain] as const;

/**
 * Error names a handler throws (as `error.name`) when retrying cannot help; the state machine
 * does not retry them. Everything else is retried with backoff and jitter.
 */
export const NON_RETRYABLE_ERRORS = [
  "EpicRequestRejected", // 4xx other than 401/408/429, e.g. "The Client requested this Group too recently"
  "BulkExportFailed", // the export job ended in error at Epic
  "ConfigurationError", // missing secret, bad URL, unknown group
] as const;

// ---------------------------------------------------------------------------------------------
// Execution input and the run context.

/** What starts a run (the schedule, `fhir-pipeline run`, or a local run). Every field optional. */
export interface RunInput {
  /** Defaults to config.extraction.mode (baked into the definition's DefaultMode state). */
  mode?: "bulk" | "search";
  /** Only the resource types listed (default: config.extraction.resourceTypes). */
  resourceTypes?: FhirResourceType[];
  /** Explicit `_since` (servers that support it; Epic does not). Default: from the last complete manifest. */
  since?: string;
}

/**
 * Built by the StartRun state. `runId` is the execution's name ($$.Execution.Name): the CLI names
 * executions after the run id; a local run passes it in the context object (see localContext).
 */
export interface RunContext {
  runId: string;
  /** ISO 8601, $$.Execution.StartTime. */
  startedAt: string;
  mode: "bulk" | "search";
  /** config.epic.groupIds: one ExtractGroups iteration per group. */
  groupIds: string[];
  /** The execution input, untouched (optional fields are read from here by the handlers). */
  request: RunInput;
}

/** The context object a local run gives aws-local-stepfunctions (the cloud provides its own). */
export function localContext(runId: string, input: RunInput, startedAt = new Date().toISOString()) {
  return { Execution: { Id: `local:${runId}`, Name: runId, Input: input, StartTime: startedAt } };
}

// ---------------------------------------------------------------------------------------------
// Extraction, per group (inside the ExtractGroups Map).

/** The state of one group's iteration: the Map's ItemSelector builds it. */
export interface GroupState {
  run: RunContext;
  groupId: string;
  /** Present in bulk mode once BulkKickOff has run. */
  export?: BulkExportState;
}

/** BulkKickOff input (Parameters). */
export interface BulkKickOffInput {
  run: RunContext;
  groupId: string;
}

/**
 * Output of BulkKickOff and of PollBulkStatus (stored at $.export; PollBulkStatus gets it back
 * each time round the loop, so it must echo statusUrl and kickedOffAt).
 */
export interface BulkExportState {
  /** The Content-Location of the kick-off: the export job's status URL. */
  statusUrl: string;
  kickedOffAt: string;
  state: "in-progress" | "complete";
  /** Seconds until the next poll, from Retry-After (seconds or HTTP date), clamped to 1..3600. */
  retryAfterSeconds: number;
  /** X-Progress as sent by the server, if any. */
  progress?: string;
  /** When complete: where the bulk manifest was stored (e.g. {bronze}/_runs/{run}/bulk-{group}.json). */
  manifestUri?: string;
  /** When complete: number of output files in the manifest. */
  outputFiles?: number;
  transactionTime?: string;
}

/** PollBulkStatus input (Parameters). */
export interface PollBulkStatusInput {
  run: RunContext;
  groupId: string;
  export: BulkExportState;
}

/** FanOut input: the whole group state (export absent in search mode). */
export type FanOutInput = GroupState;

/** FanOut output: becomes the group's item in $.groups. */
export interface FanOutOutput {
  groupId: string;
  mode: "bulk" | "search";
  /** Work units enqueued: output files (bulk) or patient batches (search). */
  unitsEnqueued: number;
}

// ---------------------------------------------------------------------------------------------
// Waiting for the workers.

/** CheckDrained input (Parameters). */
export interface CheckDrainedInput {
  run: RunContext;
  groups: FanOutOutput[];
}

/** CheckDrained output ($.drain). */
export interface DrainStatus {
  /** pending: keep waiting; drained: every unit done; failed: some unit ended in a DLQ / failed. */
  state: "pending" | "drained" | "failed";
  unitsEnqueued: number;
  unitsDone: number;
  unitsFailed: number;
  /** Seconds until the next check (>= 1). */
  waitSeconds: number;
}

// ---------------------------------------------------------------------------------------------
// Spark jobs.

/**
 * The resolved Parameters a Spark Task receives (the EMR Serverless startJobRun request). A local
 * run reads `JobDriver.SparkSubmit.EntryPointArguments` (see sparkJobArguments) and runs the same
 * job in local Spark with config.processing.localSpark instead of `SparkSubmitParameters`.
 */
export interface SparkJobInput {
  ApplicationId: string;
  ExecutionRoleArn: string;
  Name: string;
  ExecutionTimeoutMinutes: number;
  JobDriver: { SparkSubmit: { EntryPoint: string; EntryPointArguments: string[]; SparkSubmitParameters: string } };
  ConfigurationOverrides?: unknown;
}

/**
 * What a Spark Task returns: in the cloud, the startJobRun.sync result (includes ApplicationId and
 * JobRunId; PublishMetrics calls GetJobRun for billed utilisation). Locally, the local step returns
 * the same two ids plus whatever it measured.
 */
export interface SparkJobOutput {
  ApplicationId?: string;
  JobRunId?: string;
  [key: string]: unknown;
}

/** Where each layer lives: s3://bucket/layer in the cloud, file:///workdir/lake/layer locally. */
export interface LakeLocations {
  bronze: string;
  silver: string;
  gold: string;
  metrics: string;
}

/** The Iceberg catalog the jobs use: AWS Glue in the cloud, the work dir's SQLite catalog locally. */
export type CatalogKind = "glue" | "local";

/**
 * The command line of a Spark job (EntryPointArguments). The entry point dispatches on the first
 * argument: `<job> --run-id ID --bronze URI --silver URI --gold URI --metrics URI --catalog KIND`.
 */
export function sparkJobArguments(job: SparkJobName, runId: string, lake: LakeLocations, catalog: CatalogKind): string[] {
  return [
    job,
    "--run-id",
    runId,
    "--bronze",
    lake.bronze,
    "--silver",
    lake.silver,
    "--gold",
    lake.gold,
    "--metrics",
    lake.metrics,
    "--catalog",
    catalog,
  ];
}

// ---------------------------------------------------------------------------------------------
// The end of a run.

/** PublishMetrics input (Parameters). */
export interface PublishMetricsInput {
  run: RunContext;
  groups: FanOutOutput[];
  drain: DrainStatus;
  silver: SparkJobOutput;
  gold: SparkJobOutput;
  maintenance: SparkJobOutput;
}

/** PublishMetrics output ($.metrics). */
export interface PublishMetricsOutput {
  /** Where the run's performance_metrics rows were written. */
  metricsUri: string;
  /** Resources extracted in the run (all types). */
  resources: number;
}

/** What Catch stores at $.error (Step Functions' shape; aws-local-stepfunctions uses the same). */
export interface StepError {
  Error: string;
  Cause: string;
}

/** NotifyFailure input: the SNS Publish request (Subject, Message) with the TopicArn. */
export interface NotifyFailureInput {
  TopicArn: string;
  Subject: string;
  Message: string;
}
