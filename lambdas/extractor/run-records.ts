// The records a run leaves under {bronze}/_runs/{run}/, and the run manifest:
//   exports/g{N}.json            a group's bulk export: status URL, since, types (BulkKickOff)
//   exports/g{N}-manifest.json   the server's completion manifest, normalised (PollBulkStatus)
//   plans/g{N}.json              the work units fanned out for group N (FanOut); plans/shared.json
//   units/{unitId}.json          what a finished unit wrote (workers); units/{unitId}.failed.json
//   errors/{unitId}.ndjson       OperationOutcomes of a bulk `error` file
//   manifest.json                the run manifest, written last: its presence means the run finished
// and {bronze}/_runs/_finished/{run}.json, a small index of finished runs for `--since auto`.
import { LAKE_CONTRACT } from "../../lib/core/lake-contract";
import { joinUri, readJsonIfExists, writeJson, type Storage } from "../../lib/core/storage";
import type { BulkManifest } from "./bulk/bulk-export";
import type { RejectReason } from "./bronze/resource-row";
import type { TypeCounts } from "./bronze/bronze-writer";
import type { WorkUnit } from "./work-units";

export const RUNS_DIR = LAKE_CONTRACT.bronze.runsDir;

export function runDirUri(bronzeUri: string, runId: string): string {
  return joinUri(bronzeUri, RUNS_DIR, runId);
}
export function runManifestUri(bronzeUri: string, runId: string): string {
  return joinUri(bronzeUri, RUNS_DIR, runId, LAKE_CONTRACT.bronze.manifestFile);
}
export function exportRecordUri(bronzeUri: string, runId: string, groupIndex: number): string {
  return joinUri(runDirUri(bronzeUri, runId), "exports", `g${groupIndex}.json`);
}
export function exportManifestUri(bronzeUri: string, runId: string, groupIndex: number): string {
  return joinUri(runDirUri(bronzeUri, runId), "exports", `g${groupIndex}-manifest.json`);
}
export function planUri(bronzeUri: string, runId: string, name: string): string {
  return joinUri(runDirUri(bronzeUri, runId), "plans", `${name}.json`);
}
export function unitRecordUri(bronzeUri: string, runId: string, unitId: string): string {
  return joinUri(runDirUri(bronzeUri, runId), "units", `${unitId}.json`);
}
export function unitFailureUri(bronzeUri: string, runId: string, unitId: string): string {
  return joinUri(runDirUri(bronzeUri, runId), "units", `${unitId}.failed.json`);
}
export function finishedIndexUri(bronzeUri: string, runId: string): string {
  return joinUri(bronzeUri, RUNS_DIR, "_finished", `${runId}.json`);
}

/** BulkKickOff's record of a group's export. */
export interface ExportRecord {
  groupId: string;
  groupIndex: number;
  statusUrl: string;
  kickedOffAt: string;
  since: string | null;
  /** How `since` was chosen: given explicitly, found by --since auto, or none. */
  sinceSource: "explicit" | "auto" | null;
  types: string[];
  completedAt?: string;
}

/** FanOut's plan: every unit enqueued for a group (or for the shared phase of a search run). */
export interface UnitPlan {
  name: string;
  groupId: string;
  mode: "bulk" | "search" | "files";
  phase: "main" | "shared";
  createdAt: string;
  units: WorkUnit[];
}

/** What a worker writes when it has finished a unit (its files are all in place by then). */
export interface UnitRecord {
  unitId: string;
  unitIndex: number;
  kind: WorkUnit["kind"];
  groupId: string;
  source: string;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  attempts: number;
  /** Bytes received (decoded) for this unit. */
  inputBytes: number;
  types: Record<string, TypeCounts>;
  rejects: Partial<Record<RejectReason, number>>;
  rejected: number;
  rejectedUntyped: number;
  /** Bronze-relative paths of the files written. */
  files: string[];
  fileBytes: number;
  /** bulk `deleted` files: the resources the server reports deleted. */
  deleted?: Array<{ resourceType: string; id: string }>;
  /** bulk `error` files: OperationOutcomes kept (and where). */
  outcomes?: { count: number; uri: string };
  /** search: OperationOutcome entries dropped from Bundles (e.g. Epic's "no results" 4101). */
  searchOutcomes?: number;
  /** search: duplicates of resources already kept by this unit. */
  duplicates?: number;
  /** search-patients: Practitioner/Organization ids referenced (read once per run afterwards). */
  referenced?: Record<string, string[]>;
  /** search-shared: ids the server did not find. */
  missing?: number;
}

export interface UnitFailure {
  unitId: string;
  failedAt: string;
  error: string;
  message: string;
}

/** The run manifest ({bronze}/_runs/{run}/manifest.json). */
export interface RunManifest {
  runId: string;
  mode: "bulk" | "search" | "files";
  startedAt: string;
  finishedAt: string;
  /** What was asked. */
  requested: {
    types: string[];
    since: string | null;
    sinceSource: "explicit" | "auto" | null;
    groups: string[];
    /** files mode: the directory imported. */
    source?: string;
    /** search mode: the extra parameters each type was searched with (e.g. Observation categories). */
    searchParams?: Record<string, Array<Record<string, string>>>;
  };
  /**
   * A complete snapshot of `scope`: every resource of `scope.types` for the patients of
   * `scope.groups` is in this run, so what is absent from it (inside the scope) was deleted.
   * True for an export without _since and for a search crawl (types searched without filters);
   * false for an incremental (_since) run, a files import, or a run with failed units.
   */
  complete: boolean;
  scope: { groups: string[]; types: string[] };
  /** Bulk: the earliest transactionTime of the run's exports (the next `--since auto`). Search: the crawl's start. */
  transactionTime: string | null;
  bulk: Record<
    string,
    { transactionTime: string; request: string; outputFiles: number; errorFiles: number; deletedFiles: number; jobDeleted: boolean }
  >;
  /** What came, per resource type. */
  resources: Record<string, number>;
  bytes: Record<string, number>;
  parts: Record<string, number>;
  rejects: { total: number; byReason: Partial<Record<RejectReason, number>>; byType: Record<string, number>; untyped: number };
  errors: { files: number; outcomes: number; uris: string[] };
  deleted: Array<{ resourceType: string; id: string }>;
  units: { total: number; done: number; failed: number };
  inputBytes: number;
  fileBytes: number;
  /** Bronze-relative paths of every part and reject file of the run. */
  files: string[];
  timings: { totalSeconds: number; unitSecondsSum: number; [phase: string]: number };
}

/** A finished run, as `--since auto` needs it. */
export interface FinishedRunIndex {
  runId: string;
  mode: RunManifest["mode"];
  finishedAt: string;
  types: string[];
  groups: string[];
  /** per group: the transactionTime of its export */
  transactionTimes: Record<string, string>;
}

export async function readExportRecord(
  storage: Storage,
  bronzeUri: string,
  runId: string,
  groupIndex: number,
): Promise<ExportRecord | undefined> {
  return readJsonIfExists<ExportRecord>(storage, exportRecordUri(bronzeUri, runId, groupIndex));
}
export async function readExportManifest(
  storage: Storage,
  bronzeUri: string,
  runId: string,
  groupIndex: number,
): Promise<BulkManifest | undefined> {
  return readJsonIfExists<BulkManifest>(storage, exportManifestUri(bronzeUri, runId, groupIndex));
}

/** Every unit plan of a run. */
export async function readPlans(storage: Storage, bronzeUri: string, runId: string): Promise<UnitPlan[]> {
  const listing = await storage.list(joinUri(runDirUri(bronzeUri, runId), "plans"));
  const out: UnitPlan[] = [];
  for (const o of listing) if (o.uri.endsWith(".json")) out.push(JSON.parse((await storage.read(o.uri)).toString("utf8")) as UnitPlan);
  return out;
}

/** Finished unit records and failures of a run, by unit id. */
export async function readUnitRecords(
  storage: Storage,
  bronzeUri: string,
  runId: string,
): Promise<{ done: Map<string, UnitRecord>; failed: Map<string, UnitFailure> }> {
  const listing = await storage.list(joinUri(runDirUri(bronzeUri, runId), "units"));
  const done = new Map<string, UnitRecord>();
  const failed = new Map<string, UnitFailure>();
  for (const o of listing) {
    if (!o.uri.endsWith(".json")) continue;
    const doc = JSON.parse((await storage.read(o.uri)).toString("utf8")) as UnitRecord | UnitFailure;
    if (o.uri.endsWith(".failed.json")) failed.set(doc.unitId, doc as UnitFailure);
    else done.set(doc.unitId, doc as UnitRecord);
  }
  // A unit that failed once and then succeeded (retried) is done.
  for (const id of done.keys()) failed.delete(id);
  return { done, failed };
}

/**
 * Commits a run: its files are made durable first, then the manifest (durable too), then the
 * index entry for --since auto.
 */
export async function writeRunManifest(storage: Storage, bronzeUri: string, m: RunManifest): Promise<void> {
  await storage.sync(m.files.map((f) => joinUri(bronzeUri, f)));
  await writeJson(storage, runManifestUri(bronzeUri, m.runId), m, { durable: true });
  const index: FinishedRunIndex = {
    runId: m.runId,
    mode: m.mode,
    finishedAt: m.finishedAt,
    types: m.requested.types,
    groups: m.requested.groups,
    transactionTimes: Object.fromEntries(Object.entries(m.bulk).map(([g, b]) => [g, b.transactionTime])),
  };
  if (m.mode === "search" && m.transactionTime) for (const g of m.requested.groups) index.transactionTimes[g] ??= m.transactionTime;
  await writeJson(storage, finishedIndexUri(bronzeUri, m.runId), index, { durable: true });
}

export async function readRunManifest(storage: Storage, bronzeUri: string, runId: string): Promise<RunManifest | undefined> {
  return readJsonIfExists<RunManifest>(storage, runManifestUri(bronzeUri, runId));
}

/**
 * `--since auto` for one group: the transactionTime of the most recent finished bulk run that
 * exported this group with at least these types (a snapshot or an incremental run: each run's
 * transactionTime is where the next one starts). Undefined when there is none (a full export).
 */
export async function findSinceAuto(
  storage: Storage,
  bronzeUri: string,
  groupId: string,
  types: readonly string[],
  beforeRunId?: string,
): Promise<{ since: string; runId: string } | undefined> {
  const listing = await storage.list(joinUri(bronzeUri, RUNS_DIR, "_finished"));
  const runs = listing
    .map((o) => o.uri)
    .filter((u) => u.endsWith(".json"))
    .sort()
    .reverse();
  for (const uri of runs) {
    const idx = JSON.parse((await storage.read(uri)).toString("utf8")) as FinishedRunIndex;
    if (beforeRunId && idx.runId >= beforeRunId) continue;
    if (idx.mode !== "bulk") continue;
    const t = idx.transactionTimes[groupId];
    if (!t) continue;
    if (!types.every((x) => idx.types.includes(x))) continue;
    return { since: t, runId: idx.runId };
  }
  return undefined;
}

/** A sortable, unique run id (see lib/core/run-id.ts). */
export { newRunId } from "../../lib/core/run-id";
