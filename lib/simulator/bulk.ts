// Bulk Data export jobs: a kick-off creates a job, which writes its NDJSON files to the work
// directory in the background (patient by patient, a few at a time, yielding to the event loop so
// the server keeps answering); downloads then stream those files. Per file the job keeps, for each
// line, its end offset and the numeric key of its resource version, so that what a download
// delivered can be counted exactly (see stats.ts) without keeping resource bodies in memory.
import * as fs from "node:fs";
import * as path from "node:path";
import { resourceKey } from "./ids";
import { operationOutcome } from "./outcome";
import { PATIENT_TYPES, Population, serializeResource, type ResourceType, type SimResource } from "./population";
import { hashUnit } from "./prng";

export type BulkLevel = "group" | "patient" | "system";
export type BulkFileKind = "output" | "error" | "deleted";

export interface BulkFile {
  name: string;
  /** Resource type of the lines: a FHIR type for output, OperationOutcome for error, Bundle for deleted. */
  type: string;
  kind: BulkFileKind;
  path: string;
  size: number;
  count: number;
  /** Byte offset just past each line's newline. */
  lineEnds: Float64Array;
  /** resourceKey of each line's resource (output) or of the first deleted resource (deleted). */
  keys: Float64Array;
  /** For deleted files: per line, the (type, key) pairs of the deleted resources it lists. */
  deletedEntries?: Array<Array<{ type: string; key: number }>>;
}

export interface BulkJob {
  id: string;
  seq: number;
  clientId: string;
  level: BulkLevel;
  groupId?: string;
  types: ResourceType[];
  /** epoch ms, spec profile only */
  since?: number;
  request: string;
  /** simulated epoch ms of the kick-off */
  transactionTime: number;
  /** simulated day of the kick-off: the whole export is a snapshot of that day */
  day: number;
  createdAt: number;
  /** the job is not complete before this real time (one Retry-After interval) */
  readyNotBefore: number;
  status: "in-progress" | "complete" | "failed" | "deleted";
  /** status requests answered so far (the first one is always a 202, as a real job is never instant) */
  polls: number;
  patientsDone: number;
  patientsTotal: number;
  files: BulkFile[];
  failure?: string;
  dir: string;
  reportError: boolean;
}

export interface BulkSettings {
  /** Resources per NDJSON file before rolling over (Epic: about 3,000). */
  resourcesPerFile: number;
  /** Keep meta.lastUpdated in the output (spec: yes; Epic: no). */
  withLastUpdated: boolean;
  /** Report deletions (spec profile, with _since). */
  reportDeleted: boolean;
  /** Probability that a line is corrupted (fault `malformed`). */
  malformed: number;
  /** Probability that a job reports an error file (fault `bulk-error`). */
  bulkError: number;
  seed: number;
}

const CHUNK_PATIENTS = 16;
const FLUSH_BYTES = 1 << 20;

class FileWriter {
  private fd: number;
  // Lines are copied straight into one reusable buffer (ASCII, so latin1 = UTF-8): no joins.
  private buf = Buffer.allocUnsafe(FLUSH_BYTES);
  private used = 0;
  private size = 0;
  private ends: number[] = [];
  private keys: number[] = [];
  private deletedEntries: Array<Array<{ type: string; key: number }>> | undefined;

  constructor(
    private readonly file: string,
    private readonly name: string,
    private readonly type: string,
    private readonly kind: BulkFileKind,
  ) {
    this.fd = fs.openSync(file, "w");
    if (kind === "deleted") this.deletedEntries = [];
  }

  get count(): number {
    return this.ends.length;
  }

  write(line: string, key: number, deleted?: Array<{ type: string; key: number }>): void {
    // Generated resources are pure ASCII (checked by the population tests), so length = bytes.
    const bytes = line.length + 1;
    if (this.used + bytes > this.buf.length) {
      this.flush();
      if (bytes > this.buf.length) this.buf = Buffer.allocUnsafe(bytes);
    }
    this.used += this.buf.write(line, this.used, "latin1");
    this.buf[this.used++] = 0x0a;
    this.size += bytes;
    this.ends.push(this.size);
    this.keys.push(key);
    if (deleted && this.deletedEntries) this.deletedEntries.push(deleted);
  }

  private flush(): void {
    if (this.used === 0) return;
    fs.writeSync(this.fd, this.buf, 0, this.used);
    this.used = 0;
  }

  close(): BulkFile {
    this.flush();
    fs.closeSync(this.fd);
    return {
      name: this.name,
      type: this.type,
      kind: this.kind,
      path: this.file,
      size: this.size,
      count: this.ends.length,
      lineEnds: Float64Array.from(this.ends),
      keys: Float64Array.from(this.keys),
      deletedEntries: this.deletedEntries,
    };
  }
}

/** Rolls a type's output over to a new file every `perFile` lines. */
class TypeOutput {
  private writer: FileWriter | undefined;
  private n = 0;
  constructor(
    private readonly job: BulkJob,
    private readonly type: string,
    private readonly kind: BulkFileKind,
    private readonly perFile: number,
  ) {}

  write(line: string, key: number, deleted?: Array<{ type: string; key: number }>): void {
    if (!this.writer || this.writer.count >= this.perFile) {
      this.finish();
      this.n += 1;
      const name = `${this.kind === "output" ? "" : this.kind + "-"}${this.type}-${this.n}.ndjson`;
      this.writer = new FileWriter(path.join(this.job.dir, name), name, this.type, this.kind);
    }
    this.writer.write(line, key, deleted);
  }

  finish(): void {
    if (this.writer) {
      const f = this.writer.close();
      if (f.count > 0) this.job.files.push(f);
      this.writer = undefined;
    }
  }
}

/** Corrupts a line so that it is no longer JSON (cut in the middle), keeping it on one line. */
export function corruptLine(line: string): string {
  return line.slice(0, Math.max(1, Math.floor(line.length / 2)));
}

/** Writes all files of a job. Resolves when done (or when the job is deleted meanwhile). */
export async function runBulkJob(job: BulkJob, pop: Population, patients: number[], settings: BulkSettings): Promise<void> {
  fs.mkdirSync(job.dir, { recursive: true });
  const outputs = new Map<string, TypeOutput>();
  const out = (type: string, kind: BulkFileKind = "output"): TypeOutput => {
    const k = `${kind}:${type}`;
    let o = outputs.get(k);
    if (!o) {
      o = new TypeOutput(job, type, kind, settings.resourcesPerFile);
      outputs.set(k, o);
    }
    return o;
  };
  const wanted = new Set<string>(job.types);
  const patientTypes = PATIENT_TYPES.filter((t) => wanted.has(t));
  const practitioners = new Set<number>();
  const organizations = new Set<number>();
  const since = job.since;
  const emit = (r: SimResource): void => {
    const key = resourceKey(r.owner, r.slot, r.version);
    let line = serializeResource(r, settings.withLastUpdated);
    if (settings.malformed > 0 && hashUnit(settings.seed, key, 0x6d) < settings.malformed) line = corruptLine(line);
    out(r.type).write(line, key);
  };

  for (let c = 0; c < patients.length; c += CHUNK_PATIENTS) {
    if (job.status === "deleted") {
      for (const o of outputs.values()) o.finish(); // close the open files
      return;
    }
    const chunk = patients.slice(c, c + CHUNK_PATIENTS);
    const byType = new Map<string, SimResource[][]>();
    for (const t of patientTypes) byType.set(t, []);
    const deletions: Array<{ type: string; id: string; key: number }> = [];
    for (const i of chunk) {
      const snap = pop.patientUncached(i, job.day);
      for (const p of snap.practitioners) practitioners.add(p);
      for (const o of snap.organizations) organizations.add(o);
      const lists = new Map<string, SimResource[]>();
      for (const r of snap.resources) {
        if (!wanted.has(r.type)) continue;
        if (since !== undefined && r.lastUpdated <= since) continue;
        let l = lists.get(r.type);
        if (!l) lists.set(r.type, (l = []));
        l.push(r);
      }
      for (const [t, l] of lists) byType.get(t)!.push(l);
      if (settings.reportDeleted && since !== undefined) {
        for (const d of snap.deleted) {
          if (d.deletedAt > since && wanted.has(d.type)) deletions.push({ type: d.type, id: d.id, key: resourceKey(d.owner, d.slot, 0) });
        }
      }
    }
    // Patients mixed, as at Epic: interleave the chunk's patients round-robin within each type.
    for (const t of patientTypes) {
      const lists = byType.get(t)!;
      let more = true;
      for (let k = 0; more; k++) {
        more = false;
        for (const l of lists) {
          if (k < l.length) {
            emit(l[k]);
            more = true;
          }
        }
      }
    }
    if (deletions.length > 0) {
      const bundle = {
        resourceType: "Bundle",
        id: `deleted-${job.id}-${c}`,
        type: "transaction",
        entry: deletions.map((d) => ({ request: { method: "DELETE", url: `${d.type}/${d.id}` } })),
      };
      out("Bundle", "deleted").write(
        JSON.stringify(bundle),
        deletions[0].key,
        deletions.map((d) => ({ type: d.type, key: d.key })),
      );
    }
    job.patientsDone = Math.min(patients.length, c + chunk.length);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  // The Practitioners and Organizations the exported resources reference.
  if (wanted.has("Practitioner")) {
    for (const p of [...practitioners].sort((a, b) => a - b)) {
      const r = pop.practitioner(p)!;
      if (since === undefined || r.lastUpdated > since) emit(r);
    }
  }
  if (wanted.has("Organization")) {
    for (const o of [...organizations].sort((a, b) => a - b)) {
      const r = pop.organization(o)!;
      if (since === undefined || r.lastUpdated > since) emit(r);
    }
  }
  if (job.reportError) {
    const ids = patients.slice(0, 2).map((i) => pop.patientId(i));
    for (const id of ids) {
      const oo = operationOutcome({
        severity: "error",
        code: "processing",
        text: "Some resources could not be exported for this patient (simulated fault).",
        diagnostics: `Patient/${id}`,
      });
      out("OperationOutcome", "error").write(JSON.stringify(oo), 0);
    }
  }
  for (const o of outputs.values()) o.finish();
  job.files.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "output" ? -1 : 1));
}

/** The completion manifest of a job. */
export function bulkManifest(
  job: BulkJob,
  fileUrl: (job: BulkJob, f: BulkFile) => string,
  profile: "epic" | "spec",
): Record<string, unknown> {
  const entry = (f: BulkFile): Record<string, unknown> =>
    profile === "spec" ? { type: f.type, url: fileUrl(job, f), count: f.count } : { type: f.type, url: fileUrl(job, f) };
  const manifest: Record<string, unknown> = {
    transactionTime: new Date(job.transactionTime).toISOString(),
    request: job.request,
    // Epic has sent this as the string "true"; Bulk Data v2 says boolean.
    requiresAccessToken: profile === "epic" ? "true" : true,
    output: job.files.filter((f) => f.kind === "output").map(entry),
    error: job.files.filter((f) => f.kind === "error").map(entry),
  };
  if (profile === "spec") manifest.deleted = job.files.filter((f) => f.kind === "deleted").map(entry);
  return manifest;
}
