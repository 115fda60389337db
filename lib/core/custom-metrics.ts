// The custom CloudWatch metrics the monitoring stack alarms on, and so the names their producers
// must use. They arrive as EMF from MetricsCollector (lib/core/metrics.ts): namespace
// FhirLakehouse, dimensions { service: "fhir-pipeline", step }, metric names from STEP_METRICS.
import { STEP_METRICS } from "./metrics";

export const CUSTOM_METRICS_NAMESPACE = "FhirLakehouse";
export const CUSTOM_METRICS_SERVICE = "fhir-pipeline";

/**
 * The step name the extractor workers (download-file, search-worker) record their work under, so
 * their resources/s is one metric across both modes: `new MetricsCollector({ step: EXTRACT_STEP, sink: "lake+emf", ... })`.
 */
export const EXTRACT_STEP = "extract";

/** Extracted resources per second (records/s of the extract step): alarmed below its anomaly band. */
export const EXTRACTION_THROUGHPUT_METRIC = {
  namespace: CUSTOM_METRICS_NAMESPACE,
  metricName: STEP_METRICS.throughput,
  dimensions: { service: CUSTOM_METRICS_SERVICE, step: EXTRACT_STEP },
} as const;
