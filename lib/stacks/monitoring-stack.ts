// Monitoring: every alarm of the pipeline, to one KMS-encrypted SNS topic, and a dashboard.
// Each alarm's description names its runbook section (docs/runbooks.md), where an operator finds
// what it means, what to check and how to recover.
import { CfnOutput, Duration, Stack, type StackProps } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type * as sfn from "aws-cdk-lib/aws-stepfunctions";
import type { Construct } from "constructs";
import type { PipelineConfig } from "../../config/schema";
import { EXTRACTION_THROUGHPUT_METRIC } from "../core/custom-metrics";
import { exportName, type StackOutputKey } from "../core/stack-outputs";
import { EMR_START_JOB_RUN_SYNC } from "../core/state-machine-definition";

/** Every kind of alarm, with its runbook section (docs/runbooks.md#<anchor>). */
export const ALARM_KINDS = {
  LambdaErrors: "lambda-errors",
  LambdaThrottles: "lambda-throttles",
  LambdaP95Duration: "lambda-p95-duration",
  QueueOldestMessageAge: "queue-oldest-message-age",
  DeadLetterMessages: "dead-letter-messages",
  RunsFailed: "runs-failed",
  RunsTimedOut: "runs-timed-out",
  RunDurationAnomaly: "run-duration-anomaly",
  SparkJobsFailed: "spark-jobs-failed",
  SparkJobDuration: "spark-job-duration",
  ExtractionThroughputAnomaly: "extraction-throughput-anomaly",
  AthenaBytesScanned: "athena-bytes-scanned",
} as const;
export type AlarmKind = keyof typeof ALARM_KINDS;

export interface MonitoringStackProps extends StackProps {
  readonly config: PipelineConfig;
  readonly key: kms.IKey;
  /** Every extractor function, by name (DownloadFile, BulkKickOff, ...). */
  readonly functions: Record<string, lambda.IFunction>;
  /** Work queues by name (download, search) and their dead-letter queues. */
  readonly queues: Record<string, sqs.IQueue>;
  readonly deadLetterQueues: Record<string, sqs.IQueue>;
  readonly stateMachine: sfn.IStateMachine;
  readonly emrApplicationId: string;
  readonly emrApplicationName: string;
  readonly athenaWorkGroup: string;
}

/**
 * Dimensions of AWS/EMRServerless application metrics: EMR 7.10+ publishes them with the
 * application name as well (and stops updating the id-only ones).
 */
export function emrMetricDimensions(releaseLabel: string, applicationId: string, applicationName: string): Record<string, string> {
  const m = /^emr-(\d+)\.(\d+)\./.exec(releaseLabel);
  const newDims = m !== null && (Number(m[1]) > 7 || (Number(m[1]) === 7 && Number(m[2]) >= 10));
  return newDims ? { ApplicationId: applicationId, ApplicationName: applicationName } : { ApplicationId: applicationId };
}

export class MonitoringStack extends Stack {
  readonly topic: sns.Topic;
  readonly alarms: { kind: AlarmKind; alarm: cloudwatch.Alarm }[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringStackProps) {
    super(scope, id, props);
    const { config } = props;
    const m = config.monitoring;
    const prefix = `fhir-lakehouse-${config.name}`;

    this.topic = new sns.Topic(this, "Alarms", {
      displayName: `FHIR lakehouse ${config.name}: alarms`,
      masterKey: props.key,
      enforceSSL: true,
    });
    if (m.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(m.alarmEmail));
    const action = new actions.SnsAction(this.topic);

    const add = (kind: AlarmKind, alarm: cloudwatch.Alarm) => {
      alarm.addAlarmAction(action);
      this.alarms.push({ kind, alarm });
      return alarm;
    };
    const describe = (kind: AlarmKind, what: string) => `${what} Runbook: docs/runbooks.md#${ALARM_KINDS[kind]}`;
    const threshold = (
      kind: AlarmKind,
      subject: string,
      metric: cloudwatch.IMetric,
      opts: Partial<cloudwatch.CreateAlarmOptions> & { threshold: number; what: string },
    ) =>
      add(
        kind,
        new cloudwatch.Alarm(this, `${kind}${subject}`, {
          alarmName: `${prefix}-${ALARM_KINDS[kind]}${subject ? `-${subject}` : ""}`,
          alarmDescription: describe(kind, opts.what),
          metric,
          threshold: opts.threshold,
          evaluationPeriods: opts.evaluationPeriods ?? 1,
          comparisonOperator: opts.comparisonOperator ?? cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: opts.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    const anomaly = (kind: AlarmKind, metric: cloudwatch.IMetric, comparisonOperator: cloudwatch.ComparisonOperator, what: string) =>
      add(
        kind,
        new cloudwatch.AnomalyDetectionAlarm(this, kind, {
          alarmName: `${prefix}-${ALARM_KINDS[kind]}`,
          alarmDescription: describe(kind, what),
          metric,
          stdDevs: 2,
          comparisonOperator,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );

    // --- Lambda ---------------------------------------------------------------------------------
    const fiveMin = Duration.minutes(5);
    for (const [name, fn] of Object.entries(props.functions)) {
      threshold("LambdaErrors", name, fn.metricErrors({ period: fiveMin, statistic: "Sum" }), {
        threshold: 1,
        what: `${name} returned errors.`,
      });
      threshold("LambdaThrottles", name, fn.metricThrottles({ period: fiveMin, statistic: "Sum" }), {
        threshold: 1,
        what: `${name} was throttled.`,
      });
      threshold("LambdaP95Duration", name, fn.metricDuration({ period: fiveMin, statistic: "p95" }), {
        threshold: m.lambdaP95DurationMs,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        what: `${name}'s p95 duration is above ${m.lambdaP95DurationMs} ms.`,
      });
    }

    // --- SQS ------------------------------------------------------------------------------------
    for (const [name, q] of Object.entries(props.queues)) {
      threshold("QueueOldestMessageAge", name, q.metricApproximateAgeOfOldestMessage({ period: fiveMin, statistic: "Maximum" }), {
        threshold: m.queueOldestMessageAgeSeconds,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        what: `The oldest ${name} work unit has waited more than ${m.queueOldestMessageAgeSeconds} s.`,
      });
    }
    for (const [name, q] of Object.entries(props.deadLetterQueues)) {
      threshold("DeadLetterMessages", name, q.metricApproximateNumberOfMessagesVisible({ period: fiveMin, statistic: "Maximum" }), {
        threshold: 1,
        what: `${name} work units failed after retries and are in the dead-letter queue.`,
      });
    }

    // --- The state machine ---------------------------------------------------------------------------
    const sm = props.stateMachine;
    threshold("RunsFailed", "", sm.metricFailed({ period: fiveMin, statistic: "Sum" }), { threshold: 1, what: "A pipeline run failed." });
    threshold("RunsTimedOut", "", sm.metricTimedOut({ period: fiveMin, statistic: "Sum" }), {
      threshold: 1,
      what: "A pipeline run timed out.",
    });
    anomaly(
      "RunDurationAnomaly",
      sm.metricTime({ period: Duration.hours(1), statistic: "Average" }),
      cloudwatch.ComparisonOperator.GREATER_THAN_UPPER_THRESHOLD,
      "A pipeline run took longer than its anomaly-detection band.",
    );

    // --- EMR Serverless ----------------------------------------------------------------------------
    const emrDims = emrMetricDimensions(config.processing.releaseLabel, props.emrApplicationId, props.emrApplicationName);
    threshold(
      "SparkJobsFailed",
      "",
      new cloudwatch.Metric({
        namespace: "AWS/EMRServerless",
        metricName: "FailedJobs",
        dimensionsMap: emrDims,
        period: fiveMin,
        statistic: "Sum",
      }),
      { threshold: 1, what: "A Spark job (silver, gold or maintenance) failed on EMR Serverless." },
    );
    // A job's run time as Step Functions measures the .sync integration (EMR has no per-job duration metric).
    threshold(
      "SparkJobDuration",
      "",
      new cloudwatch.Metric({
        namespace: "AWS/States",
        metricName: "ServiceIntegrationRunTime",
        dimensionsMap: { ServiceIntegrationResourceArn: EMR_START_JOB_RUN_SYNC },
        period: fiveMin,
        statistic: "Maximum",
      }),
      {
        threshold: m.emrJobMaxDurationMinutes * 60_000,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        what: `A Spark job ran longer than ${m.emrJobMaxDurationMinutes} minutes.`,
      },
    );

    // --- Extraction throughput (custom metric, EMF from the workers) ------------------------------------
    const throughput = new cloudwatch.Metric({
      namespace: EXTRACTION_THROUGHPUT_METRIC.namespace,
      metricName: EXTRACTION_THROUGHPUT_METRIC.metricName,
      dimensionsMap: { ...EXTRACTION_THROUGHPUT_METRIC.dimensions },
      period: fiveMin,
      statistic: "Average",
    });
    anomaly(
      "ExtractionThroughputAnomaly",
      throughput,
      cloudwatch.ComparisonOperator.LESS_THAN_LOWER_THRESHOLD,
      "Extracted resources per second fell below its anomaly-detection band.",
    );

    // --- Athena --------------------------------------------------------------------------------
    const scanned = new cloudwatch.Metric({
      namespace: "AWS/Athena",
      metricName: "ProcessedBytes",
      dimensionsMap: { WorkGroup: props.athenaWorkGroup },
      period: Duration.hours(1),
      statistic: "Sum",
    });
    threshold("AthenaBytesScanned", "", scanned, {
      threshold: m.athenaBytesScannedAlarm,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      what: `Athena queries scanned more than ${m.athenaBytesScannedAlarm} bytes in an hour.`,
    });

    // --- Dashboard -----------------------------------------------------------------------------
    const fns = Object.entries(props.functions);
    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      dashboardName: `${prefix}-pipeline`,
      widgets: [
        [new cloudwatch.AlarmStatusWidget({ title: "Alarms", alarms: this.alarms.map((a) => a.alarm), width: 24, height: 6 })],
        [
          new cloudwatch.GraphWidget({
            title: "Runs",
            left: [
              sm.metricSucceeded({ statistic: "Sum" }),
              sm.metricFailed({ statistic: "Sum" }),
              sm.metricTimedOut({ statistic: "Sum" }),
            ],
            right: [sm.metricTime({ statistic: "Average" })],
            width: 12,
          }),
          new cloudwatch.GraphWidget({ title: "Extracted resources/s", left: [throughput], width: 12 }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: "Lambda errors",
            left: fns.map(([n, f]) => f.metricErrors({ label: n, statistic: "Sum" })),
            width: 8,
          }),
          new cloudwatch.GraphWidget({
            title: "Lambda throttles",
            left: fns.map(([n, f]) => f.metricThrottles({ label: n, statistic: "Sum" })),
            width: 8,
          }),
          new cloudwatch.GraphWidget({
            title: "Lambda p95 duration",
            left: fns.map(([n, f]) => f.metricDuration({ label: n, statistic: "p95" })),
            width: 8,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: "Queues: oldest message (s) and depth",
            left: Object.entries(props.queues).map(([n, q]) =>
              q.metricApproximateAgeOfOldestMessage({ label: `${n} oldest`, statistic: "Maximum" }),
            ),
            right: Object.entries(props.queues).map(([n, q]) =>
              q.metricApproximateNumberOfMessagesVisible({ label: `${n} visible`, statistic: "Maximum" }),
            ),
            width: 12,
          }),
          new cloudwatch.GraphWidget({
            title: "Dead-letter queues",
            left: Object.entries(props.deadLetterQueues).map(([n, q]) =>
              q.metricApproximateNumberOfMessagesVisible({ label: n, statistic: "Maximum" }),
            ),
            width: 12,
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: "Spark jobs",
            left: ["SubmittedJobs", "SuccessJobs", "FailedJobs"].map(
              (name) =>
                new cloudwatch.Metric({ namespace: "AWS/EMRServerless", metricName: name, dimensionsMap: emrDims, statistic: "Sum" }),
            ),
            width: 12,
          }),
          new cloudwatch.GraphWidget({ title: "Athena bytes scanned", left: [scanned], width: 12 }),
        ],
      ],
    });

    const out = (k: StackOutputKey, value: string, description: string) =>
      new CfnOutput(this, k, { value, description, exportName: exportName(config.name, k) });
    out("AlarmTopicArn", this.topic.topicArn, "SNS topic every alarm notifies");
    out("DashboardName", this.dashboard.dashboardName, "CloudWatch dashboard of the pipeline");
  }
}
