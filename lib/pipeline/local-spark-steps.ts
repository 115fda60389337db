// The local implementations of the Spark Tasks (SilverJob, GoldJob, Maintenance): where AWS would
// start an EMR Serverless job with the Task's Parameters, the local run hands the same
// EntryPointArguments to the run's local Spark process (spark-step-server.ts), on the work dir's
// SQLite Iceberg catalog, with config.processing.localSpark instead of SparkSubmitParameters.
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import { MetricsCollector, metricsDirUri } from "../core/metrics";
import type { ProgressSink } from "../core/progress";
import { SPARK_STEPS, type SparkJobInput, type SparkJobOutput, type SparkStepName } from "../core/pipeline-steps";
import type { SparkJobReply, SparkStepServer } from "./spark-step-server";

/** What the local run keeps of each Spark job (the summary reads the jobs' JSON results). */
export interface SparkJobRecord {
  step: SparkStepName;
  job: string;
  runId: string;
  attempt: number;
  seconds: number;
  output: unknown;
}

export const LOCAL_APPLICATION_ID = "local-spark";

function argValue(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** A compact, JSON-safe digest of a job's result for the execution state (no big payloads). */
function digest(output: unknown): Record<string, unknown> {
  if (!output || typeof output !== "object") return {};
  const o = output as Record<string, unknown>;
  const keep: Record<string, unknown> = {};
  if (o.totals && typeof o.totals === "object") keep.totals = o.totals;
  if (typeof o.seconds === "number") keep.seconds = o.seconds;
  return keep;
}

/** Metric files a job wrote for a run (the collectors name them part-{run}-{step}-{uuid}.parquet). */
function jobMetricFiles(lakeUri: string, runId: string, job: string): string[] {
  const dir = fileURLToPath(metricsDirUri(lakeUri));
  if (!fs.existsSync(dir)) return [];
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._=-]/g, "_");
  const prefix = `part-${safe(runId)}-${safe(job)}-`;
  return fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith(".parquet"));
}

/**
 * Task handlers for the three Spark states, keyed by state name, for
 * `overrides.taskResourceLocalHandlers`. Each returns what the EMR integration returns
 * (ApplicationId, JobRunId) plus the local measurements.
 */
export function localSparkSteps(
  server: SparkStepServer,
  progress: ProgressSink,
  records: SparkJobRecord[],
  lakeUri: string,
): Record<SparkStepName, (input: SparkJobInput) => Promise<SparkJobOutput>> {
  const attempts = new Map<string, number>();
  const handler =
    (step: SparkStepName) =>
    async (input: SparkJobInput): Promise<SparkJobOutput> => {
      const argv = input.JobDriver.SparkSubmit.EntryPointArguments;
      const job = SPARK_STEPS[step];
      if (argv[0] !== job) throw new Error(`${step} was given the arguments of the ${argv[0]} job`);
      const runId = argValue(argv, "--run-id") ?? "";
      const attempt = (attempts.get(step) ?? 0) + 1;
      attempts.set(step, attempt);
      const jobRunId = `${job}-${runId}-${attempt}`;
      progress.emit({ kind: "job", name: job, id: jobRunId, state: "PENDING", detail: "waiting for the local Spark session" });
      const filesBefore = jobMetricFiles(lakeUri, runId, job).length;
      let reply: SparkJobReply;
      try {
        reply = await server.runJob(argv, (p) =>
          progress.emit({
            kind: "job",
            name: job,
            id: jobRunId,
            state: "RUNNING",
            completedTasks: p.completedTasks,
            totalTasks: p.totalTasks,
            detail: `${p.stagesDone} stages done${p.stage ? `, ${p.stage}` : ""}`,
          }),
        );
      } catch (err) {
        progress.emit({ kind: "job", name: job, id: jobRunId, state: "FAILED" });
        throw err;
      }
      progress.emit({ kind: "job", name: job, id: jobRunId, state: "SUCCESS", detail: `${(reply.seconds ?? 0).toFixed(1)} s` });
      records.push({ step, job, runId, attempt, seconds: reply.seconds ?? 0, output: reply.output });
      // Every stage writes metrics: a job that recorded none gets its step time recorded here.
      if (jobMetricFiles(lakeUri, runId, job).length === filesBefore) {
        const m = new MetricsCollector({ runId, step: job, lakeRoot: lakeUri });
        m.recordStep({ seconds: reply.seconds ?? 0 }, { recorded_by: "local-run" });
        await m.flush();
      }
      return { ApplicationId: LOCAL_APPLICATION_ID, JobRunId: jobRunId, seconds: reply.seconds ?? 0, ...digest(reply.output) };
    };
  return { SilverJob: handler("SilverJob"), GoldJob: handler("GoldJob"), Maintenance: handler("Maintenance") };
}
