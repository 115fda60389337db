// FHIR Bulk Data export, as Epic runs it: kick-off (Group level, `Prefer: respond-async`,
// Accept application/fhir+json) -> 202 Content-Location; status polls answered 202 with
// X-Progress and Retry-After (seconds or an HTTP date) until a 200 manifest; the job DELETEd at
// the end whatever happened. Epic's manifest quirks are parsed here: requiresAccessToken as the
// string "true", no `count`, no `deleted` (the spec profile has them).
import type { FhirHttp } from "../http/fhir-http";
import { FhirRequestError, outcomeText, readText } from "../http/fhir-http";
import { parseRetryAfter, redactUrl } from "../http/retry-policy";

export interface BulkManifestFile {
  type: string;
  url: string;
  count?: number;
}

export interface BulkManifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: BulkManifestFile[];
  error: BulkManifestFile[];
  deleted: BulkManifestFile[];
}

export class BulkExportError extends Error {
  constructor(message: string, name: "EpicRequestRejected" | "BulkExportFailed" | "ConfigurationError") {
    super(message);
    this.name = name;
  }
}

/** The kick-off URL of a Group export. */
export function groupExportUrl(baseUrl: string, groupId: string, types: readonly string[], since?: string): string {
  const u = new URL(`${baseUrl.replace(/\/+$/, "")}/Group/${encodeURIComponent(groupId)}/$export`);
  if (types.length > 0) u.searchParams.set("_type", types.join(","));
  if (since) u.searchParams.set("_since", since);
  return u.toString().replace("%24export", "$export");
}

/** Starts a Group export; returns the status URL (Content-Location). */
export async function startGroupExport(
  http: FhirHttp,
  baseUrl: string,
  groupId: string,
  types: readonly string[],
  since?: string,
): Promise<string> {
  const url = groupExportUrl(baseUrl, groupId, types, since);
  const res = await http.send({ url, headers: { accept: "application/fhir+json", prefer: "respond-async" } });
  const text = await readText(res.body);
  if (res.status === 202) {
    const loc = res.headers["content-location"];
    if (!loc)
      throw new BulkExportError(`the export kick-off of group ${groupId} answered 202 without Content-Location`, "BulkExportFailed");
    return new URL(loc, url).toString();
  }
  const why = outcomeText(text);
  if (why && /too recently/i.test(why)) {
    throw new BulkExportError(
      `Epic refused the bulk export of group ${groupId}: "${why}". Epic allows one export per group per client per day; ` +
        `wait until tomorrow, or crawl the group with --mode search.`,
      "EpicRequestRejected",
    );
  }
  if (since && res.status === 400 && why && /_since/i.test(why)) {
    throw new BulkExportError(
      `the server does not support _since (${why}); run without --since (Epic: full snapshots only)`,
      "EpicRequestRejected",
    );
  }
  throw new FhirRequestError(res.status, redactUrl(url), why);
}

export type BulkStatus =
  { state: "in-progress"; retryAfterMs: number; progress?: string } | { state: "complete"; manifest: BulkManifest; raw: unknown };

/** One status poll. A failed job or a refused poll is an error (BulkExportFailed). */
export async function pollExportStatus(http: FhirHttp, statusUrl: string, defaultRetryMs = 5000): Promise<BulkStatus> {
  const res = await http.send({ url: statusUrl, headers: { accept: "application/json" } });
  const text = await readText(res.body);
  if (res.status === 202) {
    const retryAfterMs = parseRetryAfter(res.headers["retry-after"], Date.now()) ?? defaultRetryMs;
    return { state: "in-progress", retryAfterMs, progress: res.headers["x-progress"] };
  }
  if (res.status === 200) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new BulkExportError(`the export status ${redactUrl(statusUrl)} answered 200 with a body that is not JSON`, "BulkExportFailed");
    }
    return { state: "complete", manifest: parseBulkManifest(raw, statusUrl), raw };
  }
  throw new BulkExportError(
    `the bulk export failed: ${redactUrl(statusUrl)} answered HTTP ${res.status}${outcomeText(text) ? `: ${outcomeText(text)}` : ""}`,
    "BulkExportFailed",
  );
}

/** `true`, `"true"` (Epic) -> true; `false`, `"false"`, absent -> false. */
export function parseRequiresAccessToken(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (typeof v === "string") return v.trim().toLowerCase() === "true";
  return false;
}

function files(v: unknown, field: string, base: string): BulkManifestFile[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new BulkExportError(`the bulk manifest's ${field} is not an array`, "BulkExportFailed");
  return v.map((e: { type?: unknown; url?: unknown; count?: unknown }, i) => {
    if (typeof e?.url !== "string" || typeof e?.type !== "string") {
      throw new BulkExportError(`the bulk manifest's ${field}[${i}] has no type or url`, "BulkExportFailed");
    }
    const f: BulkManifestFile = { type: e.type, url: new URL(e.url, base).toString() };
    if (typeof e.count === "number") f.count = e.count;
    return f;
  });
}

/** Validates and normalises a completion manifest. */
export function parseBulkManifest(raw: unknown, statusUrl: string): BulkManifest {
  if (!raw || typeof raw !== "object") throw new BulkExportError("the bulk manifest is not a JSON object", "BulkExportFailed");
  const m = raw as Record<string, unknown>;
  if (typeof m.transactionTime !== "string") throw new BulkExportError("the bulk manifest has no transactionTime", "BulkExportFailed");
  return {
    transactionTime: m.transactionTime,
    request: typeof m.request === "string" ? m.request : "",
    requiresAccessToken: parseRequiresAccessToken(m.requiresAccessToken),
    output: files(m.output, "output", statusUrl),
    error: files(m.error, "error", statusUrl),
    deleted: files(m.deleted, "deleted", statusUrl),
  };
}

/** DELETEs the export job (a job already gone is fine). Never throws: cleanup must not mask the real outcome. */
export async function deleteExportJob(http: FhirHttp, statusUrl: string): Promise<boolean> {
  try {
    const res = await http.send({ url: statusUrl, method: "DELETE", headers: { accept: "application/fhir+json" } });
    await res.discard();
    return res.status < 300 || res.status === 404;
  } catch {
    return false;
  }
}
