// The extraction's performance metrics (the metrics contract: Parquet under {lake}/metrics, and
// CloudWatch EMF in the cloud), computed from the run manifest: runtime, resources and bytes per
// type, throughput, rejects, units. Called by the PublishMetrics Lambda and by local runs.
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { MetricsCollector } from "../../lib/core/metrics";
import type { PublishMetricsOutput, RunContext } from "../../lib/core/pipeline-steps";
import { storageFor, type Storage } from "../../lib/core/storage";
import { readRunManifest, type RunManifest } from "./run-records";

export interface ExtractMetricsTarget {
  bronzeUri: string;
  /** The lake root: metrics go to {lakeRoot}/metrics/performance_metrics/. */
  lakeRoot: string;
  storage: Storage;
  sink?: "lake" | "emf" | "lake+emf";
  emf?: Metrics;
}

/** Records the extract step's metrics of a finished run into a collector. */
export function recordExtractMetrics(m: RunManifest, c: MetricsCollector): number {
  const total = Object.values(m.resources).reduce((a, b) => a + b, 0);
  const seconds = m.timings.totalSeconds;
  c.recordStep({ records: total, bytes: m.inputBytes, seconds }, { mode: m.mode });
  for (const [phase, s] of Object.entries(m.timings))
    if (phase !== "totalSeconds" && Number.isFinite(s)) c.record(`extract_${phase.replace(/Seconds$/, "")}`, "RUNTIME", s, "s");
  for (const [t, n] of Object.entries(m.resources)) {
    c.count("extract_resources", n, { resource_type: t });
    c.bytes("extract_bytes", m.bytes[t] ?? 0, { resource_type: t });
  }
  if (seconds > 0) {
    c.throughput("extract_resources_per_second", total, seconds, "records/s");
    c.throughput("extract_bytes_per_second", m.inputBytes, seconds, "bytes/s");
  }
  c.bytes("extract_bronze_file_bytes", m.fileBytes);
  c.error("extract_rejects", m.rejects.total);
  for (const [reason, n] of Object.entries(m.rejects.byReason)) c.error("extract_rejects_by_reason", n ?? 0, { reason });
  c.count("extract_units", m.units.total);
  c.error("extract_units_failed", m.units.failed);
  c.count("extract_bulk_error_outcomes", m.errors.outcomes);
  c.count("extract_deleted_entries", m.deleted.length);
  return total;
}

/** PublishMetrics: reads the run manifest, writes its metrics, returns where they went. */
export async function publishExtractMetrics(input: { run: RunContext }, t: ExtractMetricsTarget): Promise<PublishMetricsOutput> {
  const m = await readRunManifest(t.storage, t.bronzeUri, input.run.runId);
  if (!m) throw new Error(`run ${input.run.runId} has no manifest: the extraction did not finish`);
  const c = new MetricsCollector({
    runId: input.run.runId,
    step: "extract",
    sink: t.sink ?? "lake",
    lakeRoot: t.lakeRoot,
    emf: t.emf,
    writer: (uri, bytes) => storageFor(uri).write(uri, bytes),
  });
  const resources = recordExtractMetrics(m, c);
  const metricsUri = (await c.flush()) ?? "";
  return { metricsUri, resources };
}
