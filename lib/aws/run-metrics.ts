// Reads the metrics contract of a deployed environment (s3://{metrics bucket}/metrics/
// performance_metrics/part-{run}-{step}-{uuid}.parquet): the rows of one run, or of the cost step
// of many runs. File names carry the run and step, so only the files needed are read.
import { decodeMetricsParquet, metricsDirUri, STEP_METRICS, type MetricRecord } from "../core/metrics";
import type { LakeObjects } from "./lake-objects";

const safe = (s: string) => s.replace(/[^A-Za-z0-9._=-]/g, "_");

/** The file-name prefix of one run's files of one step (lib/core/metrics.ts metricsFileName). */
export function runStepFilePrefix(runId: string, step: string): string {
  return `part-${safe(runId)}-${safe(step)}-`;
}

function fileName(uri: string): string {
  return uri.slice(uri.lastIndexOf("/") + 1);
}

/** The metrics files whose names match `accept(fileName)`. */
export async function listMetricsFiles(objects: LakeObjects, lakeRoot: string, accept: (name: string) => boolean): Promise<string[]> {
  return (await objects.list(metricsDirUri(lakeRoot))).filter((u) => u.endsWith(".parquet") && accept(fileName(u)));
}

/** Every metrics row of the runs whose files match `accept(fileName)`. */
async function readMatching(objects: LakeObjects, lakeRoot: string, accept: (name: string) => boolean): Promise<MetricRecord[]> {
  const files = await listMetricsFiles(objects, lakeRoot, accept);
  const rows: MetricRecord[] = [];
  for (const uri of files) rows.push(...decodeMetricsParquet(await objects.read(uri)));
  return rows;
}

/** The metrics rows of one run (all steps). */
export async function readRunMetrics(objects: LakeObjects, lakeRoot: string, runId: string): Promise<MetricRecord[]> {
  const prefix = `part-${safe(runId)}-`;
  const rows = await readMatching(objects, lakeRoot, (n) => n.startsWith(prefix));
  return rows.filter((r) => r.runId === runId);
}

/** The metrics rows of several runs, by run id, from one listing of the metrics directory. */
export async function readRunsMetrics(
  objects: LakeObjects,
  lakeRoot: string,
  runIds: readonly string[],
): Promise<Map<string, MetricRecord[]>> {
  const prefixes = runIds.map((id) => [id, `part-${safe(id)}-`] as const);
  const wanted = new Set(runIds);
  const rows = await readMatching(objects, lakeRoot, (n) => prefixes.some(([, p]) => n.startsWith(p)));
  const out = new Map<string, MetricRecord[]>(runIds.map((id) => [id, []]));
  for (const r of rows) if (wanted.has(r.runId)) out.get(r.runId)!.push(r);
  return out;
}

/** The metrics rows of one step across runs (e.g. the cost step of every run). */
export async function readStepMetrics(objects: LakeObjects, lakeRoot: string, step: string): Promise<MetricRecord[]> {
  const marker = `-${safe(step)}-`;
  const rows = await readMatching(objects, lakeRoot, (n) => n.includes(marker));
  return rows.filter((r) => r.step === step);
}

/** Pure: records processed per step (the steps' canonical `step_records` count), e.g. { extract: 1200, silver: 1180 }. */
export function recordsPerStep(rows: readonly MetricRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) if (r.name === STEP_METRICS.records) out[r.step] = (out[r.step] ?? 0) + r.value;
  return out;
}
