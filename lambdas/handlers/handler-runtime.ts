// What every extractor Lambda shares, built once per container: Powertools logger, metrics and
// tracer, and the ExtractorDeps of the library (config from the environment, the Epic key from
// Secrets Manager, bronze on S3, units on SQS). Handlers stay thin: parse, call, return.
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { Tracer } from "@aws-lambda-powertools/tracer";
import { readFunctionEnvironment, type FunctionEnvName, type FunctionEnvironment } from "../../lib/core/function-environment";
import type { PipelineConfig } from "../../config/schema";
import { connectionFromConfig, createExtractorDeps, settingsFromConfig } from "../extractor/extractor-setup";
import type { ExtractorDeps, ExtractorLog } from "../extractor/extractor-deps";
import { awsSqs, SqsUnitQueue, type UnitQueue } from "../extractor/unit-queue";
import type { WorkUnit } from "../extractor/work-units";

export const SERVICE = "fhir-pipeline";
export const logger = new Logger({ serviceName: SERVICE });
export const metrics = new Metrics({ namespace: "FhirLakehouse", serviceName: SERVICE });
export const tracer = new Tracer({ serviceName: SERVICE, captureHTTPsRequests: false });

/** The library's log interface over the Powertools logger (fields are ids, counts, timings). */
export const extractorLog: ExtractorLog = {
  info: (message, fields) => logger.info(message, { ...fields }),
  warn: (message, fields) => logger.warn(message, { ...fields }),
};

let cached: { key: string; deps: Promise<ExtractorDeps> } | undefined;

/** A queue that refuses: worker functions never enqueue. */
const NO_QUEUE: UnitQueue = {
  enqueue: async () => {
    throw new Error("this function has no work queue");
  },
  depth: async () => ({ pending: 0, deadLettered: 0 }),
};

async function build(env: FunctionEnvironment, withQueues: boolean): Promise<ExtractorDeps> {
  const config = env.config;
  const { settings, http } = settingsFromConfig(config.extraction as PipelineConfig["extraction"]);
  let queue: UnitQueue = NO_QUEUE;
  if (withQueues) {
    const download = env.downloadQueueUrl!;
    const search = env.searchQueueUrl!;
    queue = new SqsUnitQueue(
      await awsSqs(),
      (u: WorkUnit) => (u.kind === "bulk-file" ? download : search),
      [download, search],
      [env.downloadDlqUrl, env.searchDlqUrl].filter((x): x is string => !!x),
    );
  }
  // Every concurrent copy of a worker gets an equal share of the one rate budget.
  const share = Math.max(1, config.extraction.concurrency);
  return createExtractorDeps({
    connection: connectionFromConfig(config.epic, env.epicPrivateKeySecretArn),
    bronzeUri: env.bronzeUri!,
    queue,
    settings,
    http: { ...http, rateLimitPerSecond: http.rateLimitPerSecond! / share },
    log: extractorLog,
  });
}

/**
 * The container's ExtractorDeps. `queues`: the function sends units (FanOut, CheckDrained) and
 * needs the queue URLs.
 */
export function extractorDeps(queues: boolean): Promise<ExtractorDeps> {
  const required: FunctionEnvName[] = ["bronzeUri", "epicPrivateKeySecretArn"];
  if (queues) required.push("downloadQueueUrl", "searchQueueUrl");
  const env = readFunctionEnvironment(required);
  const key = `${queues}`;
  if (!cached || cached.key !== key) {
    cached = { key, deps: build(env, queues) };
    cached.deps.catch(() => {
      cached = undefined;
    });
  }
  return cached.deps;
}

/** Drops the cached deps (tests). */
export function resetExtractorDeps(): void {
  cached = undefined;
}
