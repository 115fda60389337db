// A deployed environment inside moto: the buckets, queues, EMR Serverless application, Athena
// workgroup, alarm topic and a tiny state machine, plus the CloudFormation stacks of the
// environment whose outputs name them (read back by lib/aws/environment.ts, as after `cdk deploy`).
// `useDeployedEnvironment()` is the one set-up and tear-down of every test file that needs it.
import { CreateWorkGroupCommand } from "@aws-sdk/client-athena";
import { CreateStackCommand } from "@aws-sdk/client-cloudformation";
import { PutMetricAlarmCommand, SetAlarmStateCommand } from "@aws-sdk/client-cloudwatch";
import { CreateApplicationCommand } from "@aws-sdk/client-emr-serverless";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateStateMachineCommand } from "@aws-sdk/client-sfn";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { AwsClients } from "../../lib/aws/clients";
import { resolveEnvironment, type DeployedEnvironment } from "../../lib/aws/environment";
import { STEP } from "../../lib/core/pipeline-steps";
import { STACK_OUTPUTS, stackName, stackNames, type DeployedFunction, type StackOutputs } from "../../lib/core/stack-outputs";
import { MOTO_ENV, startMoto, type MotoServer } from "./moto-server";

export const ENV_NAME = "dev";
export const ACCOUNT = "123456789012";

/**
 * The extractor Lambdas as the ingestion stack's LambdaFunctions output lists them (roles and
 * memory as lib/stacks/ingestion-stack.ts configures them; names as CloudFormation would generate).
 */
export const FUNCTIONS: DeployedFunction[] = [
  ["BulkKickOff", 256],
  ["PollBulkStatus", 256],
  ["FanOut", 512],
  ["CheckDrained", 512],
  ["PublishMetrics", 1024],
  ["DownloadFile", 2048],
  ["SearchWorker", 1024],
].map(([role, memoryMb]) => ({
  role: String(role),
  name: `fhir-lakehouse-${ENV_NAME}-ingestion-${role}Function-A1B2C3`,
  memoryMb: Number(memoryMb),
}));

export interface Fixture {
  clients: AwsClients;
  stateMachineArn: string;
  applicationId: string;
  downloadQueueUrl: string;
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
  const queue = async (name: string) => (await clients.sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-${name}` }))).QueueUrl!;
  const queues = {
    download: await queue("download"),
    downloadDlq: await queue("download-dlq"),
    search: await queue("search"),
    searchDlq: await queue("search-dlq"),
  };
  const app = await clients.emrServerless.send(
    new CreateApplicationCommand({ name: `${prefix}-spark`, releaseLabel: "emr-7.9.0", type: "SPARK" }),
  );
  const workgroup = `${prefix}-analysts`;
  await clients.athena.send(
    new CreateWorkGroupCommand({
      Name: workgroup,
      Configuration: { ResultConfiguration: { OutputLocation: `s3://${buckets.athenaResults}/results/` } },
    }),
  );
  const alarmTopicArn = `arn:aws:sns:us-east-1:${ACCOUNT}:${prefix}-alarms`;
  const sm = await clients.stepFunctions.send(
    new CreateStateMachineCommand({
      name: `${prefix}-pipeline`,
      definition: JSON.stringify(tinyDefinition(queues.download, app.applicationId!)),
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
        Dimensions: [{ Name: "QueueName", Value: `${prefix}-download-dlq` }],
        Statistic: "Maximum",
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
        AlarmActions: [...actions],
      }),
    );
    await clients.cloudWatch.send(
      new SetAlarmStateCommand({ AlarmName: name, StateValue: "ALARM", StateReason: "1 message in the dead-letter queue" }),
    );
  }

  // The environment's stacks, each with the outputs the CDK app gives it (lib/core/stack-outputs.ts).
  const placeholder = (what: string) => `arn:aws:${what}:us-east-1:${ACCOUNT}:${prefix}-placeholder`;
  const outputs: StackOutputs = {
    KmsKeyArn: placeholder("kms"),
    BronzeBucketName: buckets.bronze,
    SilverBucketName: buckets.silver,
    GoldBucketName: buckets.gold,
    MetricsBucketName: buckets.metrics,
    AthenaResultsBucketName: buckets.athenaResults,
    AccessLogsBucketName: `${prefix}-access-logs`,
    BronzeUri: `s3://${buckets.bronze}/bronze`,
    SilverUri: `s3://${buckets.silver}/silver`,
    GoldUri: `s3://${buckets.gold}/gold`,
    MetricsUri: `s3://${buckets.metrics}/metrics`,
    GlueSilverDatabase: "fhir_silver_dev",
    GlueGoldDatabase: "fhir_gold_dev",
    DownloadQueueUrl: queues.download,
    DownloadDeadLetterQueueUrl: queues.downloadDlq,
    SearchQueueUrl: queues.search,
    SearchDeadLetterQueueUrl: queues.searchDlq,
    EpicPrivateKeySecretArn: placeholder("secretsmanager"),
    LambdaFunctions: JSON.stringify(FUNCTIONS),
    EmrApplicationId: app.applicationId!,
    EmrJobRoleArn: `arn:aws:iam::${ACCOUNT}:role/spark-job`,
    StateMachineArn: sm.stateMachineArn!,
    RunNotificationsTopicArn: placeholder("sns"),
    ScheduleName: `${prefix}-nightly`,
    AthenaWorkGroup: workgroup,
    AlarmTopicArn: alarmTopicArn,
    DashboardName: `${prefix}-dashboard`,
  };
  const concerns = [...new Set(Object.values(STACK_OUTPUTS))];
  for (const concern of concerns) {
    const name = stackName(ENV_NAME, concern);
    const mine = (Object.keys(STACK_OUTPUTS) as (keyof StackOutputs)[]).filter((k) => STACK_OUTPUTS[k] === concern);
    const template = {
      Resources: { Marker: { Type: "AWS::SQS::Queue", Properties: { QueueName: `${name}-marker` } } },
      Outputs: Object.fromEntries(mine.map((k) => [k, { Value: outputs[k] }])),
    };
    await clients.cloudFormation.send(new CreateStackCommand({ StackName: name, TemplateBody: JSON.stringify(template) }));
  }
  return {
    clients,
    stateMachineArn: sm.stateMachineArn!,
    applicationId: app.applicationId!,
    downloadQueueUrl: queues.download,
    alarmTopicArn,
    workgroup,
    buckets,
  };
}

/** The cdk outputs file (`cdk deploy --outputs-file`) of the same environment. */
export async function outputsFileContent(clients: AwsClients): Promise<Record<string, Record<string, string>>> {
  const { DescribeStacksCommand } = await import("@aws-sdk/client-cloudformation");
  const out: Record<string, Record<string, string>> = {};
  for (const name of stackNames(ENV_NAME)) {
    const d = await clients.cloudFormation.send(new DescribeStacksCommand({ StackName: name }));
    out[name] = Object.fromEntries((d.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  }
  return out;
}

export interface DeployedEnvHarness {
  moto: MotoServer;
  fx: Fixture;
  /** The test's own clients (stand-ins added by `prepare` apply to these only). */
  clients: AwsClients;
  /** The environment as `--env dev` resolves it from the stacks' outputs. */
  env: DeployedEnvironment;
}

/**
 * Registers the test file's beforeAll/afterAll: the AWS test credentials in process.env, moto on
 * 127.0.0.1 with the deployed environment, the test's clients (`prepare` may add in-process
 * stand-ins to them, for the calls moto cannot answer) and the resolved environment; then stops
 * and restores everything. The returned object is filled in by beforeAll.
 */
export function useDeployedEnvironment(prepare?: (clients: AwsClients) => void): DeployedEnvHarness {
  const h = {} as DeployedEnvHarness;
  const saved: Record<string, string | undefined> = {};
  beforeAll(async () => {
    for (const [k, v] of Object.entries(MOTO_ENV)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    h.moto = await startMoto();
    h.fx = await createDeployedEnvironment(h.moto);
    h.clients = new AwsClients({ region: "us-east-1", endpoint: h.moto.endpoint });
    prepare?.(h.clients);
    h.env = await resolveEnvironment({ envName: ENV_NAME, clients: h.clients });
  });
  afterAll(async () => {
    h.clients?.destroy();
    h.fx?.clients.destroy();
    await h.moto?.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  return h;
}
