// The extraction steps as plain async functions, one per Task of the state machine
// (lib/core/pipeline-steps.ts holds their input/output contracts). The Lambda handlers are thin
// wrappers over these; a local run calls them directly (with an in-memory queue and the
// in-process worker pool instead of SQS and the worker Lambdas).
//
//   kickOff       BulkKickOff     starts a group's export (resolves --since auto)
//   pollStatus    PollBulkStatus  one status poll; stores the manifest when complete
//   fanOut        FanOut          one work unit per output file (bulk) or per patient batch (search)
//   checkDrained  CheckDrained    every unit accounted for? (search: then reads shared resources);
//                                 when drained, writes the run manifest and deletes the bulk jobs
import type {
  BulkExportState,
  BulkKickOffInput,
  CheckDrainedInput,
  DrainStatus,
  FanOutInput,
  FanOutOutput,
  PollBulkStatusInput,
  RunContext,
} from "../../lib/core/pipeline-steps";
import * as path from "node:path";
import { LAKE_CONTRACT, bronzePartPath } from "../../lib/core/lake-contract";
import { joinUri, writeJson } from "../../lib/core/storage";
import { deleteExportJob, pollExportStatus, startGroupExport, type BulkManifest } from "./bulk/bulk-export";
import type { ExtractorDeps } from "./extractor-deps";
import type { RejectReason } from "./bronze/resource-row";
import {
  exportManifestUri,
  exportRecordUri,
  findSinceAuto,
  planUri,
  readExportManifest,
  readExportRecord,
  readPlans,
  readUnitRecords,
  runDirUri,
  writeRunManifest,
  type ExportRecord,
  type RunManifest,
  type UnitPlan,
  type UnitRecord,
} from "./run-records";
import { groupPatientIds, searchParamSets, SHARED_TYPES } from "./search/search-params";
import {
  UNITS_PER_GROUP,
  type BulkFileUnit,
  type NdjsonFileUnit,
  type SearchPatientsUnit,
  type SearchSharedUnit,
  type WorkUnit,
} from "./work-units";

/** The extra run facts a local run knows (files mode, an explicit patient list). */
export interface RunOptions {
  /** search mode: crawl these patients instead of the group's members. */
  patientIds?: string[];
}

export function ingestDateOf(run: RunContext): string {
  return run.startedAt.slice(0, 10);
}

export function groupIndexOf(run: RunContext, groupId: string): number {
  const i = run.groupIds.indexOf(groupId);
  if (i < 0) throw Object.assign(new Error(`group ${groupId} is not one of the run's groups`), { name: "ConfigurationError" });
  return i;
}

export function requestedTypes(run: RunContext, deps: ExtractorDeps): string[] {
  return [...(run.request.resourceTypes ?? deps.settings.resourceTypes)];
}

function configError(message: string): Error {
  const err = new Error(message);
  err.name = "ConfigurationError";
  return err;
}

/** The `_since` of a group's export: explicit, `auto` (last finished run), or none. */
export async function resolveSince(
  run: RunContext,
  groupId: string,
  types: string[],
  deps: ExtractorDeps,
): Promise<{ since: string | null; source: ExportRecord["sinceSource"] }> {
  const asked = run.request.since;
  if (!asked) return { since: null, source: null };
  if (asked === "auto") {
    const found = await findSinceAuto(deps.storage, deps.bronzeUri, groupId, types, run.runId);
    return found ? { since: found.since, source: "auto" } : { since: null, source: null };
  }
  if (Number.isNaN(Date.parse(asked)) || !/^\d{4}-\d{2}-\d{2}T/.test(asked))
    throw configError(`since must be "auto" or an ISO instant like 2025-01-01T00:00:00Z, not ${asked}`);
  return { since: asked, source: "explicit" };
}

// ---------------------------------------------------------------------------------------------

/** BulkKickOff: starts the group's export. */
export async function kickOff(input: BulkKickOffInput, deps: ExtractorDeps): Promise<BulkExportState> {
  const { run, groupId } = input;
  const groupIndex = groupIndexOf(run, groupId);
  const types = requestedTypes(run, deps);
  const { since, source } = await resolveSince(run, groupId, types, deps);
  const statusUrl = await startGroupExport(deps.http, deps.baseUrl, groupId, types, since ?? undefined);
  const kickedOffAt = new Date().toISOString();
  const record: ExportRecord = { groupId, groupIndex, statusUrl, kickedOffAt, since, sinceSource: source, types };
  await writeJson(deps.storage, exportRecordUri(deps.bronzeUri, run.runId, groupIndex), record);
  deps.log.info("bulk export started", { runId: run.runId, groupIndex, since, types: types.length });
  return { statusUrl, kickedOffAt, state: "in-progress", retryAfterSeconds: 1 };
}

/** PollBulkStatus: one poll. Complete: the manifest is stored and summarised. */
export async function pollStatus(input: PollBulkStatusInput, deps: ExtractorDeps): Promise<BulkExportState & { retryAfterMs?: number }> {
  const { run, groupId } = input;
  const groupIndex = groupIndexOf(run, groupId);
  let status;
  try {
    status = await pollExportStatus(deps.http, input.export.statusUrl);
  } catch (e) {
    // A failed export job is cleaned up at once.
    await deleteExportJob(deps.http, input.export.statusUrl);
    throw e;
  }
  if (status.state === "in-progress") {
    return {
      ...input.export,
      state: "in-progress",
      retryAfterSeconds: Math.min(3600, Math.max(1, Math.ceil(status.retryAfterMs / 1000))),
      retryAfterMs: status.retryAfterMs,
      progress: status.progress,
    };
  }
  const manifestUri = exportManifestUri(deps.bronzeUri, run.runId, groupIndex);
  await writeJson(deps.storage, manifestUri, status.manifest);
  deps.log.info("bulk export complete", {
    runId: run.runId,
    groupIndex,
    outputFiles: status.manifest.output.length,
    errorFiles: status.manifest.error.length,
    deletedFiles: status.manifest.deleted.length,
  });
  return {
    ...input.export,
    state: "complete",
    retryAfterSeconds: 1,
    manifestUri,
    outputFiles: status.manifest.output.length,
    transactionTime: status.manifest.transactionTime,
  };
}

/**
 * The work units of a completed export: consecutive output files of one type grouped by up to
 * `filesPerUnit`, and one unit per error and per deleted file.
 */
export function bulkUnits(
  run: RunContext,
  groupId: string,
  groupIndex: number,
  types: string[],
  manifest: BulkManifest,
  filesPerUnit = 1,
): BulkFileUnit[] {
  const units: BulkFileUnit[] = [];
  const add = (fileKind: BulkFileUnit["fileKind"], type: string, urls: string[]): void => {
    const i = units.length;
    units.push({
      kind: "bulk-file",
      runId: run.runId,
      unitId: `g${groupIndex}-f${String(i).padStart(5, "0")}`,
      unitIndex: groupIndex * UNITS_PER_GROUP + i,
      ingestDate: ingestDateOf(run),
      groupId,
      types,
      fileKind,
      resourceType: type,
      urls,
      requiresAccessToken: manifest.requiresAccessToken,
    });
  };
  let batch: string[] = [];
  let batchType = "";
  for (const f of manifest.output) {
    if (batch.length > 0 && (f.type !== batchType || batch.length >= Math.max(1, filesPerUnit))) {
      add("output", batchType, batch);
      batch = [];
    }
    batchType = f.type;
    batch.push(f.url);
  }
  if (batch.length > 0) add("output", batchType, batch);
  for (const f of manifest.error) add("error", f.type, [f.url]);
  for (const f of manifest.deleted) add("deleted", f.type, [f.url]);
  return units;
}

/** Patient batches of a search crawl. */
export function searchUnits(
  run: RunContext,
  groupId: string,
  groupIndex: number,
  types: string[],
  patientIds: string[],
  perUnit: number,
): SearchPatientsUnit[] {
  const units: SearchPatientsUnit[] = [];
  for (let i = 0, k = 0; i < patientIds.length; i += perUnit, k++) {
    units.push({
      kind: "search-patients",
      runId: run.runId,
      unitId: `g${groupIndex}-p${String(k).padStart(5, "0")}`,
      unitIndex: groupIndex * UNITS_PER_GROUP + k,
      ingestDate: ingestDateOf(run),
      groupId,
      types,
      patientIds: patientIds.slice(i, i + perUnit),
    });
  }
  return units;
}

/** FanOut: plans and enqueues the group's work units. */
export async function fanOut(input: FanOutInput, deps: ExtractorDeps, options: RunOptions = {}): Promise<FanOutOutput> {
  const { run, groupId } = input;
  const groupIndex = groupIndexOf(run, groupId);
  const types = requestedTypes(run, deps);
  let units: WorkUnit[];
  if (run.mode === "bulk") {
    const manifest = await readExportManifest(deps.storage, deps.bronzeUri, run.runId, groupIndex);
    if (!manifest) throw new Error(`no bulk manifest for group ${groupIndex} of run ${run.runId}: PollBulkStatus has not completed`);
    units = bulkUnits(run, groupId, groupIndex, types, manifest, deps.settings.bulkFilesPerUnit);
  } else {
    let patientIds = options.patientIds;
    if (!patientIds) {
      const group = await deps.http.getJson<{ member?: Array<{ entity?: { reference?: string } }> }>(
        `${deps.baseUrl.replace(/\/+$/, "")}/Group/${encodeURIComponent(groupId)}`,
      );
      patientIds = groupPatientIds(group.body);
    }
    units = searchUnits(run, groupId, groupIndex, types, patientIds, deps.settings.patientsPerUnit);
  }
  const plan: UnitPlan = { name: `g${groupIndex}`, groupId, mode: run.mode, phase: "main", createdAt: new Date().toISOString(), units };
  await writeJson(deps.storage, planUri(deps.bronzeUri, run.runId, plan.name), plan);
  await deps.queue.enqueue(units);
  deps.log.info("units enqueued", { runId: run.runId, groupIndex, mode: run.mode, units: units.length });
  return { groupId, mode: run.mode, unitsEnqueued: units.length };
}

/** Files mode: one unit per *.ndjson file of a directory (a local run's FanOut). */
export async function fanOutFiles(run: RunContext, sourceUri: string, deps: ExtractorDeps): Promise<FanOutOutput> {
  const types = requestedTypes(run, deps);
  const files = (await deps.storage.list(sourceUri)).filter((o) => /\.ndjson$/i.test(o.uri));
  const units: NdjsonFileUnit[] = files.map((f, i) => ({
    kind: "ndjson-file",
    runId: run.runId,
    unitId: `files-${String(i).padStart(5, "0")}`,
    unitIndex: i,
    ingestDate: ingestDateOf(run),
    groupId: "",
    types,
    uri: f.uri,
  }));
  const plan: UnitPlan = { name: "files", groupId: "", mode: "files", phase: "main", createdAt: new Date().toISOString(), units };
  await writeJson(deps.storage, planUri(deps.bronzeUri, run.runId, plan.name), plan);
  await deps.queue.enqueue(units);
  return { groupId: "", mode: "bulk", unitsEnqueued: units.length };
}

/** Search runs, after the patients: Practitioners/Organizations they reference, each read once. */
function sharedUnits(run: RunContext, types: string[], records: Iterable<UnitRecord>): SearchSharedUnit[] {
  const ids = new Map<string, Set<string>>();
  for (const r of records) {
    for (const [t, list] of Object.entries(r.referenced ?? {})) {
      let s = ids.get(t);
      if (!s) ids.set(t, (s = new Set()));
      for (const id of list) s.add(id);
    }
  }
  const units: SearchSharedUnit[] = [];
  const groupIndex = run.groupIds.length;
  const PER_UNIT = 100;
  for (const t of [...ids.keys()].sort()) {
    const list = [...ids.get(t)!].sort();
    for (let i = 0; i < list.length; i += PER_UNIT) {
      const k = units.length;
      units.push({
        kind: "search-shared",
        runId: run.runId,
        unitId: `shared-${String(k).padStart(5, "0")}`,
        unitIndex: groupIndex * UNITS_PER_GROUP + k,
        ingestDate: ingestDateOf(run),
        groupId: "",
        types,
        resourceType: t,
        ids: list.slice(i, i + PER_UNIT),
      });
    }
  }
  return units;
}

/**
 * CheckDrained: are all planned units done? In a search run, once the patients are done the
 * shared resources are planned and enqueued (still pending). When everything is done the run
 * manifest is written and the bulk jobs are deleted; when a unit failed for good, the bulk jobs
 * are deleted too and the state is "failed".
 */
export async function checkDrained(
  input: CheckDrainedInput,
  deps: ExtractorDeps,
  waitSeconds = 10,
  finalizeExtra: { timings?: Record<string, number> } = {},
): Promise<DrainStatus> {
  const { run } = input;
  const plans = await readPlans(deps.storage, deps.bronzeUri, run.runId);
  const { done, failed } = await readUnitRecords(deps.storage, deps.bronzeUri, run.runId);
  const depth = await deps.queue.depth();
  const planned = plans.flatMap((p) => p.units);
  const notDone = planned.filter((u) => !done.has(u.unitId));
  const unitsDone = planned.length - notDone.length;
  // A unit has failed for good when its last attempt recorded a failure and no message is left
  // to retry it (it is in the dead-letter queue). Failure records are per run, so messages that
  // an earlier run left in a DLQ do not fail this one; and a queue count that lags behind SQS
  // cannot fail units that were never tried.
  const unitsFailed = notDone.filter((u) => failed.has(u.unitId)).length;
  const base = { unitsEnqueued: planned.length, unitsDone, unitsFailed, waitSeconds };
  if (notDone.length > 0 && unitsFailed === notDone.length && depth.pending === 0) {
    deps.log.warn("work units failed", { runId: run.runId, unitsFailed, unitsDone, deadLettered: depth.deadLettered });
    await deleteBulkJobs(run, deps);
    return { ...base, state: "failed" };
  }
  // Every unit recorded done and nothing left in the queues (a redelivered message may still be at work).
  if (notDone.length > 0 || depth.pending > 0) return { ...base, state: "pending" };
  const types = requestedTypes(run, deps);
  if (run.mode === "search" && types.some((t) => SHARED_TYPES.has(t)) && !plans.some((p) => p.phase === "shared")) {
    const units = sharedUnits(run, types, done.values());
    const plan: UnitPlan = { name: "shared", groupId: "", mode: "search", phase: "shared", createdAt: new Date().toISOString(), units };
    await writeJson(deps.storage, planUri(deps.bronzeUri, run.runId, "shared"), plan);
    await deps.queue.enqueue(units);
    if (units.length > 0) return { ...base, unitsEnqueued: planned.length + units.length, state: "pending", waitSeconds: 1 };
  }
  await finalizeRun(run, deps, finalizeExtra);
  return { ...base, state: "drained" };
}

/** DELETEs every bulk export job of the run (idempotent; never throws). */
export async function deleteBulkJobs(run: RunContext, deps: ExtractorDeps): Promise<Record<string, boolean>> {
  const out: Record<string, boolean> = {};
  if (run.mode !== "bulk") return out;
  for (let g = 0; g < run.groupIds.length; g++) {
    const rec = await readExportRecord(deps.storage, deps.bronzeUri, run.runId, g).catch(() => undefined);
    if (!rec) continue;
    out[rec.groupId] = await deleteExportJob(deps.http, rec.statusUrl);
  }
  return out;
}

function addTo(target: Record<string, number>, key: string, n: number): void {
  target[key] = (target[key] ?? 0) + n;
}

/** Writes the run manifest from the records of the run (and deletes the bulk jobs). */
export async function finalizeRun(
  run: RunContext,
  deps: ExtractorDeps,
  extra: { source?: string; timings?: Record<string, number> } = {},
): Promise<RunManifest> {
  const jobs = await deleteBulkJobs(run, deps);
  const plans = await readPlans(deps.storage, deps.bronzeUri, run.runId);
  const { done, failed } = await readUnitRecords(deps.storage, deps.bronzeUri, run.runId);
  const types = requestedTypes(run, deps);
  const mode: RunManifest["mode"] = plans.some((p) => p.mode === "files") ? "files" : run.mode;
  const finishedAt = new Date();
  const m: RunManifest = {
    runId: run.runId,
    mode,
    startedAt: run.startedAt,
    finishedAt: finishedAt.toISOString(),
    requested: { types, since: null, sinceSource: null, groups: mode === "files" ? [] : [...run.groupIds] },
    complete: false,
    scope: { groups: [], types: [] },
    transactionTime: null,
    bulk: {},
    resources: {},
    bytes: {},
    parts: {},
    rejects: { total: 0, byReason: {}, byType: {}, untyped: 0 },
    errors: { files: 0, outcomes: 0, uris: [] },
    deleted: [],
    units: { total: plans.reduce((a, p) => a + p.units.length, 0), done: done.size, failed: failed.size },
    inputBytes: 0,
    fileBytes: 0,
    files: [],
    timings: { totalSeconds: (finishedAt.getTime() - Date.parse(run.startedAt)) / 1000, unitSecondsSum: 0, ...(extra.timings ?? {}) },
  };
  if (extra.source) m.requested.source = extra.source;
  for (const t of types) {
    m.resources[t] = 0;
    m.bytes[t] = 0;
    m.parts[t] = 0;
  }
  let sinceUsed = false;
  const transactionTimes: string[] = [];
  if (run.mode === "bulk" && mode !== "files") {
    for (let g = 0; g < run.groupIds.length; g++) {
      const rec = await readExportRecord(deps.storage, deps.bronzeUri, run.runId, g);
      const man = await readExportManifest(deps.storage, deps.bronzeUri, run.runId, g);
      if (!rec || !man) continue;
      if (rec.since) {
        sinceUsed = true;
        m.requested.since = rec.since;
        m.requested.sinceSource = rec.sinceSource;
      }
      transactionTimes.push(man.transactionTime);
      m.bulk[rec.groupId] = {
        transactionTime: man.transactionTime,
        request: man.request,
        outputFiles: man.output.length,
        errorFiles: man.error.length,
        deletedFiles: man.deleted.length,
        jobDeleted: jobs[rec.groupId] ?? false,
      };
    }
    m.transactionTime = transactionTimes.sort()[0] ?? null;
  } else if (run.mode === "search") {
    m.transactionTime = run.startedAt;
    const filtered: Record<string, Array<Record<string, string>>> = {};
    for (const t of types) {
      const sets = searchParamSets(t, deps.settings.observationCategories, deps.settings.searchParams);
      if (sets.some((s) => Object.keys(s).length > 0)) filtered[t] = sets;
    }
    if (Object.keys(filtered).length > 0) m.requested.searchParams = filtered;
  }
  for (const r of done.values()) {
    for (const [t, c] of Object.entries(r.types)) {
      addTo(m.resources, t, c.resources);
      addTo(m.bytes, t, c.bytes);
      addTo(m.parts, t, c.parts);
      if (c.rejected > 0) addTo(m.rejects.byType, t, c.rejected);
    }
    for (const [reason, n] of Object.entries(r.rejects))
      addTo(m.rejects.byReason as Record<string, number>, reason as RejectReason, n ?? 0);
    m.rejects.total += r.rejected;
    m.rejects.untyped += r.rejectedUntyped;
    if (r.outcomes) {
      m.errors.files += 1;
      m.errors.outcomes += r.outcomes.count;
      m.errors.uris.push(r.outcomes.uri);
    }
    if (r.deleted) m.deleted.push(...r.deleted);
    m.inputBytes += r.inputBytes;
    m.fileBytes += r.fileBytes;
    m.files.push(...r.files);
    m.timings.unitSecondsSum += r.seconds;
  }
  m.files.sort();
  // A snapshot of its scope: every unit done, no _since; search: only the types searched without filters.
  const allDone = failed.size === 0 && m.units.done >= m.units.total;
  if (mode !== "files" && allDone && !sinceUsed) {
    m.complete = true;
    m.scope = {
      groups: [...run.groupIds],
      types: run.mode === "search" ? types.filter((t) => !m.requested.searchParams?.[t]) : types,
    };
  }
  await writeRunManifest(deps.storage, deps.bronzeUri, m);
  const abandoned = await removeAbandonedTemporaries(run, types, deps);
  deps.log.info("run manifest written", {
    runId: run.runId,
    resources: Object.values(m.resources).reduce((a, b) => a + b, 0),
    rejected: m.rejects.total,
    complete: m.complete,
    abandonedTemporaries: abandoned,
  });
  return m;
}

/** The half-written files of workers killed during the run (its partitions and records only). */
async function removeAbandonedTemporaries(run: RunContext, types: string[], deps: ExtractorDeps): Promise<number> {
  const dirs = [
    ...types.map((t) => path.posix.dirname(bronzePartPath(t, ingestDateOf(run), run.runId, 0))),
    `${LAKE_CONTRACT.bronze.rejectsDir}/run_id=${run.runId}`,
  ];
  let n = await deps.storage.removeAbandonedTemporaries(runDirUri(deps.bronzeUri, run.runId));
  for (const d of dirs) n += await deps.storage.removeAbandonedTemporaries(joinUri(deps.bronzeUri, d));
  return n;
}
