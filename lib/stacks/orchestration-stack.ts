// Orchestration: the pipeline's Step Functions state machine — the definition built by
// lib/core/state-machine-definition.ts (the same one local runs execute), bound to this
// deployment's functions, Spark application, lake and notification topic — its role, its logs,
// and the EventBridge Scheduler schedule that starts it.
import { Aws, CfnOutput, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as scheduler from "aws-cdk-lib/aws-scheduler";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { PipelineConfig } from "../../config/schema";
import type { LakeLocations, LambdaStepName, RunInput } from "../core/pipeline-steps";
import { exportName, type StackOutputKey } from "../core/stack-outputs";
import { buildStateMachineDefinition, type AslDefinition, type StateMachineBindings } from "../core/state-machine-definition";
import { acknowledgeInlinePolicy, wildcardResource } from "./nag-acknowledgements";
import { EMR_LOGS_PREFIX } from "./storage-stack";

export interface OrchestrationStackProps extends StackProps {
  readonly config: PipelineConfig;
  readonly key: kms.IKey;
  readonly functions: Record<LambdaStepName, lambda.IFunction>;
  readonly emr: { applicationId: string; applicationArn: string; jobRole: iam.IRole; entryPoint: string; pyFiles: string };
  readonly metricsBucketName: string;
  readonly lake: LakeLocations;
}

/** The rule Step Functions manages to learn when an EMR Serverless job run ends (.sync). */
const EMR_SYNC_RULE = "StepFunctionsGetEventsForEMRServerlessJobRule";

export class OrchestrationStack extends Stack {
  readonly stateMachine: sfn.StateMachine;
  readonly notifications: sns.Topic;
  readonly bindings: StateMachineBindings;
  readonly definition: AslDefinition;
  readonly schedule: scheduler.CfnSchedule;

  constructor(scope: Construct, id: string, props: OrchestrationStackProps) {
    super(scope, id, props);
    const { config, key } = props;

    this.notifications = new sns.Topic(this, "RunNotifications", {
      displayName: `FHIR lakehouse ${config.name}: failed runs`,
      masterKey: key,
      enforceSSL: true,
    });
    if (config.monitoring.alarmEmail) this.notifications.addSubscription(new subscriptions.EmailSubscription(config.monitoring.alarmEmail));

    this.bindings = {
      functionArns: Object.fromEntries(Object.entries(props.functions).map(([k, f]) => [k, f.functionArn])) as Record<
        LambdaStepName,
        string
      >,
      emr: {
        applicationId: props.emr.applicationId,
        executionRoleArn: props.emr.jobRole.roleArn,
        entryPoint: props.emr.entryPoint,
        pyFiles: props.emr.pyFiles,
        logUri: `s3://${props.metricsBucketName}/${EMR_LOGS_PREFIX}/`,
        logEncryptionKeyArn: key.keyArn,
      },
      lake: props.lake,
      catalog: "glue",
      notificationTopicArn: this.notifications.topicArn,
    };
    this.definition = buildStateMachineDefinition(config, this.bindings);

    // --- The role: exactly what the definition calls ------------------------------------------------
    const role = new iam.Role(this, "StateMachineRole", {
      assumedBy: new iam.ServicePrincipal("states.amazonaws.com"),
      description: "Runs the FHIR lakehouse pipeline state machine",
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "InvokeStepFunctions",
        actions: ["lambda:InvokeFunction"],
        resources: Object.values(props.functions).map((f) => f.functionArn),
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ sid: "StartSparkJobs", actions: ["emr-serverless:StartJobRun"], resources: [props.emr.applicationArn] }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "FollowSparkJobs",
        actions: ["emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"],
        resources: [`${props.emr.applicationArn}/jobruns/*`],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "PassJobRole",
        actions: ["iam:PassRole"],
        resources: [props.emr.jobRole.roleArn],
        conditions: { StringEquals: { "iam:PassedToService": "emr-serverless.amazonaws.com" } },
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: "SyncJobCompletionEvents",
        actions: ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
        resources: [`arn:${Aws.PARTITION}:events:${Aws.REGION}:${Aws.ACCOUNT_ID}:rule/${EMR_SYNC_RULE}`],
      }),
    );
    // Explicit actions (grantPublish would add kms:GenerateDataKey* / ReEncrypt* wildcards).
    role.addToPolicy(
      new iam.PolicyStatement({ sid: "NotifyFailures", actions: ["sns:Publish"], resources: [this.notifications.topicArn] }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({ sid: "EncryptNotifications", actions: ["kms:GenerateDataKey", "kms:Decrypt"], resources: [key.keyArn] }),
    );

    const logGroup = new logs.LogGroup(this, "StateMachineLogs", {
      encryptionKey: key,
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.stateMachine = new sfn.StateMachine(this, "Pipeline", {
      stateMachineName: `fhir-lakehouse-${config.name}`,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(this.toJsonString(this.definition)),
      role,
      tracingEnabled: true,
      // Execution data holds ids, counts, URLs and error names only (the steps never return PHI).
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });

    // --- The schedule -----------------------------------------------------------------------------
    const schedulerRole = new iam.Role(this, "SchedulerRole", {
      assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": Aws.ACCOUNT_ID } },
      }),
      description: "Lets EventBridge Scheduler start pipeline runs",
    });
    this.stateMachine.grantStartExecution(schedulerRole);
    const o = config.orchestration;
    const input: RunInput = { mode: config.extraction.mode };
    this.schedule = new scheduler.CfnSchedule(this, "Schedule", {
      name: `fhir-lakehouse-${config.name}-run`,
      description: `Starts the FHIR lakehouse pipeline (${config.name})`,
      scheduleExpression: o.scheduleExpression,
      scheduleExpressionTimezone: o.scheduleTimezone,
      flexibleTimeWindow: { mode: "OFF" },
      state: o.enabled ? "ENABLED" : "DISABLED",
      target: {
        arn: this.stateMachine.stateMachineArn,
        roleArn: schedulerRole.roleArn,
        input: JSON.stringify(input),
        retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
      },
    });

    acknowledgeInlinePolicy(role);
    acknowledgeInlinePolicy(schedulerRole);
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: "AwsSolutions-IAM5",
          reason:
            "Job run ids are generated per run (GetJobRun/CancelJobRun on this application's jobruns/*); log delivery and X-Ray actions, which CDK adds for logging and tracing, have no resource-level permissions.",
          appliesTo: [wildcardResource(".*\\/jobruns\\/\\*"), "Resource::*"],
        },
      ],
      true,
    );

    const out = (k: StackOutputKey, value: string, description: string) =>
      new CfnOutput(this, k, { value, description, exportName: exportName(config.name, k) });
    out("StateMachineArn", this.stateMachine.stateMachineArn, "The pipeline state machine");
    out("RunNotificationsTopicArn", this.notifications.topicArn, "Failed-run notifications");
    out("ScheduleName", this.schedule.name!, "EventBridge Scheduler schedule that starts runs");
  }
}
