// `fhir-pipeline run --env NAME`: starts the deployed state machine (the same definition a local
// run executes in-process), follows it with the shared progress display, then records the run's
// cost in the metrics contract. `--detach` only starts it.
import { newRunId as newRunIdCore } from "../core/run-id";
import { StartExecutionCommand } from "@aws-sdk/client-sfn";
import type { RunInput } from "../core/pipeline-steps";
import { createProgressRenderer, type ProgressSink } from "../core/progress";
import { AwsClients } from "./clients";
import { resolveEnvironment, type DeployedEnvironment } from "./environment";
import { withOperatorErrors } from "./errors";
import { followExecution, type FollowResult } from "./execution-follower";
import { s3LakeObjects } from "./lake-objects";
import { completeRunCost, type CompletedRunCost } from "./run-cost";
import { describeStageSummary } from "./spark-progress";

export interface RunInAwsOptions {
  envName: string;
  region?: string;
  outputsFile?: string;
  /** Start the execution, print its id and return without following it. */
  detach?: boolean;
  /** Quiet progress, one JSON summary on stdout. */
  json?: boolean;
  /** Execution input (mode, resource types, since). */
  input?: RunInput;
  /** Poll interval while following (ms). */
  pollIntervalMs?: number;
  /** Injected by tests and by callers that already hold clients. */
  clients?: AwsClients;
  sink?: ProgressSink;
  /** Where the summary goes (default process.stdout). */
  out?: NodeJS.WritableStream;
}

export interface RunInAwsResult {
  runId: string;
  executionArn: string;
  detached: boolean;
  follow?: FollowResult;
  cost?: CompletedRunCost;
}

/** A run id that is also the execution name: run-20250102T020000123Z-000-1a2b3c. */
export function newRunId(now = new Date()): string {
  return newRunIdCore(now, "run-");
}

export async function startRun(clients: AwsClients, env: DeployedEnvironment, input: RunInput = {}, runId = newRunId()) {
  const started = await clients.stepFunctions.send(
    new StartExecutionCommand({ stateMachineArn: env.stateMachineArn, name: runId, input: JSON.stringify(input) }),
  );
  return { runId, executionArn: started.executionArn! };
}

function summaryLines(result: RunInAwsResult): string[] {
  const f = result.follow!;
  const lines = [`run ${result.runId}: ${f.status}${f.durationSeconds !== undefined ? ` in ${f.durationSeconds.toFixed(0)} s` : ""}`];
  if (f.error) lines.push(`  error: ${f.error}`);
  for (const job of f.jobs) {
    const u = job.usage.billed;
    lines.push(
      `  ${job.step}: ${job.usage.state}${u ? `, billed ${u.vCPUHour.toFixed(3)} vCPU-h, ${u.memoryGBHour.toFixed(3)} GB-h memory, ${u.storageGBHour.toFixed(3)} GB-h storage` : ""}`,
    );
    if (job.stages) lines.push(`    spark: ${describeStageSummary(job.stages)}`);
  }
  if (result.cost) lines.push(`  estimated cost: ${result.cost.summary}`);
  return lines;
}

/** Starts (and unless detached, follows) a run of a deployed environment. */
export async function runInAws(options: RunInAwsOptions): Promise<RunInAwsResult> {
  const clients = options.clients ?? new AwsClients({ region: options.region });
  const out = options.out ?? process.stdout;
  const ctx = { envName: options.envName, region: options.region };
  try {
    return await withOperatorErrors(ctx, async () => {
      const env = await resolveEnvironment({ envName: options.envName, outputsFile: options.outputsFile, clients });
      const { runId, executionArn } = await startRun(clients, env, options.input ?? {});
      if (options.detach) {
        out.write(options.json ? JSON.stringify({ runId, executionArn }) + "\n" : `${executionArn}\n`);
        return { runId, executionArn, detached: true };
      }
      const sink = options.sink ?? createProgressRenderer({ json: options.json });
      let follow: FollowResult;
      try {
        follow = await followExecution({
          clients,
          executionArn,
          queueUrls: env.queueUrls,
          sink,
          pollIntervalMs: options.pollIntervalMs,
          sparkMetrics: { objects: s3LakeObjects(clients), lakeRoot: `s3://${env.buckets.metrics}` },
        });
      } finally {
        sink.close();
      }
      // PublishMetrics recorded the EMR and Lambda parts; the history adds the Step Functions part.
      const cost = await completeRunCost({ clients, env, run: follow });
      const result: RunInAwsResult = { runId, executionArn, detached: false, follow, cost };
      if (options.json) {
        out.write(
          JSON.stringify({
            runId,
            executionArn,
            status: follow.status,
            durationSeconds: follow.durationSeconds,
            error: follow.error,
            jobs: follow.jobs.map((j) => ({
              step: j.step,
              jobRunId: j.usage.jobRunId,
              state: j.usage.state,
              billed: j.usage.billed,
              total: j.usage.total,
              stages: j.stages,
            })),
            cost: cost.cost,
          }) + "\n",
        );
      } else {
        out.write(summaryLines(result).join("\n") + "\n");
      }
      return result;
    });
  } finally {
    if (!options.clients) clients.destroy();
  }
}
