// What a worker does with one work unit (download-file and search-worker Lambdas, the local
// pool): stream the unit's data into bronze, then record what it wrote in
// _runs/{run}/units/{unitId}.json. A unit is all-or-nothing: when an attempt fails part-way (a
// reset, a truncated download) its files are removed and it starts again from scratch, so the
// same resources are never kept twice.
import * as path from "node:path";
import type { Readable } from "node:stream";
import { joinUri, writeJson } from "../../lib/core/storage";
import { UnitWriter, type UnitWriteResult } from "./bronze/bronze-writer";
import { bundleEntryResources } from "./bronze/json-spans";
import { LineSplitter } from "./bronze/ndjson-lines";
import { runPool } from "./concurrency";
import type { ExtractorDeps } from "./extractor-deps";
import { FhirRequestError, outcomeText, readText } from "./http/fhir-http";
import { redactUrl } from "./http/retry-policy";
import { runDirUri, unitFailureUri, unitRecordUri, type UnitFailure, type UnitRecord } from "./run-records";
import { collectSharedRefs, nextLink, patientSearchUrl, readUrl, searchParamSets, SHARED_TYPES } from "./search/search-params";
import type { BulkFileUnit, NdjsonFileUnit, SearchPatientsUnit, SearchSharedUnit, WorkUnit } from "./work-units";

type Partial_ = Omit<UnitRecord, "unitId" | "unitIndex" | "kind" | "groupId" | "startedAt" | "finishedAt" | "seconds">;

/** Processes a unit and writes its record. Throws when the unit failed (after its retries). */
export async function processUnit(unit: WorkUnit, deps: ExtractorDeps): Promise<UnitRecord> {
  const startedAt = new Date();
  let partial: Partial_;
  switch (unit.kind) {
    case "bulk-file":
      partial =
        unit.fileKind === "output"
          ? await bulkOutputFile(unit, deps)
          : unit.fileKind === "error"
            ? await bulkErrorFile(unit, deps)
            : await bulkDeletedFile(unit, deps);
      break;
    case "search-patients":
      partial = await searchPatients(unit, deps);
      break;
    case "search-shared":
      partial = await searchShared(unit, deps);
      break;
    case "ndjson-file":
      partial = await ndjsonFile(unit, deps);
      break;
    default:
      throw new Error(`unknown work unit kind ${(unit as { kind: string }).kind}`);
  }
  const finishedAt = new Date();
  const record: UnitRecord = {
    unitId: unit.unitId,
    unitIndex: unit.unitIndex,
    kind: unit.kind,
    groupId: unit.groupId,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    ...partial,
  };
  await writeJson(deps.storage, unitRecordUri(deps.bronzeUri, unit.runId, unit.unitId), record);
  if (deps.counters) {
    deps.counters.rejected += record.rejected;
    deps.counters.bytes += record.inputBytes;
    deps.counters.flush();
  }
  deps.log.info("unit done", {
    runId: unit.runId,
    unitId: unit.unitId,
    kind: unit.kind,
    resources: Object.values(record.types).reduce((a, c) => a + c.resources, 0),
    rejected: record.rejected,
    seconds: record.seconds,
    attempts: record.attempts,
  });
  return record;
}

/** Records that a unit failed for good (local pool; in the cloud the DLQ says it). */
export async function recordUnitFailure(unit: WorkUnit, error: unknown, deps: ExtractorDeps): Promise<void> {
  const e = error as Error;
  const failure: UnitFailure = {
    unitId: unit.unitId,
    failedAt: new Date().toISOString(),
    error: e?.name ?? "Error",
    message: e?.message ?? String(error),
  };
  await writeJson(deps.storage, unitFailureUri(deps.bronzeUri, unit.runId, unit.unitId), failure);
}

function writerFor(
  unit: WorkUnit,
  source: string,
  deps: ExtractorDeps,
  wanted: ReadonlySet<string> | undefined,
  defaultType?: string,
): UnitWriter {
  return new UnitWriter({
    storage: deps.storage,
    bronzeUri: deps.bronzeUri,
    runId: unit.runId,
    ingestDate: unit.ingestDate,
    unitIndex: unit.unitIndex,
    source,
    wanted,
    partMaxBytes: deps.settings.partMaxBytes,
    defaultType,
    onRows: deps.counters ? (t, n) => deps.counters!.add(t, n) : undefined,
  });
}

function fromWrite(result: UnitWriteResult, source: string, attempts: number, inputBytes: number): Partial_ {
  return {
    source,
    attempts,
    inputBytes,
    types: result.types,
    rejects: result.rejects,
    rejected: result.rejected,
    rejectedUntyped: result.rejectedUntyped,
    files: result.files,
    fileBytes: result.fileBytes,
  };
}

/** Streams NDJSON into a writer (memory bounded: parts are written as they fill). */
async function streamLines(body: Readable, writer: UnitWriter, maxLineBytes: number): Promise<number> {
  const splitter = new LineSplitter(writer, maxLineBytes);
  for await (const chunk of body) {
    splitter.push(chunk as Buffer);
    await writer.flushFull();
  }
  splitter.end();
  return splitter.bytes;
}

async function openDownload(unit: BulkFileUnit, url: string, deps: ExtractorDeps): Promise<Readable> {
  const res = await deps.http.send({ url, auth: unit.requiresAccessToken, headers: { accept: "application/fhir+ndjson" } });
  if (res.status !== 200) {
    const text = await readText(res.body).catch(() => "");
    throw new FhirRequestError(res.status, redactUrl(url), outcomeText(text));
  }
  return res.body;
}

// ---------------------------------------------------------------------------------------------
// bulk

async function bulkOutputFile(unit: BulkFileUnit, deps: ExtractorDeps): Promise<Partial_> {
  const sources = unit.urls.map((u) => `bulk:${redactUrl(u)}`);
  let attempts = 0;
  // All-or-nothing: a failure in any file starts the unit again (its files are removed first).
  const { result, bytes } = await deps.http.withRetries(unit.urls[0], async () => {
    attempts += 1;
    const writer = writerFor(unit, sources[0], deps, new Set(unit.types), unit.resourceType);
    try {
      let bytes = 0;
      for (let k = 0; k < unit.urls.length; k++) {
        writer.source = sources[k];
        bytes += await streamLines(await openDownload(unit, unit.urls[k], deps), writer, deps.settings.maxLineBytes);
      }
      return { result: await writer.finish(), bytes };
    } catch (e) {
      await writer.abort();
      throw e;
    }
  });
  return fromWrite(result, sources.length === 1 ? sources[0] : `${sources[0]} (+${sources.length - 1} files)`, attempts, bytes);
}

async function bulkErrorFile(unit: BulkFileUnit, deps: ExtractorDeps): Promise<Partial_> {
  const url = unit.urls[0];
  const source = `bulk-error:${redactUrl(url)}`;
  let attempts = 0;
  const text = await deps.http.withRetries(url, async () => {
    attempts += 1;
    return readText(await openDownload(unit, url, deps));
  });
  const uri = joinUri(runDirUri(deps.bronzeUri, unit.runId), "errors", `${unit.unitId}.ndjson`);
  await deps.storage.write(uri, text);
  const count = text.split("\n").filter((l) => l.trim() !== "").length;
  deps.log.warn("bulk export reported errors", { runId: unit.runId, unitId: unit.unitId, outcomes: count });
  return { ...fromWrite(emptyResult(), source, attempts, Buffer.byteLength(text)), outcomes: { count, uri } };
}

async function bulkDeletedFile(unit: BulkFileUnit, deps: ExtractorDeps): Promise<Partial_> {
  const url = unit.urls[0];
  const source = `bulk-deleted:${redactUrl(url)}`;
  let attempts = 0;
  const text = await deps.http.withRetries(url, async () => {
    attempts += 1;
    return readText(await openDownload(unit, url, deps));
  });
  const deleted: Array<{ resourceType: string; id: string }> = [];
  let bad = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const bundle = JSON.parse(line) as { entry?: Array<{ request?: { url?: string; method?: string }; fullUrl?: string }> };
      for (const e of bundle.entry ?? []) {
        const ref = e.request?.url ?? e.fullUrl ?? "";
        const m = /([A-Za-z]+)\/([^/?]+)(?:\/_history\/[^/]*)?$/.exec(ref);
        if (m) deleted.push({ resourceType: m[1], id: m[2] });
        else bad++;
      }
    } catch {
      bad++;
    }
  }
  if (bad > 0) deps.log.warn("unreadable deleted entries", { runId: unit.runId, unitId: unit.unitId, count: bad });
  return { ...fromWrite(emptyResult(), source, attempts, Buffer.byteLength(text)), deleted };
}

function emptyResult(): UnitWriteResult {
  return { types: {}, rejects: {}, rejected: 0, rejectedUntyped: 0, files: [], fileBytes: 0 };
}

// ---------------------------------------------------------------------------------------------
// files

async function ndjsonFile(unit: NdjsonFileUnit, deps: ExtractorDeps): Promise<Partial_> {
  const source = `file:${path.posix.basename(unit.uri)}`;
  const writer = writerFor(unit, source, deps, new Set(unit.types));
  try {
    const bytes = await streamLines(await deps.storage.readStream(unit.uri), writer, deps.settings.maxLineBytes);
    return fromWrite(await writer.finish(), source, 1, bytes);
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// search

interface SearchTask {
  type: string;
  patientId: string;
  params?: Record<string, string>;
}

/** Reads a body as one Buffer. */
async function readBuffer(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

async function searchPatients(unit: SearchPatientsUnit, deps: ExtractorDeps): Promise<Partial_> {
  const source = `search:${unit.unitId}`;
  const wanted = new Set(unit.types);
  const writer = writerFor(unit, source, deps, wanted);
  const seen = new Set<string>();
  let duplicates = 0;
  let outcomes = 0;
  let inputBytes = 0;
  const sharedWanted = new Set([...SHARED_TYPES].filter((t) => wanted.has(t)));
  const referenced = new Map<string, Set<string>>();
  const accept = (t: string, id: string): boolean => {
    const k = `${t}/${id}`;
    if (seen.has(k)) {
      duplicates++;
      return false;
    }
    seen.add(k);
    return true;
  };
  const keep = (b: Buffer, s: number, e: number): void => {
    const kept = writer.resource(b, s, e, null, accept);
    if (kept && sharedWanted.size > 0) collectSharedRefs(kept.parse(), sharedWanted, referenced);
  };

  // Searches with many pages first (Observation), single reads last: the pool's tail then holds
  // only short tasks, so the request rate stays at the budget until the end.
  const tasks: SearchTask[] = [];
  const searchTypes = [...unit.types.filter((t) => t === "Observation"), ...unit.types.filter((t) => t !== "Observation")];
  for (const type of searchTypes) {
    if (type === "Patient" || SHARED_TYPES.has(type)) continue;
    const sets = searchParamSets(type, deps.settings.observationCategories, deps.settings.searchParams);
    for (const params of sets) for (const patientId of unit.patientIds) tasks.push({ type, patientId, params });
  }
  if (wanted.has("Patient")) for (const patientId of unit.patientIds) tasks.push({ type: "Patient", patientId });
  try {
    await runPool(tasks, deps.settings.concurrency, async (task) => {
      if (!task.params) {
        // Patient: a read by id (Epic's Patient search needs _id or demographics).
        const url = readUrl(deps.baseUrl, "Patient", task.patientId);
        const res = await deps.http.send({ url, headers: { accept: "application/fhir+json" } });
        const body = await readBuffer(res.body);
        inputBytes += body.length;
        if (res.status === 404 || res.status === 410) return;
        if (res.status !== 200) throw new FhirRequestError(res.status, redactUrl(url), outcomeText(body.toString("utf8")));
        keep(body, 0, body.length);
        return;
      }
      let url: string | undefined = patientSearchUrl(deps.baseUrl, task.type, task.patientId, task.params, deps.settings.pageSize);
      const visited = new Set<string>();
      while (url) {
        if (visited.has(url)) throw new Error(`search paging loops on ${redactUrl(url)}`);
        visited.add(url);
        const res = await deps.http.send({ url, headers: { accept: "application/fhir+json" } });
        const body = await readBuffer(res.body);
        inputBytes += body.length;
        if (res.status !== 200) throw new FhirRequestError(res.status, redactUrl(url), outcomeText(body.toString("utf8")));
        let bundle: {
          resourceType?: string;
          entry?: Array<{ resource?: { resourceType?: string } }>;
          link?: Array<{ relation?: string; url?: string }>;
        };
        try {
          bundle = JSON.parse(body.toString("utf8")) as typeof bundle;
        } catch {
          throw new FhirRequestError(200, redactUrl(url), "the search answer is not JSON");
        }
        if (bundle.resourceType !== "Bundle")
          throw new FhirRequestError(200, redactUrl(url), `the search answered a ${String(bundle.resourceType)}, not a Bundle`);
        const spans = bundleEntryResources(body, 0, body.length);
        const entries = (bundle.entry ?? []).filter((e) => e && e.resource !== undefined);
        if (spans.length !== entries.length) throw new Error(`could not locate the entries of a search Bundle (${redactUrl(url)})`);
        for (let i = 0; i < spans.length; i++) {
          // Keep entries by resourceType: Epic's "no results" (and warnings) are OperationOutcome entries.
          if (entries[i].resource?.resourceType === "OperationOutcome") {
            outcomes++;
            continue;
          }
          keep(body, spans[i][0], spans[i][1]);
        }
        await writer.flushFull();
        const next = nextLink(bundle);
        url = next ? new URL(next, url).toString() : undefined;
      }
    });
    const result = await writer.finish();
    return {
      ...fromWrite(result, source, 1, inputBytes),
      duplicates,
      searchOutcomes: outcomes,
      referenced: Object.fromEntries([...referenced].map(([t, ids]) => [t, [...ids].sort()])),
    };
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

async function searchShared(unit: SearchSharedUnit, deps: ExtractorDeps): Promise<Partial_> {
  const source = `search:${unit.unitId}`;
  const writer = writerFor(unit, source, deps, new Set([unit.resourceType]));
  let missing = 0;
  let inputBytes = 0;
  const seen = new Set<string>();
  try {
    await runPool(unit.ids, deps.settings.concurrency, async (id) => {
      const url = readUrl(deps.baseUrl, unit.resourceType, id);
      const res = await deps.http.send({ url, headers: { accept: "application/fhir+json" } });
      const body = await readBuffer(res.body);
      inputBytes += body.length;
      if (res.status === 404 || res.status === 410) {
        missing++;
        return;
      }
      if (res.status !== 200) throw new FhirRequestError(res.status, redactUrl(url), outcomeText(body.toString("utf8")));
      writer.resource(body, 0, body.length, null, (t, rid) => {
        const k = `${t}/${rid}`;
        if (seen.has(k)) return false;
        seen.add(k);
        return true;
      });
    });
    return { ...fromWrite(await writer.finish(), source, 1, inputBytes), missing };
  } catch (e) {
    await writer.abort();
    throw e;
  }
}
