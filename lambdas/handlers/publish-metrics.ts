// PublishMetrics: the run's extraction metrics from its manifest, to the metrics contract
// (Parquet under the lake) and CloudWatch (EMF); then the run's cost so far (lib/aws/run-cost.ts:
// the Spark jobs' billed utilisation from GetJobRun, the extractor Lambdas' GB-seconds from
// CloudWatch) into the same contract, step "cost", which `fhir-pipeline report --env` reads.
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { EMRServerlessClient } from "@aws-sdk/client-emr-serverless";
import { recordInRunCost } from "../../lib/aws/run-cost";
import { readFunctionEnvironment } from "../../lib/core/function-environment";
import { storageObjectWriter } from "../../lib/core/metrics";
import { SPARK_STEPS, type PublishMetricsInput, type PublishMetricsOutput, type SparkJobName } from "../../lib/core/pipeline-steps";
import { parseDeployedFunctions, type DeployedFunction } from "../../lib/core/stack-outputs";
import { awsClientConfig, storageFor } from "../../lib/core/storage";
import { publishExtractMetrics } from "../extractor/extract-metrics";
import { logger, metrics } from "./handler-runtime";

let clients: { emrServerless: EMRServerlessClient; cloudWatch: CloudWatchClient } | undefined;

/** The clients the cost is gathered with, created once per container. */
export function costClients(): { emrServerless: EMRServerlessClient; cloudWatch: CloudWatchClient } {
  clients ??= { emrServerless: new EMRServerlessClient(awsClientConfig()), cloudWatch: new CloudWatchClient(awsClientConfig()) };
  return clients;
}

/** Every extractor function: the others from LAMBDA_FUNCTIONS, this one from the Lambda runtime. */
export function functionsToCost(env: NodeJS.ProcessEnv = process.env, listed?: string): DeployedFunction[] {
  const functions = listed ? parseDeployedFunctions(listed) : [];
  const self = env.AWS_LAMBDA_FUNCTION_NAME;
  const memory = Number(env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  if (self && memory > 0 && !functions.some((f) => f.name === self))
    functions.push({ role: "PublishMetrics", name: self, memoryMb: memory });
  return functions;
}

/** The Spark jobs of the run, from the Spark Tasks' outputs (ApplicationId and JobRunId). */
export function sparkJobsOf(event: PublishMetricsInput): { step: string; applicationId: string; jobRunId: string }[] {
  const jobs = [];
  for (const step of Object.values(SPARK_STEPS) as SparkJobName[]) {
    const out = event[step];
    if (out?.ApplicationId && out.JobRunId) jobs.push({ step, applicationId: out.ApplicationId, jobRunId: out.JobRunId });
  }
  return jobs;
}

export async function handler(event: PublishMetricsInput): Promise<PublishMetricsOutput> {
  const env = readFunctionEnvironment(["bronzeUri", "metricsUri"]);
  const lakeRoot = env.metricsUri!.replace(/\/+metrics\/?$/, "");
  const published = await publishExtractMetrics(event, {
    bronzeUri: env.bronzeUri!,
    lakeRoot,
    storage: storageFor(env.bronzeUri!),
    sink: "lake+emf",
    emf: metrics,
  });
  // The cost is best effort: a throttled or refused read must not fail a run whose data is in
  // place. A run without a cost record is costed later by `report --env` from its history.
  try {
    const { cost } = await recordInRunCost(
      costClients(),
      { lakeRoot, writer: storageObjectWriter },
      {
        runId: event.run.runId,
        startedAt: new Date(event.run.startedAt),
        until: new Date(),
        jobs: sparkJobsOf(event),
        functions: functionsToCost(process.env, env.lambdaFunctions),
        resources: published.resources,
      },
    );
    logger.info("run cost recorded", { runId: event.run.runId, emrUsd: cost.emrUsd, lambdaUsd: cost.lambdaUsd });
  } catch (err) {
    logger.warn("run cost not recorded", { runId: event.run.runId, error: (err as Error).name, message: (err as Error).message });
  }
  return published;
}
