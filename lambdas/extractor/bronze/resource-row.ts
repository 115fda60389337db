// From one resource's JSON text to the key columns of its bronze row (resource_type, id,
// version_id, last_updated, patient_ref, content_hash), or the reason it is rejected. The text
// itself is kept byte for byte by the writer; nothing here re-serialises it.
import { contentHash, contentHashWithoutVersioning, rawContentHash } from "./content-hash";
import { ScannedResource, scanResource } from "./json-scan";

export type RejectReason =
  | "not_json" // the line is not JSON
  | "not_a_resource" // JSON, but no string resourceType and id
  | "unexpected_type" // a resource of a type that was not asked for
  | "line_too_large" // longer than the line cap
  | "invalid_utf8"; // bytes that are not UTF-8

export const REJECT_REASONS: readonly RejectReason[] = ["not_json", "not_a_resource", "unexpected_type", "line_too_large", "invalid_utf8"];

export interface RowKeys {
  resourceType: string;
  id: string;
  versionId: string | null;
  /** epoch ms, from meta.lastUpdated */
  lastUpdatedMs: number | null;
  patientRef: string | null;
  contentHash: string;
}

export type Examined =
  /** `parse`: the resource as an object, parsed on demand (the fast path does not build it) */
  { ok: true; keys: RowKeys; parse: () => Record<string, unknown> } | { ok: false; reason: RejectReason; resourceType: string | null };

type Ref = { reference?: unknown } | undefined;

/** "Patient/123" from a Reference to a patient (relative, absolute or versioned), else null. */
export function patientRefOf(ref: Ref): string | null {
  const r = ref?.reference;
  if (typeof r !== "string") return null;
  const at = r.startsWith("Patient/") ? 0 : r.indexOf("/Patient/") + 1;
  if (at === 0 && !r.startsWith("Patient/")) return null;
  const rest = r.slice(at + "Patient/".length);
  const slash = rest.indexOf("/");
  const id = slash < 0 ? rest : rest.slice(0, slash);
  return id ? "Patient/" + id : null;
}

const PATIENT_SLASH = Buffer.from("Patient/");
const SLASH_PATIENT_SLASH = Buffer.from("/Patient/");

/**
 * The patient id inside a reference string's bytes b[s, e) (no quotes), as patientRefOf reads it:
 * [idStart, idEnd), or undefined when the reference is not to a Patient.
 */
export function patientIdSpan(b: Buffer, s: number, e: number): [number, number] | undefined {
  let at: number;
  if (e - s >= 8 && b.compare(PATIENT_SLASH, 0, 8, s, s + 8) === 0) at = s + 8;
  else {
    const k = b.indexOf(SLASH_PATIENT_SLASH, s);
    if (k < 0 || k + 9 > e) return undefined;
    at = k + 9;
  }
  let end = at;
  while (end < e && b[end] !== 0x2f) end++;
  return end > at ? [at, end] : undefined;
}

/** The patient a resource belongs to: itself for Patient, else subject / patient / beneficiary. */
export function patientRefOfResource(resourceType: string, id: string, r: Record<string, unknown>): string | null {
  if (resourceType === "Patient") return "Patient/" + id;
  return patientRefOf(r.subject as Ref) ?? patientRefOf(r.patient as Ref) ?? patientRefOf(r.beneficiary as Ref);
}

const scan = new ScannedResource();

/** The string value b[s, e) (quotes included): its bytes, or JSON-decoded when it has escapes. */
function stringAt(b: Buffer, s: number, e: number, escaped: boolean): string {
  return escaped ? (JSON.parse(b.toString("utf8", s, e)) as string) : b.toString("utf8", s + 1, e - 1);
}

// The last resource type seen, so that a file of one type decodes its name once.
let lastTypeBytes = Buffer.alloc(0);
let lastType = "";
function resourceTypeAt(b: Buffer, s: number, e: number): string {
  const len = e - s - 2;
  if (len === lastTypeBytes.length && b.compare(lastTypeBytes, 0, len, s + 1, e - 1) === 0) return lastType;
  lastType = b.toString("latin1", s + 1, e - 1);
  lastTypeBytes = Buffer.from(b.subarray(s + 1, e - 1));
  return lastType;
}

export type Classified =
  /** Read by the scanner: its positions are in LAST_SCAN until the next call. */
  | { kind: "scanned"; resourceType: string }
  /** Read by JSON.parse (the scanner's fallback). */
  | { kind: "parsed"; resourceType: string; keys: RowKeys; parse: () => Record<string, unknown> }
  | { kind: "reject"; reason: RejectReason; resourceType: string | null };

/** The scanner's positions for the line classifyResource last answered "scanned". */
export const LAST_SCAN = scan;

/**
 * The bronze writer's hot path: validates b[start, end) and tells its type without making any
 * string but the type's; the writer then copies the key columns straight from the positions.
 */
export function classifyResource(b: Buffer, start: number, end: number, wanted?: ReadonlySet<string>): Classified {
  const outcome = scanResource(b, start, end, scan);
  if (outcome === "invalid") return { kind: "reject", reason: "not_json", resourceType: null };
  if (outcome === "ok" && !scan.escaped) {
    if (scan.rtS < 0 || scan.idS < 0 || scan.rtE - scan.rtS <= 2 || scan.idE - scan.idS <= 2) {
      return {
        kind: "reject",
        reason: "not_a_resource",
        resourceType: scan.rtE - scan.rtS > 2 ? stringAt(b, scan.rtS, scan.rtE, false) : null,
      };
    }
    const resourceType = resourceTypeAt(b, scan.rtS, scan.rtE);
    if (wanted && !wanted.has(resourceType)) return { kind: "reject", reason: "unexpected_type", resourceType };
    return { kind: "scanned", resourceType };
  }
  const x = examineParsed(b, start, end, wanted);
  return x.ok
    ? { kind: "parsed", resourceType: x.keys.resourceType, keys: x.keys, parse: x.parse }
    : { kind: "reject", reason: x.reason, resourceType: x.resourceType };
}

/** The id of the line classifyResource last answered "scanned". */
export function scannedId(b: Buffer): string {
  return b.toString("utf8", scan.idS + 1, scan.idE - 1);
}

/**
 * Examines the resource text b[start, end) (valid UTF-8). `wanted` (optional) is the set of
 * resource types asked for. The JSON scanner validates and finds the key members without building
 * the object; JSON.parse is used only for the texts it does not read (see json-scan.ts).
 */
export function examineResource(b: Buffer, start: number, end: number, wanted?: ReadonlySet<string>): Examined {
  const outcome = scanResource(b, start, end, scan);
  if (outcome === "invalid") return { ok: false, reason: "not_json", resourceType: null };
  if (outcome === "fallback" || scan.escaped) return examineParsed(b, start, end, wanted);
  if (scan.rtS < 0 || scan.idS < 0 || scan.rtE - scan.rtS <= 2 || scan.idE - scan.idS <= 2) {
    return { ok: false, reason: "not_a_resource", resourceType: scan.rtE - scan.rtS > 2 ? stringAt(b, scan.rtS, scan.rtE, false) : null };
  }
  const resourceType = resourceTypeAt(b, scan.rtS, scan.rtE);
  if (wanted && !wanted.has(resourceType)) return { ok: false, reason: "unexpected_type", resourceType };
  const id = b.toString("utf8", scan.idS + 1, scan.idE - 1);
  let lastUpdatedMs: number | null = null;
  if (scan.luS >= 0) {
    const t = Date.parse(b.toString("latin1", scan.luS + 1, scan.luE - 1));
    if (!Number.isNaN(t)) lastUpdatedMs = t;
  }
  let patientRef: string | null = null;
  if (resourceType === "Patient") patientRef = "Patient/" + id;
  else
    for (let k = 0; k < 3 && patientRef === null; k++) {
      if (scan.refS[k] >= 0) patientRef = patientRefOf({ reference: b.toString("utf8", scan.refS[k] + 1, scan.refE[k] - 1) });
    }
  return {
    ok: true,
    parse: () => JSON.parse(b.toString("utf8", start, end)) as Record<string, unknown>,
    keys: {
      resourceType,
      id,
      versionId: scan.verS >= 0 ? b.toString("utf8", scan.verS + 1, scan.verE - 1) : null,
      lastUpdatedMs,
      patientRef,
      contentHash: scan.metaVersioned
        ? contentHashWithoutVersioning(
            b,
            start,
            end,
            { start: scan.metaS, end: scan.metaE, valueStart: scan.metaVS, commaBefore: scan.metaCB, commaAfter: scan.metaCA },
            scan.keep(),
          )
        : rawContentHash(b, start, end),
    },
  };
}

/** The slow path: JSON.parse, for what the scanner leaves (not an object, escaped keys, duplicates). */
export function examineParsed(b: Buffer, start: number, end: number, wanted?: ReadonlySet<string>): Examined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(b.toString("utf8", start, end));
  } catch {
    return { ok: false, reason: "not_json", resourceType: null };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    return { ok: false, reason: "not_a_resource", resourceType: null };
  const r = parsed as Record<string, unknown>;
  const resourceType = r.resourceType;
  const id = r.id;
  if (typeof resourceType !== "string" || resourceType === "" || typeof id !== "string" || id === "") {
    return { ok: false, reason: "not_a_resource", resourceType: typeof resourceType === "string" && resourceType ? resourceType : null };
  }
  if (wanted && !wanted.has(resourceType)) return { ok: false, reason: "unexpected_type", resourceType };
  const meta = r.meta as { versionId?: unknown; lastUpdated?: unknown } | undefined;
  let versionId: string | null = null;
  let lastUpdatedMs: number | null = null;
  let versioned = false;
  if (meta !== null && typeof meta === "object") {
    if (meta.versionId !== undefined) {
      versioned = true;
      if (typeof meta.versionId === "string") versionId = meta.versionId;
    }
    if (meta.lastUpdated !== undefined) {
      versioned = true;
      if (typeof meta.lastUpdated === "string") {
        const t = Date.parse(meta.lastUpdated);
        if (!Number.isNaN(t)) lastUpdatedMs = t;
      }
    }
  }
  return {
    ok: true,
    parse: () => r,
    keys: {
      resourceType,
      id,
      versionId,
      lastUpdatedMs,
      patientRef: patientRefOfResource(resourceType, id, r),
      contentHash: contentHash(b, start, end, versioned),
    },
  };
}
