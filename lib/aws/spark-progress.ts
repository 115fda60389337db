// Spark progress of a run in the cloud, as far as it can be had. EMR Serverless exposes no stage or
// task API (GetJobRun gives the job's state and resource use only; the Spark UI is a separate
// dashboard URL). What the CLI can read is what the Spark jobs write to the metrics contract: the
// spark-jobs metrics collector records each stage (spark.stage.* rows: duration, tasks, input,
// shuffle, spill) and the step's records, and writes them when it flushes, which the silver, gold
// and maintenance jobs do at their end. So while following, a job's stage summary appears when its
// metrics file appears (in practice as the job finishes), read through the lake's storage module.
import { decodeMetricsParquet, STEP_METRICS, type MetricRecord } from "../core/metrics";
import { formatBytes } from "./cost";
import type { LakeObjects } from "./lake-objects";
import { listMetricsFiles, runStepFilePrefix } from "./run-metrics";

export interface SparkStageSummary {
  /** Stage attempts recorded (spark.stage.duration rows). */
  stages: number;
  failedStages: number;
  /** Tasks of those stages (attribute num_tasks). */
  tasks: number;
  inputBytes: number;
  shuffleBytes: number;
  spillBytes: number;
  /** The step's records (step_records), once the job recorded it. */
  records?: number;
  /** The step's wall time (step_total), once recorded. */
  seconds?: number;
}

/** Pure: the stage summary of one Spark step's metrics rows. */
export function sparkStageSummary(rows: readonly MetricRecord[]): SparkStageSummary {
  const sum = (name: string) => rows.filter((r) => r.name === name).reduce((s, r) => s + r.value, 0);
  const stages = rows.filter((r) => r.name === "spark.stage.duration");
  const records = rows.filter((r) => r.name === STEP_METRICS.records);
  const seconds = rows.find((r) => r.name === STEP_METRICS.runtime)?.value;
  return {
    stages: stages.length,
    failedStages: stages.filter((r) => r.attributes.status === "FAILED").length,
    tasks: stages.reduce((s, r) => s + Number(r.attributes.num_tasks ?? 0), 0),
    inputBytes: sum("spark.stage.input_bytes"),
    shuffleBytes: sum("spark.stage.shuffle_read_bytes"),
    spillBytes: sum("spark.stage.memory_spilled_bytes") + sum("spark.stage.disk_spilled_bytes"),
    records: records.length ? records.reduce((s, r) => s + r.value, 0) : undefined,
    seconds,
  };
}

/** Pure: one line of a stage summary, e.g. "14 stages (412 tasks), read 1.2 GB, shuffled 310.0 MB, 52000 records". */
export function describeStageSummary(s: SparkStageSummary): string {
  const parts = [
    `${s.stages} stages (${s.tasks} tasks${s.failedStages ? `, ${s.failedStages} failed` : ""})`,
    `read ${formatBytes(s.inputBytes)}`,
  ];
  if (s.shuffleBytes) parts.push(`shuffled ${formatBytes(s.shuffleBytes)}`);
  if (s.spillBytes) parts.push(`spilled ${formatBytes(s.spillBytes)}`);
  if (s.records !== undefined) parts.push(`${s.records} records`);
  return parts.join(", ");
}

/**
 * Reads the metrics files a run's Spark steps write, each file once: `poll(step)` returns the step's
 * rows read so far, with whatever files appeared since the last poll.
 */
export class SparkMetricsWatcher {
  private readonly seen = new Set<string>();
  private readonly rows = new Map<string, MetricRecord[]>();

  constructor(
    private readonly objects: LakeObjects,
    private readonly lakeRoot: string,
    private readonly runId: string,
  ) {}

  /** The step's rows so far, and whether new ones arrived in this poll. */
  async poll(step: string): Promise<{ rows: MetricRecord[]; changed: boolean }> {
    const prefix = runStepFilePrefix(this.runId, step);
    const files = await listMetricsFiles(this.objects, this.lakeRoot, (n) => n.startsWith(prefix));
    const rows = this.rows.get(step) ?? [];
    let changed = false;
    for (const uri of files) {
      if (this.seen.has(uri)) continue;
      this.seen.add(uri);
      rows.push(...decodeMetricsParquet(await this.objects.read(uri)).filter((r) => r.runId === this.runId && r.step === step));
      changed = true;
    }
    this.rows.set(step, rows);
    return { rows, changed };
  }
}
