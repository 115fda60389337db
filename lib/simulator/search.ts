// FHIR search and read as Epic answers them: Epic's required parameters, paging through opaque
// page tokens in absolute `next` links, short pages, and a Bundle whose only entry is an
// OperationOutcome (code 4101) when nothing matches. Pure over the population: the server only
// writes what these functions return.
import { NO_RESULTS, operationOutcome } from "./outcome";
import { isResourceType, PATIENT_TYPES, Population, serializeResource, type ResourceType, type SimResource } from "./population";
import { hashUnit } from "./prng";

export type Profile = "epic" | "spec";

export interface FhirReply {
  status: number;
  /** JSON text */
  body: string;
  /** Resources delivered (counted as served once the reply is written). */
  entries: SimResource[];
}

export interface SearchContext {
  pop: Population;
  profile: Profile;
  baseUrl: string;
  defaultCount: number;
  maxCount: number;
}

function reply(status: number, body: unknown, entries: SimResource[] = []): FhirReply {
  return { status, body: typeof body === "string" ? body : JSON.stringify(body), entries };
}

export function outcomeReply(status: number, code: string, text: string, epicCode?: string): FhirReply {
  return reply(status, operationOutcome({ severity: status >= 500 ? "fatal" : "error", code, text, epicCode }));
}

const REFUSED_OBS_CATEGORIES = new Set(["procedure", "therapy", "activity"]);
const KNOWN_OBS_CATEGORIES = new Set([
  "vital-signs",
  "laboratory",
  "social-history",
  "survey",
  "exam",
  "imaging",
  "core-characteristics",
  "functional-mental-status",
  "obstetrics",
  "genomics",
  "smartdata",
  "labor-delivery",
  "newborn-delivery",
  "periodontal",
  "dental-findings",
]);

/** "a,b" with optional "system|code" -> ["a","b"] (codes only). */
function tokenList(value: string | null): string[] {
  if (!value) return [];
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "")
    .map((v) => (v.includes("|") ? v.slice(v.lastIndexOf("|") + 1) : v));
}

function patientParam(q: URLSearchParams): string | undefined {
  const v = q.get("patient") ?? q.get("subject") ?? q.get("subject:Patient");
  if (!v) return undefined;
  return v.startsWith("Patient/") ? v.slice("Patient/".length) : v;
}

interface PageState {
  /** resource type */
  t: ResourceType;
  /** patient index (-1: a list search over patients) */
  p: number;
  /** filter, normalised */
  f: Record<string, string[]>;
  /** day the search was first answered (pages stay consistent across advance) */
  d: number;
  /** offset */
  o: number;
  /** page size */
  c: number;
  /** explicit ids (Patient?_id=, Practitioner?_id=) */
  ids?: string[];
}

function encodeState(s: PageState): string {
  return Buffer.from(JSON.stringify(s)).toString("base64url");
}
function decodeState(token: string): PageState | undefined {
  try {
    const s = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as PageState;
    if (!s || typeof s !== "object" || !isResourceType(s.t) || typeof s.o !== "number" || typeof s.c !== "number") return undefined;
    return s;
  } catch {
    return undefined;
  }
}

function matches(r: SimResource, f: Record<string, string[]>): boolean {
  if (f.category && f.category.length > 0 && !(r.category && f.category.includes(r.category))) return false;
  if (f.code && f.code.length > 0 && !(r.code && f.code.includes(r.code))) return false;
  if (f.status && f.status.length > 0 && !f.status.includes(String(r.body.status))) return false;
  if (f["clinical-status"] && f["clinical-status"].length > 0) {
    const cs = (r.body.clinicalStatus as { coding?: Array<{ code?: string }> } | undefined)?.coding?.[0]?.code;
    if (!cs || !f["clinical-status"].includes(cs)) return false;
  }
  return true;
}

/** GET {base}/{type}/{id} */
export function readResource(ctx: SearchContext, type: string, id: string): FhirReply {
  if (!isResourceType(type)) return outcomeReply(404, "not-supported", `Resource type ${type} is not supported.`);
  const r = findResource(ctx.pop, type, id);
  if (!r) return outcomeReply(404, "not-found", `${type}/${id} was not found.`, "4102");
  return reply(200, serializeResource(r, true), [r]);
}

export function findResource(pop: Population, type: ResourceType, id: string): SimResource | undefined {
  const loc = pop.locate(id);
  if (!loc) return undefined;
  if (type === "Practitioner" || type === "Organization") {
    const r = loc.owner < pop.size ? undefined : pop.shared(loc.slot);
    return r && r.type === type && r.id === id ? r : undefined;
  }
  if (loc.owner >= pop.size) return undefined;
  const snap = pop.patient(loc.owner);
  const r = snap.resources.find((x) => x.slot === loc.slot);
  return r && r.type === type && r.id === id ? r : undefined;
}

/** GET {base}/Group/{id}: the group with its members, so a client can crawl its patients. */
export function readGroup(ctx: SearchContext, id: string): FhirReply {
  const g = ctx.pop.group(id);
  if (!g) return outcomeReply(404, "not-found", `Group/${id} was not found.`, "4102");
  const member: Array<Record<string, unknown>> = [];
  for (let i = g.start; i < g.end; i++) member.push({ entity: { reference: `Patient/${ctx.pop.patientId(i)}` } });
  return reply(200, {
    resourceType: "Group",
    id: g.id,
    meta: { versionId: String(ctx.pop.day + 1), lastUpdated: new Date(ctx.pop.now()).toISOString() },
    type: "person",
    actual: true,
    name: `Simulated patients ${g.start + 1}-${g.end}`,
    quantity: g.end - g.start,
    member,
  });
}

/** GET {base}/{type}?params (or a page token). */
export function search(ctx: SearchContext, type: string, q: URLSearchParams): FhirReply {
  const token = q.get("pageToken");
  if (token) {
    const state = decodeState(token);
    if (!state || state.t !== type) return outcomeReply(400, "invalid", "The page token is not valid.", "4100");
    return page(ctx, state);
  }
  if (!isResourceType(type)) return outcomeReply(404, "not-supported", `Resource type ${type} is not supported.`);
  if (q.has("_lastUpdated") && type !== "Patient") {
    return outcomeReply(400, "not-supported", "The _lastUpdated search parameter is not supported for this resource.", "4100");
  }
  const countText = q.get("_count");
  let count = ctx.defaultCount;
  if (countText !== null) {
    const n = Number(countText);
    if (!Number.isInteger(n) || n < 1) return outcomeReply(400, "invalid", "_count must be a positive integer.", "4100");
    count = Math.min(n, ctx.maxCount);
  }
  const day = ctx.pop.day;

  if (type === "Patient" || type === "Practitioner" || type === "Organization") {
    const ids = tokenList(q.get("_id"));
    if (ids.length > 0) return page(ctx, { t: type, p: -1, f: {}, d: day, o: 0, c: count, ids });
    if (type !== "Patient") return outcomeReply(400, "required", `${type} search requires _id.`, "4107");
    const family = q.get("family")?.toLowerCase();
    const given = q.get("given")?.toLowerCase();
    const birthdate = q.get("birthdate") ?? undefined;
    const identifier = tokenList(q.get("identifier"));
    if (!family && !given && !birthdate && identifier.length === 0) {
      return outcomeReply(400, "required", "Patient search requires _id, identifier, or demographics (family, given, birthdate).", "4107");
    }
    const found: string[] = [];
    for (let i = 0; i < ctx.pop.size; i++) {
      const d = ctx.pop.patientSearchFields(i);
      if (family && !d.family.toLowerCase().startsWith(family)) continue;
      if (given && !d.given.toLowerCase().startsWith(given)) continue;
      if (birthdate && d.birthdate !== birthdate) continue;
      if (identifier.length > 0 && !identifier.includes(d.identifier)) continue;
      found.push(ctx.pop.patientId(i));
    }
    return page(ctx, { t: "Patient", p: -1, f: {}, d: day, o: 0, c: count, ids: found });
  }

  if (!(PATIENT_TYPES as readonly string[]).includes(type))
    return outcomeReply(404, "not-supported", `Search on ${type} is not supported.`);
  const patientId = patientParam(q);
  if (!patientId) return outcomeReply(400, "required", `${type} search requires the patient parameter.`, "4107");
  const patientIndex = ctx.pop.patientIndexOf(patientId);
  const f: Record<string, string[]> = {};
  if (type === "Observation") {
    const categories = tokenList(q.get("category"));
    const codes = tokenList(q.get("code"));
    if (categories.length === 0 && codes.length === 0) {
      return outcomeReply(400, "required", "Observation search requires a category or code parameter.", "4107");
    }
    for (const c of categories) {
      if (REFUSED_OBS_CATEGORIES.has(c))
        return outcomeReply(400, "not-supported", `Observation category ${c} is not supported by this search.`, "4100");
      if (!KNOWN_OBS_CATEGORIES.has(c)) return outcomeReply(400, "invalid", `Observation category ${c} is not a valid category.`, "4100");
    }
    if (categories.length > 0) f.category = categories;
    if (codes.length > 0) f.code = codes;
  } else {
    for (const name of ["category", "code", "status", "clinical-status"]) {
      const v = tokenList(q.get(name));
      if (v.length > 0) f[name] = v;
    }
  }
  if (patientIndex === undefined) return page(ctx, { t: type, p: -1, f, d: day, o: 0, c: count, ids: [] });
  return page(ctx, { t: type, p: patientIndex, f, d: day, o: 0, c: count });
}

function page(ctx: SearchContext, s: PageState): FhirReply {
  let all: SimResource[];
  if (s.ids) {
    all = [];
    for (const id of s.ids) {
      const r = findResource(ctx.pop, s.t, id);
      if (r) all.push(r);
    }
  } else {
    if (s.p < 0 || s.p >= ctx.pop.size) return outcomeReply(400, "invalid", "The page token is not valid.", "4100");
    const snap = ctx.pop.patient(s.p, s.d);
    all = snap.resources.filter((r) => r.type === s.t && matches(r, s.f));
  }
  const total = all.length;
  const selfUrl = `${ctx.baseUrl}/${s.t}?pageToken=${encodeState(s)}`;
  if (total === 0 || s.o >= total) {
    const links = `"link":[{"relation":"self","url":${JSON.stringify(selfUrl)}}]`;
    if (ctx.profile === "spec") return reply(200, `{"resourceType":"Bundle","type":"searchset","total":${total},${links}}`);
    const oo = `{"resource":${JSON.stringify(NO_RESULTS)},"search":{"mode":"outcome"}}`;
    return reply(200, `{"resourceType":"Bundle","type":"searchset","total":${total},${links},"entry":[${oo}]}`);
  }
  let size = s.c;
  // Epic's pages are sometimes short even when more follow: clients must follow `next`, not count.
  if (ctx.profile === "epic" && s.o + size < total && size > 1 && hashUnit(ctx.pop.seed, s.p, s.o, s.c, 0x5a) < 0.3) {
    size = Math.max(1, size - 1 - Math.floor(hashUnit(ctx.pop.seed, s.p, s.o, 0x5b) * (size / 2)));
  }
  const entries = all.slice(s.o, s.o + size);
  const next = s.o + entries.length < total ? { ...s, o: s.o + entries.length } : undefined;
  let links = `{"relation":"self","url":${JSON.stringify(selfUrl)}}`;
  if (next) links += `,{"relation":"next","url":${JSON.stringify(`${ctx.baseUrl}/${s.t}?pageToken=${encodeState(next)}`)}}`;
  const parts = entries.map(
    (r) =>
      `{"link":[{"relation":"self","url":"${ctx.baseUrl}/${r.type}/${r.id}"}],"fullUrl":"${ctx.baseUrl}/${r.type}/${r.id}","resource":${serializeResource(r, true)},"search":{"mode":"match"}}`,
  );
  // Epic adds an outcome entry beside the matches when some asked-for category or code found
  // nothing: clients must keep entries by resourceType.
  if (ctx.profile === "epic" && s.o === 0) {
    for (const name of ["category", "code"]) {
      for (const value of s.f[name] ?? []) {
        if (!all.some((r) => (name === "category" ? r.category : r.code) === value)) {
          const oo = operationOutcome({
            severity: "warning",
            code: "processing",
            epicCode: "4101",
            text: "Resource request returns no results.",
            diagnostics: `No results for ${name} ${value}.`,
          });
          parts.push(`{"resource":${JSON.stringify(oo)},"search":{"mode":"outcome"}}`);
        }
      }
    }
  }
  return reply(
    200,
    `{"resourceType":"Bundle","type":"searchset","total":${total},"link":[${links}],"entry":[${parts.join(",")}]}`,
    entries,
  );
}
