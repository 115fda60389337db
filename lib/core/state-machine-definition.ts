// The pipeline's control flow, as Amazon States Language: the ONE definition. The orchestration
// stack deploys it to Step Functions with the real ARNs; a local run executes the same definition
// in-process with aws-local-stepfunctions, every Task overridden by its state name (pipeline-steps.ts
// holds each Task's input/output contract). Only features both engines run are used: Task, Choice,
// Wait (SecondsPath), Pass, Map, Succeed, Fail, Retry/Catch, JSONPath and States.Format.
import type { MaintenanceConfig, PipelineConfig } from "../../config/schema";
import { sparkSubmitParameters } from "./spark-conf";
import {
  LAMBDA_STEPS,
  NON_RETRYABLE_ERRORS,
  SPARK_STEPS,
  STEP,
  type CatalogKind,
  type LakeLocations,
  type LambdaStepName,
  type SparkJobName,
  type SparkStepName,
} from "./pipeline-steps";

/** Lambda timeout per step, seconds (the ingestion stack sets them; the Task waits a little longer). */
export const LAMBDA_TIMEOUT_SECONDS: Record<LambdaStepName, number> = {
  BulkKickOff: 60,
  PollBulkStatus: 60,
  FanOut: 300,
  CheckDrained: 300, // when drained it writes the run manifest from every unit record
  PublishMetrics: 300,
};

/** The optimized EMR Serverless integration, waiting for the job to finish. */
export const EMR_START_JOB_RUN_SYNC = "arn:aws:states:::emr-serverless:startJobRun.sync";
export const SNS_PUBLISH = "arn:aws:states:::sns:publish";

/** Everything deployment-specific the definition refers to. */
export interface StateMachineBindings {
  functionArns: Record<LambdaStepName, string>;
  emr: {
    applicationId: string;
    executionRoleArn: string;
    /** s3:// URI of the Python entry point file. */
    entryPoint: string;
    /** s3:// URI of the zipped spark-jobs package (spark.submit.pyFiles). */
    pyFiles: string;
    /** s3:// prefix for Spark driver/executor logs. */
    logUri: string;
    /** KMS key that encrypts the logs. */
    logEncryptionKeyArn: string;
  };
  lake: LakeLocations;
  catalog: CatalogKind;
  notificationTopicArn: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export interface AslDefinition {
  Comment: string;
  StartAt: string;
  TimeoutSeconds: number;
  States: Record<string, Record<string, Json>>;
}

const LAMBDA_TRANSIENT = [
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.TooManyRequestsException",
  "Lambda.ClientExecutionTimeoutException",
];

/** Retries of a Lambda step: never the non-retryable errors, fast for Lambda faults, slower for the handler's. */
function lambdaRetry(): Json[] {
  return [
    { ErrorEquals: [...NON_RETRYABLE_ERRORS], MaxAttempts: 0 },
    { ErrorEquals: LAMBDA_TRANSIENT, IntervalSeconds: 2, MaxAttempts: 6, BackoffRate: 2, MaxDelaySeconds: 60, JitterStrategy: "FULL" },
    {
      ErrorEquals: ["States.TaskFailed", "States.Timeout"],
      IntervalSeconds: 10,
      MaxAttempts: 3,
      BackoffRate: 2,
      MaxDelaySeconds: 300,
      JitterStrategy: "FULL",
    },
  ];
}

/** Retries of a Spark job: API throttling often, a failed job once (the jobs are idempotent: MERGE). */
function sparkRetry(): Json[] {
  return [
    {
      ErrorEquals: [
        "EMRServerless.ThrottlingException",
        "EMRServerless.InternalServerException",
        "EMRServerless.ServiceQuotaExceededException",
      ],
      IntervalSeconds: 30,
      MaxAttempts: 5,
      BackoffRate: 2,
      MaxDelaySeconds: 600,
      JitterStrategy: "FULL",
    },
    { ErrorEquals: ["States.TaskFailed"], IntervalSeconds: 60, MaxAttempts: 1, BackoffRate: 2 },
  ];
}

const CATCH_ALL: Json[] = [{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: STEP.notifyFailure }];

function lambdaTask(b: StateMachineBindings, step: LambdaStepName, fields: Record<string, Json>, catchAll = true): Record<string, Json> {
  return {
    Type: "Task",
    Comment: `lambdas/handlers/${LAMBDA_STEPS[step]}.ts`,
    Resource: b.functionArns[step],
    TimeoutSeconds: LAMBDA_TIMEOUT_SECONDS[step] + 30,
    ...fields,
    Retry: lambdaRetry(),
    ...(catchAll ? { Catch: CATCH_ALL } : {}),
  };
}

/**
 * The Maintenance job's policy flags (spark-jobs maintenance_job.py), appended to its
 * EntryPointArguments: when each Iceberg procedure is due comes from config `maintenance`.
 */
export function maintenanceJobArguments(m: MaintenanceConfig): string[] {
  return [
    "--compact-min-small-files",
    String(m.compactMinSmallFiles),
    "--compact-small-files-share",
    String(m.compactSmallFilesShare),
    "--compact-min-delete-files",
    String(m.compactMinDeleteFiles),
    "--compact-delete-files-per-data-file",
    String(m.compactDeleteFilesPerDataFile),
    "--small-file-bytes",
    String(m.smallFileBytes),
    "--rewrite-manifests-min",
    String(m.rewriteManifestsMin),
    "--older-than",
    `${m.expireSnapshotsOlderThanDays}d`,
    "--retain-last",
    String(m.retainLastSnapshots),
    "--orphan-interval",
    `${m.orphanFilesIntervalDays}d`,
    "--orphan-older-than",
    `${m.orphanFilesOlderThanDays}d`,
  ];
}

function sparkTask(config: PipelineConfig, b: StateMachineBindings, step: SparkStepName, next: string): Record<string, Json> {
  const job: SparkJobName = SPARK_STEPS[step];
  const timeoutMinutes = config.processing.jobTimeoutMinutes;
  // Locations come from $.lake (set by StartRun) as paths, so no URI is ever quoted inside an
  // intrinsic function; only the job name, flags and catalog kind are literals.
  const args = [`'${job}'`, "'--run-id'", "$.run.runId"];
  for (const layer of ["bronze", "silver", "gold", "metrics"] as const) args.push(`'--${layer}'`, `$.lake.${layer}`);
  args.push("'--catalog'", `'${b.catalog}'`);
  if (step === "Maintenance") args.push(...maintenanceJobArguments(config.maintenance).map((a) => `'${a}'`));
  return {
    Type: "Task",
    Comment: `spark-jobs: ${job} (EMR Serverless, waits for the job)`,
    Resource: EMR_START_JOB_RUN_SYNC,
    Parameters: {
      ApplicationId: b.emr.applicationId,
      ExecutionRoleArn: b.emr.executionRoleArn,
      "Name.$": `States.Format('${job}-{}', $.run.runId)`,
      ExecutionTimeoutMinutes: timeoutMinutes,
      JobDriver: {
        SparkSubmit: {
          EntryPoint: b.emr.entryPoint,
          "EntryPointArguments.$": `States.Array(${args.join(", ")})`,
          SparkSubmitParameters: sparkSubmitParameters(config.processing.spark, {
            warehouse: b.lake.silver,
            pyFiles: b.emr.pyFiles,
            extraConf: { "spark.app.name": `fhir-lakehouse-${job}` },
          }),
        },
      },
      ConfigurationOverrides: {
        MonitoringConfiguration: {
          S3MonitoringConfiguration: { LogUri: b.emr.logUri, EncryptionKeyArn: b.emr.logEncryptionKeyArn },
        },
      },
    },
    ResultPath: `$.${job}`,
    // The Task outlives the job's own timeout a little, so EMR's cancellation is what ends it.
    TimeoutSeconds: timeoutMinutes * 60 + 600,
    Retry: sparkRetry(),
    Catch: CATCH_ALL,
    Next: next,
  };
}

/** The pipeline's state machine for one config and one set of bindings (pure; no CDK). */
export function buildStateMachineDefinition(config: PipelineConfig, b: StateMachineBindings): AslDefinition {
  const defaultMode = config.extraction.mode;
  const groupStates: Record<string, Record<string, Json>> = {
    [STEP.bulkOrSearch]: {
      Type: "Choice",
      Comment: "Search mode crawls patients per group; bulk mode exports the group",
      Choices: [{ Variable: "$.run.mode", StringEquals: "search", Next: STEP.fanOut }],
      Default: STEP.bulkKickOff,
    },
    [STEP.bulkKickOff]: lambdaTask(
      b,
      "BulkKickOff",
      { Parameters: { "run.$": "$.run", "groupId.$": "$.groupId" }, ResultPath: "$.export", Next: STEP.waitForExport },
      false,
    ),
    [STEP.waitForExport]: {
      Type: "Wait",
      Comment: "As long as the server's Retry-After says",
      SecondsPath: "$.export.retryAfterSeconds",
      Next: STEP.pollBulkStatus,
    },
    [STEP.pollBulkStatus]: lambdaTask(
      b,
      "PollBulkStatus",
      {
        Parameters: { "run.$": "$.run", "groupId.$": "$.groupId", "export.$": "$.export" },
        ResultPath: "$.export",
        Next: STEP.exportReady,
      },
      false,
    ),
    [STEP.exportReady]: {
      Type: "Choice",
      Choices: [{ Variable: "$.export.state", StringEquals: "complete", Next: STEP.fanOut }],
      Default: STEP.waitForExport,
    },
    [STEP.fanOut]: lambdaTask(b, "FanOut", { End: true }, false),
  };

  const states: Record<string, Record<string, Json>> = {
    [STEP.chooseMode]: {
      Type: "Choice",
      Comment: "Validate the requested mode; no mode means the config's",
      Choices: [
        // `Not IsPresent: true` rather than `IsPresent: false`: aws-local-stepfunctions 3.0 never matches the latter.
        { Not: { Variable: "$.mode", IsPresent: true }, Next: STEP.defaultMode },
        {
          Or: [
            { Variable: "$.mode", StringEquals: "bulk" },
            { Variable: "$.mode", StringEquals: "search" },
          ],
          Next: STEP.startRun,
        },
      ],
      Default: STEP.invalidInput,
    },
    [STEP.defaultMode]: { Type: "Pass", Result: defaultMode, ResultPath: "$.mode", Next: STEP.startRun },
    [STEP.invalidInput]: {
      Type: "Pass",
      Parameters: { Error: "InvalidInput", Cause: 'mode must be "bulk" or "search"' },
      ResultPath: "$.error",
      Next: STEP.notifyFailure,
    },
    [STEP.startRun]: {
      Type: "Pass",
      Comment: "The run id is the execution name; the lake locations are this deployment's",
      Parameters: {
        run: {
          "runId.$": "$$.Execution.Name",
          "startedAt.$": "$$.Execution.StartTime",
          "mode.$": "$.mode",
          groupIds: [...config.epic.groupIds],
          "request.$": "$",
        },
        lake: { ...b.lake },
      },
      Next: STEP.extractGroups,
    },
    [STEP.extractGroups]: {
      Type: "Map",
      Comment: "Per Epic group: bulk kick-off, poll, fan the files out (or fan patient batches out)",
      ItemsPath: "$.run.groupIds",
      ItemSelector: { "run.$": "$.run", "groupId.$": "$$.Map.Item.Value" },
      MaxConcurrency: config.orchestration.maxParallelGroups,
      ItemProcessor: { ProcessorConfig: { Mode: "INLINE" }, StartAt: STEP.bulkOrSearch, States: groupStates },
      ResultPath: "$.groups",
      Catch: CATCH_ALL,
      Next: STEP.checkDrained,
    },
    [STEP.checkDrained]: lambdaTask(b, "CheckDrained", {
      Parameters: { "run.$": "$.run", "groups.$": "$.groups" },
      ResultPath: "$.drain",
      Next: STEP.drained,
    }),
    [STEP.drained]: {
      Type: "Choice",
      Comment: "Every unit enqueued is done, or some ended in a dead-letter queue",
      Choices: [
        { Variable: "$.drain.state", StringEquals: "drained", Next: STEP.silverJob },
        { Variable: "$.drain.state", StringEquals: "failed", Next: STEP.unitsFailed },
      ],
      Default: STEP.waitForDrain,
    },
    [STEP.waitForDrain]: { Type: "Wait", SecondsPath: "$.drain.waitSeconds", Next: STEP.checkDrained },
    [STEP.unitsFailed]: {
      Type: "Pass",
      Parameters: {
        Error: "UnitsFailed",
        "Cause.$":
          "States.Format('{} of {} work units failed after retries and are in a dead-letter queue', $.drain.unitsFailed, $.drain.unitsEnqueued)",
      },
      ResultPath: "$.error",
      Next: STEP.notifyFailure,
    },
    [STEP.silverJob]: sparkTask(config, b, "SilverJob", STEP.goldJob),
    [STEP.goldJob]: sparkTask(config, b, "GoldJob", STEP.maintenance),
    [STEP.maintenance]: sparkTask(config, b, "Maintenance", STEP.publishMetrics),
    [STEP.publishMetrics]: lambdaTask(b, "PublishMetrics", {
      Parameters: {
        "run.$": "$.run",
        "groups.$": "$.groups",
        "drain.$": "$.drain",
        "silver.$": "$.silver",
        "gold.$": "$.gold",
        "maintenance.$": "$.maintenance",
      },
      ResultPath: "$.metrics",
      Next: STEP.runSucceeded,
    }),
    [STEP.runSucceeded]: { Type: "Succeed" },
    [STEP.notifyFailure]: {
      Type: "Task",
      Comment: "Every failure path ends here: tell the operators (ids and error names only, no PHI)",
      Resource: SNS_PUBLISH,
      Parameters: {
        TopicArn: b.notificationTopicArn,
        Subject: `FHIR lakehouse run failed (${config.name})`,
        "Message.$": "States.Format('FHIR lakehouse run {} failed. {}: {}', $$.Execution.Name, $.error.Error, $.error.Cause)",
      },
      ResultPath: null,
      TimeoutSeconds: 60,
      Retry: [{ ErrorEquals: ["States.ALL"], IntervalSeconds: 5, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: "FULL" }],
      Catch: [{ ErrorEquals: ["States.ALL"], ResultPath: "$.notifyError", Next: STEP.runFailed }],
      Next: STEP.runFailed,
    },
    [STEP.runFailed]: { Type: "Fail", ErrorPath: "$.error.Error", CausePath: "$.error.Cause" },
  };

  return {
    Comment: `FHIR lakehouse pipeline (${config.name}): extract from Epic, bronze -> silver -> gold, maintenance, metrics`,
    StartAt: STEP.chooseMode,
    TimeoutSeconds: config.orchestration.runTimeoutHours * 3600,
    States: states,
  };
}

const PLACEHOLDER_ACCOUNT = "000000000000";
const PLACEHOLDER_REGION = "us-east-1";

/**
 * Bindings with placeholder ARNs, for rendering the definition without a deployment. A local run
 * passes its own lake locations and `catalog: "local"`; every Task is overridden locally, so the
 * ARNs are never called.
 */
export function placeholderBindings(config: PipelineConfig, overrides: Partial<StateMachineBindings> = {}): StateMachineBindings {
  const prefix = `fhir-lakehouse-${config.name}`;
  const fn = (step: LambdaStepName) =>
    `arn:aws:lambda:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:function:${prefix}-${LAMBDA_STEPS[step]}`;
  return {
    functionArns: {
      BulkKickOff: fn("BulkKickOff"),
      PollBulkStatus: fn("PollBulkStatus"),
      FanOut: fn("FanOut"),
      CheckDrained: fn("CheckDrained"),
      PublishMetrics: fn("PublishMetrics"),
    },
    emr: {
      applicationId: "00placeholder00",
      executionRoleArn: `arn:aws:iam::${PLACEHOLDER_ACCOUNT}:role/${prefix}-spark-job`,
      entryPoint: `s3://${prefix}-assets/spark-jobs/main.py`,
      pyFiles: `s3://${prefix}-assets/spark-jobs/package.zip`,
      logUri: `s3://${prefix}-metrics/emr-logs/`,
      logEncryptionKeyArn: `arn:aws:kms:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:key/00000000-0000-0000-0000-000000000000`,
    },
    lake: {
      bronze: `s3://${prefix}-bronze/bronze`,
      silver: `s3://${prefix}-silver/silver`,
      gold: `s3://${prefix}-gold/gold`,
      metrics: `s3://${prefix}-metrics/metrics`,
    },
    catalog: "glue",
    notificationTopicArn: `arn:aws:sns:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:${prefix}-run-notifications`,
    ...overrides,
  };
}

/**
 * The state machine definition for a config, without deploying: the same builder the
 * orchestration stack deploys, with placeholder ARNs (and the caller's lake locations/catalog).
 * test/infra proves the synthesized template's definition equals this builder's output.
 */
export function renderStateMachineDefinition(config: PipelineConfig, overrides: Partial<StateMachineBindings> = {}): AslDefinition {
  return buildStateMachineDefinition(config, placeholderBindings(config, overrides));
}
