// From one resource's JSON text to the key columns of its bronze row (resource_type, id,
// version_id, last_updated, patient_ref, content_hash), or the reason it is rejected. The text
// itself is kept byte for byte by the writer; nothing here re-serialises it.
import { contentHash } from "./content-hash";

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
  { ok: true; keys: RowKeys; parsed: Record<string, unknown> } | { ok: false; reason: RejectReason; resourceType: string | null };

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

/** The patient a resource belongs to: itself for Patient, else subject / patient / beneficiary. */
export function patientRefOfResource(resourceType: string, id: string, r: Record<string, unknown>): string | null {
  if (resourceType === "Patient") return "Patient/" + id;
  return patientRefOf(r.subject as Ref) ?? patientRefOf(r.patient as Ref) ?? patientRefOf(r.beneficiary as Ref);
}

/**
 * Examines the resource text b[start, end). `text` may be passed when the caller already decoded
 * it. `wanted` (optional) is the set of resource types asked for.
 */
export function examineResource(b: Buffer, start: number, end: number, wanted?: ReadonlySet<string>, text?: string): Examined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text ?? b.toString("utf8", start, end));
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
    parsed: r,
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
