// The whole pipeline as a CDK app: the six stacks of one environment wired together by props, and
// cdk-nag's AWS Solutions and HIPAA Security packs applied to all of them. bin/app.ts and the infra
// tests build the app through here, so what is tested is what `cdk synth` produces.
import { App, Aspects, Tags, type AppProps } from "aws-cdk-lib";
import { AwsSolutionsChecks, HIPAASecurityChecks } from "cdk-nag";
import { ConfigError } from "../../config/load";
import type { PipelineConfig } from "../../config/schema";
import { stackName } from "../core/stack-outputs";
import { AnalyticsStack } from "./analytics-stack";
import { IngestionStack } from "./ingestion-stack";
import { MonitoringStack } from "./monitoring-stack";
import { OrchestrationStack } from "./orchestration-stack";
import { ProcessingStack } from "./processing-stack";
import { StorageStack } from "./storage-stack";

/**
 * CDK feature flags the stacks rely on, set on the app so tests and `cdk synth` agree: S3 access
 * logs are delivered under a bucket policy, not the legacy log-delivery ACL; cross-stack references
 * stay strong (CloudFormation refuses to delete a resource another stack still uses).
 */
export const FEATURE_FLAGS: Record<string, boolean | string> = {
  "@aws-cdk/core:defaultCrossStackReferences": "strong",
  "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": true,
  "@aws-cdk/aws-iam:minimizePolicies": true,
  "@aws-cdk/core:checkSecretUsage": true,
};

export interface PipelineStacks {
  storage: StorageStack;
  ingestion: IngestionStack;
  processing: ProcessingStack;
  orchestration: OrchestrationStack;
  analytics: AnalyticsStack;
  monitoring: MonitoringStack;
}

/**
 * What a valid config still needs before it can be deployed (the schema also serves local runs,
 * which allow more). Throws ConfigError naming each field.
 */
export function checkDeployable(config: PipelineConfig, source = config.name): void {
  const issues: string[] = [];
  if (config.extraction.concurrency < 2) {
    issues.push("extraction.concurrency: must be at least 2 to deploy (the SQS event source's maxConcurrency minimum)");
  }
  for (const [field, url] of [
    ["epic.baseUrl", config.epic.baseUrl],
    ["epic.tokenUrl", config.epic.tokenUrl],
  ] as const) {
    if (!url.startsWith("https://")) issues.push(`${field}: must be an https:// URL to deploy (Lambda reaches Epic over the internet)`);
  }
  if (issues.length) throw new ConfigError(source, issues);
}

/** Adds the environment's six stacks to `app`. Stacks are environment-agnostic unless `env` is given. */
export function addPipelineStacks(app: App, config: PipelineConfig, env?: { account?: string; region?: string }): PipelineStacks {
  checkDeployable(config);
  for (const [flag, value] of Object.entries(FEATURE_FLAGS)) app.node.setContext(flag, value);
  const name = (c: Parameters<typeof stackName>[1]) => stackName(config.name, c);
  const common = { env, description: `FHIR lakehouse (${config.name})` };

  const storage = new StorageStack(app, name("storage"), { ...common, config });
  const ingestion = new IngestionStack(app, name("ingestion"), {
    ...common,
    config,
    key: storage.key,
    bronzeBucket: storage.buckets.bronze,
    metricsBucket: storage.buckets.metrics,
    lake: storage.lake,
  });
  const processing = new ProcessingStack(app, name("processing"), {
    ...common,
    config,
    key: storage.key,
    buckets: storage.buckets,
    vpc: ingestion.vpc,
    jobRunReaders: [ingestion.stepFunctions.PublishMetrics.role],
  });
  const orchestration = new OrchestrationStack(app, name("orchestration"), {
    ...common,
    config,
    key: storage.key,
    functions: ingestion.stepFunctionHandlers,
    emr: {
      applicationId: processing.application.attrApplicationId,
      applicationArn: processing.application.attrArn,
      jobRole: processing.jobRole,
      entryPoint: processing.sparkPackage.entryPointUri,
      pyFiles: processing.sparkPackage.pyFilesUri,
    },
    metricsBucketName: storage.buckets.metrics.bucketName,
    lake: storage.lake,
  });
  const analytics = new AnalyticsStack(app, name("analytics"), {
    ...common,
    config,
    key: storage.key,
    resultsBucket: storage.buckets.athenaResults,
  });
  const monitoring = new MonitoringStack(app, name("monitoring"), {
    ...common,
    config,
    key: storage.key,
    functions: ingestion.allFunctions,
    queues: { download: ingestion.download.queue, search: ingestion.search.queue },
    deadLetterQueues: { download: ingestion.download.deadLetterQueue, search: ingestion.search.deadLetterQueue },
    stateMachine: orchestration.stateMachine,
    emrApplicationId: processing.application.attrApplicationId,
    emrApplicationName: processing.application.name!,
    athenaWorkGroup: analytics.workGroup.name,
  });

  Tags.of(app).add("project", "fhir-lakehouse");
  Tags.of(app).add("environment", config.name);
  Tags.of(app).add("data-classification", "phi");
  return { storage, ingestion, processing, orchestration, analytics, monitoring };
}

/** Applies cdk-nag's AWS Solutions and HIPAA Security packs: any unacknowledged finding is a synth error. */
export function addComplianceChecks(app: App): void {
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  Aspects.of(app).add(new HIPAASecurityChecks({ verbose: true }));
}

/** A new app with the environment's stacks and the compliance checks (what bin/app.ts synthesizes). */
export function createPipelineApp(config: PipelineConfig, props: AppProps = {}): { app: App; stacks: PipelineStacks } {
  const app = new App(props);
  const stacks = addPipelineStacks(app, config);
  addComplianceChecks(app);
  return { app, stacks };
}
