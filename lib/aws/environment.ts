// `--env NAME`: which deployed environment the CLI operates. Everything it needs (state machine,
// buckets, workgroup, EMR application, queues) comes from the stacks' outputs: read from
// CloudFormation (DescribeStacks), or from the file `cdk deploy --outputs-file FILE` wrote. Never
// typed by hand: stack names and output keys are the infrastructure's own constants.
import { DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import * as fs from "node:fs";
import { ConfigError, loadConfig } from "../../config/load";
import type { PipelineConfig } from "../../config/schema";
import type { LakeLocations } from "../core/pipeline-steps";
import { OUTPUT_KEYS, stackNamesFor, type OutputKey } from "./stack-output-keys";
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
  /** Work queue(s) and dead-letter queue(s), keyed by role ("work", "dlq"). */
  queueUrls: Record<string, string>;
  /** SNS topic the alarms notify; alarms are filtered to this environment's by it. */
  alarmTopicArn?: string;
  /** Names of the extractor Lambda functions (for Lambda GB-seconds), if the stacks export them. */
  functionNames: string[];
  /** Memory of the extractor functions in MB, if exported. */
  functionMemoryMb?: number;
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
        throw new OperatorError(`unknown environment "${envName}": there is no config/${envName}.json (known: ${known}); pass --env with one of those`);
      }
      throw new OperatorError(`config/${envName}.json is invalid (${err.issues.join("; ")}): run \`npx fhir-pipeline validate-config ${envName}\``);
    }
    throw err;
  }
}

/** The outputs of every stack of the environment, merged (output keys are unique across stacks). */
async function outputsFromCloudFormation(envName: string, stacks: string[], clients: AwsClients): Promise<Record<string, string>> {
  const merged: Record<string, string> = {};
  for (const stackName of stacks) {
    const answer = await withOperatorErrors({ envName, region: await regionOf(clients), stackName }, () =>
      clients.cloudFormation.send(new DescribeStacksCommand({ StackName: stackName })),
    );
    for (const o of answer.Stacks?.[0]?.Outputs ?? []) if (o.OutputKey && o.OutputValue !== undefined) merged[o.OutputKey] = o.OutputValue;
  }
  return merged;
}

async function regionOf(clients: AwsClients): Promise<string | undefined> {
  try {
    return await clients.cloudFormation.config.region();
  } catch {
    return clients.region;
  }
}

function outputsFromFile(envName: string, file: string, stacks: string[]): Record<string, string> {
  if (!fs.existsSync(file)) throw new OperatorError(`outputs file ${file} does not exist: write it with \`npx cdk deploy -c env=${envName} --all --outputs-file ${file}\``);
  let parsed: Record<string, Record<string, string>>;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new OperatorError(`outputs file ${file} is not valid JSON (${(err as Error).message}): write it again with \`cdk deploy --outputs-file\``);
  }
  const present = stacks.filter((s) => parsed[s]);
  if (present.length === 0) {
    throw new OperatorError(
      `outputs file ${file} has no stack of environment ${envName} (expected ${stacks.join(", ")}; found ${Object.keys(parsed).join(", ") || "none"}): deploy with \`npx cdk deploy -c env=${envName} --all --outputs-file ${file}\``,
    );
  }
  return Object.assign({}, ...present.map((s) => parsed[s]));
}

/** Builds the environment from merged stack outputs; a missing required output is one clear line. */
export function environmentFromOutputs(config: PipelineConfig, outputs: Record<string, string>, source: string): DeployedEnvironment {
  const required = (key: OutputKey): string => {
    const value = outputs[OUTPUT_KEYS[key]];
    if (!value) {
      throw new OperatorError(
        `environment ${config.name} has no stack output ${OUTPUT_KEYS[key]} (${source}): it was deployed by an older version; run \`npx cdk deploy -c env=${config.name} --all\``,
      );
    }
    return value;
  };
  const optional = (key: OutputKey): string | undefined => outputs[OUTPUT_KEYS[key]] || undefined;
  const buckets = {
    bronze: required("bronzeBucket"),
    silver: required("silverBucket"),
    gold: required("goldBucket"),
    metrics: required("metricsBucket"),
    athenaResults: optional("athenaResultsBucket"),
  };
  const queueUrls: Record<string, string> = { work: required("workQueueUrl") };
  const dlq = optional("deadLetterQueueUrl");
  if (dlq) queueUrls.dlq = dlq;
  const functions = optional("extractorFunctionNames");
  const memory = optional("extractorMemoryMb");
  return {
    name: config.name,
    config,
    source,
    stateMachineArn: required("stateMachineArn"),
    buckets,
    lake: {
      bronze: `s3://${buckets.bronze}/bronze`,
      silver: `s3://${buckets.silver}/silver`,
      gold: `s3://${buckets.gold}/gold`,
      metrics: `s3://${buckets.metrics}/metrics`,
    },
    workgroup: required("athenaWorkgroup"),
    emrApplicationId: required("emrApplicationId"),
    queueUrls,
    alarmTopicArn: optional("alarmTopicArn"),
    functionNames: functions ? functions.split(",").map((s) => s.trim()).filter(Boolean) : [],
    functionMemoryMb: memory ? Number(memory) : undefined,
  };
}

/** Resolves `--env NAME` to a deployed environment, or throws a one-line OperatorError. */
export async function resolveEnvironment(options: ResolveOptions): Promise<DeployedEnvironment> {
  const config = loadEnvConfig(options.envName);
  const stacks = stackNamesFor(config.name);
  const outputs = options.outputsFile
    ? outputsFromFile(config.name, options.outputsFile, stacks)
    : await outputsFromCloudFormation(config.name, stacks, options.clients);
  return environmentFromOutputs(config, outputs, options.outputsFile ?? "cloudformation");
}
