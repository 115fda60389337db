// The environment variables the ingestion stack gives every extractor Lambda, and a typed reader
// for the handlers: one list of names for both sides. No secret is ever in the environment: the
// Epic private key is read from Secrets Manager at run time (EPIC_PRIVATE_KEY_SECRET_ARN).
import type { PipelineConfig } from "../../config/schema";

export const FUNCTION_ENV = {
  /** JSON of FunctionConfig: the config sections a handler needs (no secrets, no local paths). */
  config: "FHIR_PIPELINE_CONFIG",
  /** ARN of the Secrets Manager secret holding the Epic private key (PEM). */
  epicPrivateKeySecretArn: "EPIC_PRIVATE_KEY_SECRET_ARN",
  /** The bronze layer's URI, s3://bucket/bronze (layerUri(s3://bucket, "bronze")). */
  bronzeUri: "BRONZE_URI",
  /** The metrics layer's URI, s3://bucket/metrics; its lake root (for MetricsCollector) is s3://bucket. */
  metricsUri: "METRICS_URI",
  downloadQueueUrl: "DOWNLOAD_QUEUE_URL",
  searchQueueUrl: "SEARCH_QUEUE_URL",
  downloadDlqUrl: "DOWNLOAD_DLQ_URL",
  searchDlqUrl: "SEARCH_DLQ_URL",
  /**
   * PublishMetrics only: JSON list of the other extractor functions ({role, name, memoryMb}, the
   * `LambdaFunctions` stack output's shape) whose CloudWatch Duration makes the run's GB-seconds.
   */
  lambdaFunctions: "LAMBDA_FUNCTIONS",
} as const;
export type FunctionEnvName = keyof typeof FUNCTION_ENV;

/** The part of the pipeline config a Lambda gets (privateKeyFile is local-only and dropped). */
export interface FunctionConfig {
  name: PipelineConfig["name"];
  epic: Omit<PipelineConfig["epic"], "privateKeyFile">;
  extraction: PipelineConfig["extraction"];
}

export function functionConfig(config: PipelineConfig): FunctionConfig {
  const epic: FunctionConfig["epic"] & { privateKeyFile?: string } = { ...config.epic };
  delete epic.privateKeyFile; // local-only
  return { name: config.name, epic, extraction: config.extraction };
}

export type FunctionEnvironment = { [K in FunctionEnvName]?: string } & { config: FunctionConfig };

/**
 * Reads the variables a handler needs; throws naming each missing one (a deployment bug, so the
 * error says which variable). `required` lists the ones this handler cannot run without.
 */
export function readFunctionEnvironment(required: FunctionEnvName[], env: NodeJS.ProcessEnv = process.env): FunctionEnvironment {
  const missing = (["config", ...required] as FunctionEnvName[]).filter((k) => !env[FUNCTION_ENV[k]]);
  if (missing.length) {
    const err = new Error(`missing environment variables: ${missing.map((k) => FUNCTION_ENV[k]).join(", ")}`);
    err.name = "ConfigurationError";
    throw err;
  }
  const out: Record<string, unknown> = {};
  for (const [k, name] of Object.entries(FUNCTION_ENV)) if (env[name] !== undefined) out[k] = env[name];
  out.config = JSON.parse(env[FUNCTION_ENV.config]!) as FunctionConfig;
  return out as FunctionEnvironment;
}
