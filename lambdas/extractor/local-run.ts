// A whole extraction in one process: the same step functions the Lambdas run, with an in-memory
// queue and a worker pool instead of SQS and the worker Lambdas. Used by `fhir-pipeline extract`
// (and by anything that wants bronze from a FHIR server without AWS). Bulk jobs are DELETEd at
// the end whatever happens.
import type { RunContext, RunInput } from "../../lib/core/pipeline-steps";
import { normalizeUri } from "../../lib/core/storage";
import type { FhirResourceType } from "../../config/schema";
import type { ExtractorDeps } from "./extractor-deps";
import { processUnit, recordUnitFailure } from "./process-unit";
import { newRunId, readRunManifest, type RunManifest } from "./run-records";
import { checkDrained, deleteBulkJobs, fanOut, fanOutFiles, finalizeRun, kickOff, pollStatus } from "./steps";
import { LocalUnitQueue } from "./unit-queue";
import type { WorkUnit } from "./work-units";

export interface LocalExtractOptions {
  mode: "bulk" | "search" | "files";
  groupIds: string[];
  types?: string[];
  /** "auto", an ISO instant, or absent. */
  since?: string;
  /** files mode: directory (path, file:// or s3://) of *.ndjson files. */
  source?: string;
  /** search mode: patients to crawl instead of the groups' members. */
  patientIds?: string[];
  runId?: string;
  /** Sleep between status polls (default: as the server's Retry-After says). */
  sleep?: (ms: number) => Promise<void>;
}

export interface ExtractSummary {
  runId: string;
  resources: Record<string, number>;
  rejected: number;
  /** Bytes of resource text received (decoded). */
  bytes: number;
  seconds: number;
  manifest: RunManifest;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Drains the local queue with `concurrency` workers; a unit that fails after its retries is recorded as failed. */
export async function drainLocalQueue(queue: LocalUnitQueue, deps: ExtractorDeps, concurrency: number): Promise<void> {
  const worker = async (): Promise<void> => {
    for (;;) {
      const unit: WorkUnit | undefined = queue.take();
      if (!unit) return;
      try {
        await processUnit(unit, deps);
      } catch (e) {
        deps.log.warn("unit failed", { runId: unit.runId, unitId: unit.unitId, error: (e as Error).name, message: (e as Error).message });
        await recordUnitFailure(unit, e, deps);
      } finally {
        queue.done();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}

export async function runExtraction(opts: LocalExtractOptions, deps: ExtractorDeps): Promise<ExtractSummary> {
  if (!(deps.queue instanceof LocalUnitQueue)) throw new Error("runExtraction needs a LocalUnitQueue");
  const queue = deps.queue;
  const sleep = opts.sleep ?? defaultSleep;
  const t0 = Date.now();
  const startedAt = new Date(t0).toISOString();
  const request: RunInput = {};
  if (opts.mode !== "files") request.mode = opts.mode;
  if (opts.types) request.resourceTypes = opts.types as FhirResourceType[];
  if (opts.since) request.since = opts.since;
  const run: RunContext = {
    runId: opts.runId ?? newRunId(new Date(t0)),
    startedAt,
    mode: opts.mode === "files" ? "bulk" : opts.mode,
    groupIds: opts.mode === "files" ? [] : opts.groupIds,
    request,
  };
  const timings: Record<string, number> = {};
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const s = Date.now();
    try {
      return await fn();
    } finally {
      timings[`${name}Seconds`] = (timings[`${name}Seconds`] ?? 0) + (Date.now() - s) / 1000;
    }
  };
  deps.progress?.emit({ kind: "run", status: "started", runId: run.runId });
  let manifest: RunManifest;
  try {
    if (opts.mode === "files") {
      if (!opts.source) throw new Error("files mode needs a source directory");
      await fanOutFiles(run, normalizeUri(opts.source), deps);
      await phase("ingest", () => drainLocalQueue(queue, deps, deps.settings.concurrency));
      manifest = await finalizeRun(run, deps, { source: opts.source, timings });
    } else {
      if (opts.mode === "bulk") {
        // Each group's export runs while the others are polled, as the state machine's Map does.
        await phase("export", () =>
          Promise.all(
            run.groupIds.map(async (groupId) => {
              let state = await kickOff({ run, groupId }, deps);
              deps.progress?.emit({ kind: "note", text: `bulk export of group ${run.groupIds.indexOf(groupId) + 1} started` });
              while (state.state !== "complete") {
                const polled = await pollStatus({ run, groupId, export: state }, deps);
                if (polled.state !== "complete") {
                  if (polled.progress) deps.progress?.emit({ kind: "note", text: `export ${polled.progress}` });
                  await sleep(polled.retryAfterMs ?? polled.retryAfterSeconds * 1000);
                }
                state = polled;
              }
            }),
          ),
        );
      }
      for (const groupId of run.groupIds) await fanOut({ run, groupId }, deps, { patientIds: opts.patientIds });
      for (;;) {
        await phase(opts.mode === "bulk" ? "download" : "crawl", () => drainLocalQueue(queue, deps, deps.settings.concurrency));
        const drain = await checkDrained({ run, groups: [] }, deps, 1, { timings });
        if (drain.state === "drained") break;
        if (drain.state === "failed") {
          const err = new Error(
            `${drain.unitsFailed} of ${drain.unitsEnqueued} work units failed after retries (see ${deps.bronzeUri}/_runs/${run.runId}/units/*.failed.json)`,
          );
          err.name = "UnitsFailed";
          throw err;
        }
        if (queue.size === 0) throw new Error("the run is not drained but nothing is queued");
      }
      manifest = (await readRunManifest(deps.storage, deps.bronzeUri, run.runId))!;
    }
  } catch (e) {
    await deleteBulkJobs(run, deps);
    deps.progress?.emit({ kind: "run", status: "failed", runId: run.runId, detail: (e as Error).name });
    throw e;
  } finally {
    deps.counters?.flush();
  }
  deps.progress?.emit({ kind: "run", status: "succeeded", runId: run.runId });
  const resources: Record<string, number> = {};
  for (const [t, n] of Object.entries(manifest.resources)) if (n > 0) resources[t] = n;
  return {
    runId: run.runId,
    resources,
    rejected: manifest.rejects.total,
    bytes: manifest.inputBytes,
    seconds: (Date.now() - t0) / 1000,
    manifest,
  };
}
