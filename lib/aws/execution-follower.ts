// Follows one Step Functions execution of the pipeline to its end and feeds the progress display:
// state transitions from GetExecutionHistory, EMR Serverless job states and resource use from
// GetJobRun, the work queue's depth (SQS GetQueueAttributes) while extraction runs, and each Spark
// job's stage summary from the metrics it writes to the lake (lib/aws/spark-progress.ts says what
// that can and cannot show).
import { DescribeExecutionCommand, GetExecutionHistoryCommand, type HistoryEvent } from "@aws-sdk/client-sfn";
import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { setTimeout as sleep } from "node:timers/promises";
import type { ProgressSink } from "../core/progress";
import type { AwsClients } from "./clients";
import { EMR_TERMINAL_STATES, getJobRunUsage, type JobRunUsage } from "./emr-jobs";
import { EXTRACTION_STATES, interpretHistory } from "./execution-history";
import type { LakeObjects } from "./lake-objects";
import { describeStageSummary, SparkMetricsWatcher, sparkStageSummary, type SparkStageSummary } from "./spark-progress";

export type ExecutionStatus = "RUNNING" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED" | "PENDING_REDRIVE";

export interface FollowOptions {
  clients: AwsClients;
  executionArn: string;
  /** Queue URLs to watch during extraction, by role. */
  queueUrls?: Record<string, string>;
  sink: ProgressSink;
  /** Delay between polls (default 5 s; the API rate limits are far above one poll per second). */
  pollIntervalMs?: number;
  signal?: AbortSignal;
  /** Where the Spark jobs write their metrics (lake root, s3://metrics-bucket), read through `objects`. */
  sparkMetrics?: { objects: LakeObjects; lakeRoot: string; /** Between reads while a job runs (default 60 s). */ intervalMs?: number };
}

export interface FollowedJob {
  step: string;
  usage: JobRunUsage;
  /** Stage summary from the job's metrics in the lake, once it wrote them. */
  stages?: SparkStageSummary;
}

export interface FollowResult {
  executionArn: string;
  runId: string;
  status: ExecutionStatus;
  startedAt?: Date;
  stoppedAt?: Date;
  durationSeconds?: number;
  error?: string;
  cause?: string;
  /** EMR Serverless jobs the run started, by Spark step (silver, gold, maintenance), last known usage. */
  jobs: FollowedJob[];
  /** Every history event, ascending (for cost: state transitions). */
  history: HistoryEvent[];
}

/**
 * New history events since `afterId`, ascending. Reads newest first and stops at a page that
 * reaches known events, so a long run is not re-read on every poll; an endpoint that ignores
 * reverseOrder (and answers everything in one page) works too.
 */
export async function historySince(clients: AwsClients, executionArn: string, afterId: number): Promise<HistoryEvent[]> {
  const fresh: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await clients.stepFunctions.send(
      new GetExecutionHistoryCommand({ executionArn, reverseOrder: true, maxResults: 1000, nextToken, includeExecutionData: true }),
    );
    const events = page.events ?? [];
    fresh.push(...events.filter((e) => (e.id ?? 0) > afterId));
    if (events.some((e) => (e.id ?? 0) <= afterId)) break;
    nextToken = page.nextToken;
  } while (nextToken);
  return fresh.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
}

/** Follows the execution until it stops (or `signal` aborts), emitting progress on the way. */
export async function followExecution(options: FollowOptions): Promise<FollowResult> {
  const { clients, executionArn, sink } = options;
  const pollMs = options.pollIntervalMs ?? 5000;
  const stateOfEvent = new Map<number, string>();
  const jobs = new Map<string, FollowedJob>();
  let watcher: SparkMetricsWatcher | undefined;
  const lastMetricsRead = new Map<string, number>();
  const metricsRead = new Set<string>();
  const history: HistoryEvent[] = [];
  let lastId = 0;
  let currentState: string | undefined;
  let runId = executionArn.split(":").pop() ?? executionArn;
  let announced = false;

  for (;;) {
    const described = await clients.stepFunctions.send(new DescribeExecutionCommand({ executionArn }));
    runId = described.name ?? runId;
    if (!announced) {
      sink.emit({ kind: "run", status: "started", runId, at: described.startDate?.getTime() });
      announced = true;
      if (options.sparkMetrics) watcher = new SparkMetricsWatcher(options.sparkMetrics.objects, options.sparkMetrics.lakeRoot, runId);
    }
    const status = (described.status ?? "RUNNING") as ExecutionStatus;

    const events = await historySince(clients, executionArn, lastId);
    if (events.length) {
      lastId = events[events.length - 1].id ?? lastId;
      history.push(...events);
    }
    for (const fact of interpretHistory(events, stateOfEvent)) {
      if (fact.kind === "state") {
        if (fact.status === "entered") currentState = fact.name;
        sink.emit({ kind: "state", name: fact.name, status: fact.status, detail: fact.detail });
      } else if (fact.kind === "emr-job" && !jobs.has(fact.jobRunId)) {
        jobs.set(fact.jobRunId, {
          step: fact.step,
          usage: { applicationId: fact.applicationId, jobRunId: fact.jobRunId, state: "SUBMITTED" },
        });
        sink.emit({ kind: "job", name: fact.step, id: fact.jobRunId, state: "SUBMITTED" });
      } else if (fact.kind === "drain") {
        sink.emit({
          kind: "counter",
          group: "extract",
          key: "work units",
          done: fact.status.unitsDone,
          total: fact.status.unitsEnqueued,
          unit: "units",
        });
      }
    }

    for (const job of jobs.values()) {
      if (EMR_TERMINAL_STATES.has(job.usage.state) && job.usage.billed && (!watcher || metricsRead.has(job.usage.jobRunId))) continue;
      const before = job.usage.state;
      if (!(EMR_TERMINAL_STATES.has(before) && job.usage.billed)) {
        job.usage = await getJobRunUsage(clients, job.usage.applicationId, job.usage.jobRunId);
        const used = job.usage.total ?? job.usage.billed;
        const detail = used ? `${used.vCPUHour.toFixed(3)} vCPU-h, ${used.memoryGBHour.toFixed(3)} GB-h` : undefined;
        sink.emit({
          kind: "job",
          name: job.step,
          id: job.usage.jobRunId,
          state: job.usage.state,
          detail: job.usage.stateDetails ?? detail,
        });
      }
      // The job's stage metrics: read when it ends, and at most every intervalMs while it runs.
      const ended = EMR_TERMINAL_STATES.has(job.usage.state);
      const due = Date.now() - (lastMetricsRead.get(job.usage.jobRunId) ?? 0) >= (options.sparkMetrics?.intervalMs ?? 60_000);
      if (watcher && (ended || (job.usage.state === "RUNNING" && due))) {
        lastMetricsRead.set(job.usage.jobRunId, Date.now());
        // The jobs write their metrics before they end, so one read after the end sees them all.
        if (ended) metricsRead.add(job.usage.jobRunId);
        const { rows, changed } = await watcher.poll(job.step);
        if (changed) {
          job.stages = sparkStageSummary(rows);
          sink.emit({
            kind: "job",
            name: job.step,
            id: job.usage.jobRunId,
            state: job.usage.state,
            completedTasks: job.stages.tasks,
            // The recorded stages are finished ones: the total is known only once the job ended.
            totalTasks: ended ? job.stages.tasks : undefined,
            detail: describeStageSummary(job.stages),
          });
        }
      }
    }

    if (status === "RUNNING" && currentState && EXTRACTION_STATES.has(currentState)) {
      for (const [role, url] of Object.entries(options.queueUrls ?? {})) {
        const attrs = await clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: url,
            AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
          }),
        );
        sink.emit({
          kind: "queue",
          name: role,
          visible: Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0),
          inFlight: Number(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
        });
      }
    }

    if (status !== "RUNNING") {
      const outcome =
        status === "SUCCEEDED" ? "succeeded" : status === "ABORTED" ? "aborted" : status === "TIMED_OUT" ? "timed-out" : "failed";
      sink.emit({ kind: "run", status: outcome, runId, detail: described.error, at: described.stopDate?.getTime() });
      const startedAt = described.startDate;
      const stoppedAt = described.stopDate;
      return {
        executionArn,
        runId,
        status,
        startedAt,
        stoppedAt,
        durationSeconds: startedAt && stoppedAt ? (stoppedAt.getTime() - startedAt.getTime()) / 1000 : undefined,
        error: described.error,
        cause: described.cause,
        jobs: [...jobs.values()],
        history,
      };
    }
    await sleep(pollMs, undefined, { signal: options.signal });
  }
}
