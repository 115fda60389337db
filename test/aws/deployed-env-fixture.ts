// A deployed environment inside moto: the buckets, queues, EMR Serverless application, Athena
// workgroup, alarm topic and a tiny state machine, plus the CloudFormation stacks of the
// environment whose outputs name them (read back by lib/aws/environment.ts, as after `cdk deploy`).
import { CreateWorkGroupCommand } from "@aws-sdk/client-athena";
import { CreateStackCommand } from "@aws-sdk/client-cloudformation";
import { PutMetricAlarmCommand, SetAlarmStateCommand } from "@aws-sdk/client-cloudwatch";
import { CreateApplicationCommand } from "@aws-sdk/client-emr-serverless";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateStateMachineCommand } from "@aws-sdk/client-sfn";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { AwsClients } from "../../lib/aws/clients";
import { OUTPUT_KEYS, stackNamesFor } from "../../lib/aws/stack-output-keys";
import { STEP } from "../../lib/core/pipeline-steps";
import type { MotoServer } from "./moto-server";

export const ENV_NAME = "dev";
export const ACCOUNT = "123456789012";

export interface Fixture {
  clients: AwsClients;
  stateMachineArn: string;
  applicationId: string;
  workQueueUrl: string;
  alarmTopicArn: string;
  workgroup: string;
  buckets: { bronze: string; silver: string; gold: string; metrics: string; athenaResults: string };
}

/** One `aws-sdk` Task that starts an EMR Serverless job run in moto (which finishes it at once). */
function sparkTask(applicationId: string, job: string, next: string) {
  return {
    Type: "Task",
    // moto's interpreter names the aws-sdk service and its parameters as boto3 does
    // (emr-serverless, camelCase) where AWS writes emrserverless and PascalCase; the deployed
    // machine uses the optimized emr-serverless:startJobRun.sync, which moto does not run. Either
    // way the job run's ids appear in the task's output, which is what the CLI reads.
    Resource: "arn:aws:states:::aws-sdk:emr-serverless:startJobRun",
    Parameters: {
      applicationId: applicationId,
      executionRoleArn: `arn:aws:iam::${ACCOUNT}:role/spark-job`,
      "clientToken.$": `States.Format('${job}-{}', $$.Execution.Name)`,
      "name.$": `States.Format('${job}-{}', $$.Execution.Name)`,
      jobDriver: { sparkSubmit: { entryPoint: "s3://assets/spark-jobs/main.py", entryPointArguments: [job] } },
    },
    ResultPath: `$.${job}`,
    Next: next,
  };
}

/** A tiny pipeline with the real state names: fan out one work unit, wait for it, silver, gold. */
export function tinyDefinition(queueUrl: string, applicationId: string) {
  return {
    Comment: "test pipeline: the deployed machine's state names, moto-runnable integrations",
    StartAt: STEP.startRun,
    States: {
      [STEP.startRun]: { Type: "Pass", Next: STEP.fanOut },
      [STEP.fanOut]: {
        Type: "Task",
        Resource: "arn:aws:states:::sqs:sendMessage",
        Parameters: { QueueUrl: queueUrl, "MessageBody.$": "$$.Execution.Name" },
        ResultPath: null,
        Next: STEP.waitForDrain,
      },
      [STEP.waitForDrain]: { Type: "Wait", Seconds: 2, Next: STEP.silverJob },
      [STEP.silverJob]: sparkTask(applicationId, "silver", STEP.goldJob),
      [STEP.goldJob]: sparkTask(applicationId, "gold", STEP.runSucceeded),
      [STEP.runSucceeded]: { Type: "Succeed" },
    },
  };
}

export async function createDeployedEnvironment(moto: MotoServer): Promise<Fixture> {
  await moto.api("/moto-api/config", { stepfunctions: { execute_state_machine: true } });
  const clients = new AwsClients({ region: "us-east-1", endpoint: moto.endpoint });
  const prefix = `fhir-lakehouse-${ENV_NAME}`;
  const buckets = {
    bronze: `${prefix}-bronze`,
    silver: `${prefix}-silver`,
    gold: `${prefix}-gold`,
    metrics: `${prefix}-metrics`,
    athenaResults: `${prefix}-athena-results`,
  };
  for (const b of Object.values(buckets)) await clients.s3.send(new CreateBucketCommand({ Bucket: b }));
  const dlq = await clients.sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-work-dlq` }));
  const work = await clients.sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-work` }));
  const app = await clients.emrServerless.send(new CreateApplicationCommand({ name: `${prefix}-spark`, releaseLabel: "emr-7.9.0", type: "SPARK" }));
  const workgroup = `${prefix}-analysts`;
  await clients.athena.send(
    new CreateWorkGroupCommand({ Name: workgroup, Configuration: { ResultConfiguration: { OutputLocation: `s3://${buckets.athenaResults}/results/` } } }),
  );
  const alarmTopicArn = `arn:aws:sns:us-east-1:${ACCOUNT}:${prefix}-alarms`;
  const sm = await clients.stepFunctions.send(
    new CreateStateMachineCommand({
      name: `${prefix}-pipeline`,
      definition: JSON.stringify(tinyDefinition(work.QueueUrl!, app.applicationId!)),
      roleArn: `arn:aws:iam::${ACCOUNT}:role/${prefix}-states`,
    }),
  );

  // Two alarms fire: one of this environment (notifies its topic), one of something else.
  for (const [name, actions] of [
    [`${prefix}-dlq-not-empty`, [alarmTopicArn]],
    ["someone-elses-alarm", [`arn:aws:sns:us-east-1:${ACCOUNT}:other`]],
  ] as const) {
    await clients.cloudWatch.send(
      new PutMetricAlarmCommand({
        AlarmName: name,
        Namespace: "AWS/SQS",
        MetricName: "ApproximateNumberOfMessagesVisible",
        Dimensions: [{ Name: "QueueName", Value: `${prefix}-work-dlq` }],
        Statistic: "Maximum",
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
        AlarmActions: [...actions],
      }),
    );
    await clients.cloudWatch.send(new SetAlarmStateCommand({ AlarmName: name, StateValue: "ALARM", StateReason: "1 message in the dead-letter queue" }));
  }

  // The environment's stacks, their outputs spread over them as the CDK app declares them.
  const outputs: Record<string, string> = {
    [OUTPUT_KEYS.stateMachineArn]: sm.stateMachineArn!,
    [OUTPUT_KEYS.bronzeBucket]: buckets.bronze,
    [OUTPUT_KEYS.silverBucket]: buckets.silver,
    [OUTPUT_KEYS.goldBucket]: buckets.gold,
    [OUTPUT_KEYS.metricsBucket]: buckets.metrics,
    [OUTPUT_KEYS.athenaResultsBucket]: buckets.athenaResults,
    [OUTPUT_KEYS.athenaWorkgroup]: workgroup,
    [OUTPUT_KEYS.emrApplicationId]: app.applicationId!,
    [OUTPUT_KEYS.workQueueUrl]: work.QueueUrl!,
    [OUTPUT_KEYS.deadLetterQueueUrl]: dlq.QueueUrl!,
    [OUTPUT_KEYS.alarmTopicArn]: alarmTopicArn,
  };
  const stacks = stackNamesFor(ENV_NAME);
  const entries = Object.entries(outputs);
  for (const [i, stackName] of stacks.entries()) {
    const mine = entries.filter((_, j) => j % stacks.length === i);
    const template = {
      Resources: { Marker: { Type: "AWS::SQS::Queue", Properties: { QueueName: `${stackName}-marker` } } },
      Outputs: Object.fromEntries(mine.map(([k, v]) => [k, { Value: v }])),
    };
    await clients.cloudFormation.send(new CreateStackCommand({ StackName: stackName, TemplateBody: JSON.stringify(template) }));
  }
  return { clients, stateMachineArn: sm.stateMachineArn!, applicationId: app.applicationId!, workQueueUrl: work.QueueUrl!, alarmTopicArn, workgroup, buckets };
}

/** The cdk outputs file (`cdk deploy --outputs-file`) of the same environment. */
export async function outputsFileContent(clients: AwsClients): Promise<Record<string, Record<string, string>>> {
  const { DescribeStacksCommand } = await import("@aws-sdk/client-cloudformation");
  const out: Record<string, Record<string, string>> = {};
  for (const stackName of stackNamesFor(ENV_NAME)) {
    const d = await clients.cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    out[stackName] = Object.fromEntries((d.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  }
  return out;
}
