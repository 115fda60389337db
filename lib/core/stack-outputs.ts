// The deployed environment as the CLI sees it: the stack names of an environment and the stable
// keys of the CloudFormation outputs the stacks publish (each also exported as
// `fhir-lakehouse-{env}-{key}`). Read them with CloudFormation DescribeStacks / ListExports, or
// from the file `cdk deploy --outputs-file FILE` writes; never type them by hand.

/** Output keys (CfnOutput ids) and the stack that publishes each. */
export const STACK_OUTPUTS = {
  KmsKeyArn: "storage",
  BronzeBucketName: "storage",
  SilverBucketName: "storage",
  GoldBucketName: "storage",
  MetricsBucketName: "storage",
  AthenaResultsBucketName: "storage",
  AccessLogsBucketName: "storage",
  BronzeUri: "storage",
  SilverUri: "storage",
  GoldUri: "storage",
  MetricsUri: "storage",
  GlueSilverDatabase: "storage",
  GlueGoldDatabase: "storage",
  DownloadQueueUrl: "ingestion",
  DownloadDeadLetterQueueUrl: "ingestion",
  SearchQueueUrl: "ingestion",
  SearchDeadLetterQueueUrl: "ingestion",
  EpicPrivateKeySecretArn: "ingestion",
  LambdaFunctions: "ingestion",
  EmrApplicationId: "processing",
  EmrJobRoleArn: "processing",
  StateMachineArn: "orchestration",
  RunNotificationsTopicArn: "orchestration",
  ScheduleName: "orchestration",
  AthenaWorkGroup: "analytics",
  AlarmTopicArn: "monitoring",
  DashboardName: "monitoring",
} as const;
export type StackOutputKey = keyof typeof STACK_OUTPUTS;
export type StackConcern = (typeof STACK_OUTPUTS)[StackOutputKey];
export type StackOutputs = Record<StackOutputKey, string>;

export const STACK_CONCERNS = ["storage", "ingestion", "processing", "orchestration", "analytics", "monitoring"] as const;

/** CloudFormation stack name of one concern of an environment, e.g. fhir-lakehouse-dev-storage. */
export function stackName(env: string, concern: StackConcern): string {
  return `fhir-lakehouse-${env}-${concern}`;
}

/** Every stack name of an environment, in deployment order. */
export function stackNames(env: string): string[] {
  return STACK_CONCERNS.map((c) => stackName(env, c));
}

/** The CloudFormation export name of an output. */
export function exportName(env: string, key: StackOutputKey): string {
  return `fhir-lakehouse-${env}-${key}`;
}

function complete(env: string, found: Partial<StackOutputs>, source: string): StackOutputs {
  const missing = (Object.keys(STACK_OUTPUTS) as StackOutputKey[]).filter((k) => !found[k]);
  if (missing.length)
    throw new Error(
      `environment ${env}: ${source} lacks outputs ${missing.join(", ")} (deploy every stack: npx cdk deploy -c env=${env} --all)`,
    );
  return found as StackOutputs;
}

/** Outputs from CloudFormation exports (ListExports: [{ Name, Value }]). */
export function outputsFromExports(env: string, cfnExports: { Name?: string; Value?: string }[]): StackOutputs {
  const found: Partial<StackOutputs> = {};
  for (const key of Object.keys(STACK_OUTPUTS) as StackOutputKey[]) {
    const hit = cfnExports.find((e) => e.Name === exportName(env, key));
    if (hit?.Value) found[key] = hit.Value;
  }
  return complete(env, found, "the CloudFormation exports");
}

/** Outputs from DescribeStacks results ([{ StackName, Outputs: [{ OutputKey, OutputValue }] }]). */
export function outputsFromStacks(
  env: string,
  stacks: { StackName?: string; Outputs?: { OutputKey?: string; OutputValue?: string }[] }[],
): StackOutputs {
  const found: Partial<StackOutputs> = {};
  const names = new Set(stackNames(env));
  for (const s of stacks) {
    if (!s.StackName || !names.has(s.StackName)) continue;
    for (const o of s.Outputs ?? [])
      if (o.OutputKey && o.OutputKey in STACK_OUTPUTS && o.OutputValue) found[o.OutputKey as StackOutputKey] = o.OutputValue;
  }
  return complete(env, found, "the stacks");
}

/** Outputs from a `cdk deploy --outputs-file` JSON ({ stackName: { OutputKey: value } }). */
export function outputsFromOutputsFile(env: string, json: Record<string, Record<string, string>>): StackOutputs {
  return outputsFromStacks(
    env,
    Object.entries(json).map(([StackName, outputs]) => ({
      StackName,
      Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
    })),
  );
}

/**
 * One extractor Lambda as the `LambdaFunctions` output lists it (a JSON array of these): the role
 * it plays (state name, or DownloadFile / SearchWorker), its function name and configured memory.
 * `fhir-pipeline run/report --env` and PublishMetrics turn CloudWatch's AWS/Lambda Duration of
 * each into GB-seconds with it.
 */
export interface DeployedFunction {
  role: string;
  name: string;
  memoryMb: number;
}

/** Parses the `LambdaFunctions` output; throws saying what is wrong with it. */
export function parseDeployedFunctions(value: string): DeployedFunction[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new Error(`the LambdaFunctions output is not JSON: ${value.slice(0, 80)}`);
  }
  const ok = (f: unknown): f is DeployedFunction =>
    typeof f === "object" &&
    f !== null &&
    typeof (f as DeployedFunction).role === "string" &&
    typeof (f as DeployedFunction).name === "string" &&
    (f as DeployedFunction).name.length > 0 &&
    typeof (f as DeployedFunction).memoryMb === "number" &&
    (f as DeployedFunction).memoryMb > 0;
  if (!Array.isArray(parsed) || !parsed.every(ok))
    throw new Error("the LambdaFunctions output is not a list of {role, name, memoryMb}: redeploy the ingestion stack");
  return parsed.map(({ role, name, memoryMb }) => ({ role, name, memoryMb }));
}
