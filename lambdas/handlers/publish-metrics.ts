// PublishMetrics: the run's extraction metrics from its manifest, to the metrics contract
// (Parquet under the lake) and CloudWatch (EMF).
import type { PublishMetricsInput, PublishMetricsOutput } from "../../lib/core/pipeline-steps";
import { readFunctionEnvironment } from "../../lib/core/function-environment";
import { storageFor } from "../../lib/core/storage";
import { publishExtractMetrics } from "../extractor/extract-metrics";
import { metrics } from "./handler-runtime";

export async function handler(event: PublishMetricsInput): Promise<PublishMetricsOutput> {
  const env = readFunctionEnvironment(["bronzeUri", "metricsUri"]);
  const lakeRoot = env.metricsUri!.replace(/\/+metrics\/?$/, "");
  return publishExtractMetrics(event, {
    bronzeUri: env.bronzeUri!,
    lakeRoot,
    storage: storageFor(env.bronzeUri!),
    sink: "lake+emf",
    emf: metrics,
  });
}
