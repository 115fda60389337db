// `--env NAME`: which deployed environment the CLI operates. Everything it needs (state machine,
// buckets, workgroup, EMR application, queues) comes from the stacks' outputs: read from
// CloudFormation (DescribeStacks), or from the file `cdk deploy --outputs-file FILE` wrote. Never
// typed by hand: stack names and output keys are the infrastructure's own constants.
import { DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import * as fs from "node:fs";
import { ConfigError, loadConfig } from "../../config/load";
import type { PipelineConfig } from "../../config/schema";
import type { LakeLocations } from "../core/pipeline-steps";
import {
  outputsFromOutputsFile,
  outputsFromStacks,
  parseDeployedFunctions,
  stackNames,
  type DeployedFunction,
  type StackOutputs,
} from "../core/stack-outputs";
import type { AwsClients } from "./clients";
import { OperatorError, withOperatorErrors } from "./errors";

export interface DeployedEnvironment {
  name: string;
  config: PipelineConfig;
  /** Where the outputs were read: "cloudformation" or the outputs file's path. */
  source: string;
  stateMachineArn: string;
  buckets: { bronze: string; silver: string; gold: string; metrics: string; athenaResults?: string };
  /** s3:// URI of each layer, as the state machine's jobs use them. */
  lake: LakeLocations;
  workgroup: string;
  /** Glue database of the gold layer (the default database of `query --env`). */
  goldDatabase?: string;
  emrApplicationId: string;
  /** Work queues and their dead-letter queues, keyed by role ("download", "search DLQ", …). */
  queueUrls: Record<string, string>;
  /** SNS topic the alarms notify; alarms are filtered to this environment's by it. */
  alarmTopicArn?: string;
  /** The extractor Lambdas with their configured memory (the LambdaFunctions output), for GB-seconds. */
  functions: DeployedFunction[];
}

export interface ResolveOptions {
  envName: string;
  /** Read outputs from this `cdk deploy --outputs-file` file instead of CloudFormation. */
  outputsFile?: string;
  clients: AwsClients;
}

function loadEnvConfig(envName: string): PipelineConfig {
  try {
    return loadConfig(envName);
  } catch (err) {
    if (err instanceof ConfigError) {
      const first = err.issues[0] ?? "invalid";
      if (/no such config file/.test(first)) {
        const known = /known environments: ([^)]*)/.exec(first)?.[1] ?? "";
        throw new OperatorError(
          `unknown environment "${envName}": there is no config/${envName}.json (known: ${known}); pass --env with one of those`,
        );
      }
      throw new OperatorError(
        `config/${envName}.json is invalid (${err.issues.join("; ")}): run \`npx fhir-pipeline validate-config ${envName}\``,
      );
    }
    throw err;
  }
}

type DescribedStack = { StackName?: string; Outputs?: { OutputKey?: string; OutputValue?: string }[] };

/** DescribeStacks of every stack of the environment (a missing stack: "not deployed", one line). */
async function describeEnvironmentStacks(envName: string, clients: AwsClients): Promise<DescribedStack[]> {
  const stacks: DescribedStack[] = [];
  for (const name of stackNames(envName)) {
    const answer = await withOperatorErrors({ envName, region: await regionOf(clients), stackName: name }, () =>
      clients.cloudFormation.send(new DescribeStacksCommand({ StackName: name })),
    );
    stacks.push(...(answer.Stacks ?? []));
  }
  return stacks;
}

async function regionOf(clients: AwsClients): Promise<string | undefined> {
  try {
    return await clients.cloudFormation.config.region();
  } catch {
    return clients.region;
  }
}

function readOutputsFile(envName: string, file: string): Record<string, Record<string, string>> {
  if (!fs.existsSync(file))
    throw new OperatorError(
      `outputs file ${file} does not exist: write it with \`npx cdk deploy -c env=${envName} --all --outputs-file ${file}\``,
    );
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new OperatorError(
      `outputs file ${file} is not valid JSON (${(err as Error).message}): write it again with \`cdk deploy --outputs-file\``,
    );
  }
}

/** The infrastructure's completeness check, as one line for the operator. */
function checked(envName: string, read: () => StackOutputs): StackOutputs {
  try {
    return read();
  } catch (err) {
    throw new OperatorError(`${(err as Error).message.replace(/\s+/g, " ")}`.replace(/^environment \S+: /, `environment ${envName}: `));
  }
}

/** Builds the environment from the stacks' outputs. */
export function environmentFromOutputs(config: PipelineConfig, outputs: StackOutputs, source: string): DeployedEnvironment {
  let functions: DeployedFunction[];
  try {
    functions = parseDeployedFunctions(outputs.LambdaFunctions);
  } catch (err) {
    throw new OperatorError(`environment ${config.name}: ${(err as Error).message} (npx cdk deploy -c env=${config.name} --all)`);
  }
  return {
    name: config.name,
    config,
    source,
    stateMachineArn: outputs.StateMachineArn,
    buckets: {
      bronze: outputs.BronzeBucketName,
      silver: outputs.SilverBucketName,
      gold: outputs.GoldBucketName,
      metrics: outputs.MetricsBucketName,
      athenaResults: outputs.AthenaResultsBucketName,
    },
    lake: { bronze: outputs.BronzeUri, silver: outputs.SilverUri, gold: outputs.GoldUri, metrics: outputs.MetricsUri },
    workgroup: outputs.AthenaWorkGroup,
    goldDatabase: outputs.GlueGoldDatabase,
    emrApplicationId: outputs.EmrApplicationId,
    queueUrls: {
      download: outputs.DownloadQueueUrl,
      search: outputs.SearchQueueUrl,
      "download DLQ": outputs.DownloadDeadLetterQueueUrl,
      "search DLQ": outputs.SearchDeadLetterQueueUrl,
    },
    alarmTopicArn: outputs.AlarmTopicArn,
    functions,
  };
}

/** Resolves `--env NAME` to a deployed environment, or throws a one-line OperatorError. */
export async function resolveEnvironment(options: ResolveOptions): Promise<DeployedEnvironment> {
  const config = loadEnvConfig(options.envName);
  const name = config.name;
  const outputs = options.outputsFile
    ? checked(name, () => outputsFromOutputsFile(name, readOutputsFile(name, options.outputsFile!)))
    : checked(name, await describeEnvironmentStacks(name, options.clients).then((stacks) => () => outputsFromStacks(name, stacks)));
  return environmentFromOutputs(config, outputs, options.outputsFile ?? "cloudformation");
}
