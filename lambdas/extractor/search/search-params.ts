// Which searches crawl a patient's resources of one type, as Epic requires them (pure).
// Patient is read by id; Practitioner and Organization are read by id once per run (they are
// shared by many patients); every other type is searched per patient, Observation once per
// configured category (Epic refuses an Observation search without category or code).

/** Types read by id, not searched per patient. */
export const SHARED_TYPES: ReadonlySet<string> = new Set(["Practitioner", "Organization"]);

/** The parameter sets of a type's per-patient searches (each set is one search, paged). */
export function searchParamSets(
  type: string,
  observationCategories: readonly string[],
  extra?: Record<string, Array<Record<string, string>>>,
): Array<Record<string, string>> {
  if (extra && extra[type]) return extra[type];
  if (type === "Observation") return observationCategories.map((category) => ({ category }));
  return [{}];
}

/** The first page's URL of a type's search for one patient. */
export function patientSearchUrl(baseUrl: string, type: string, patientId: string, params: Record<string, string>, count: number): string {
  const u = new URL(`${baseUrl.replace(/\/+$/, "")}/${type}`);
  u.searchParams.set("patient", patientId);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  u.searchParams.set("_count", String(count));
  return u.toString();
}

export function readUrl(baseUrl: string, type: string, id: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/${type}/${encodeURIComponent(id)}`;
}

const REF = /^(?:.*\/)?(Practitioner|Organization|PractitionerRole|Location)\/([^/]+)(?:\/_history\/.*)?$/;

/** Adds the Practitioner/Organization ids a resource references (any `reference` anywhere in it). */
export function collectSharedRefs(value: unknown, wanted: ReadonlySet<string>, out: Map<string, Set<string>>): void {
  if (Array.isArray(value)) {
    for (const v of value) collectSharedRefs(v, wanted, out);
    return;
  }
  if (value === null || typeof value !== "object") return;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k === "reference" && typeof v === "string") {
      const m = REF.exec(v);
      if (m && wanted.has(m[1])) {
        let s = out.get(m[1]);
        if (!s) out.set(m[1], (s = new Set()));
        s.add(m[2]);
      }
    } else if (typeof v === "object" && v !== null) collectSharedRefs(v, wanted, out);
  }
}

/** The next page's URL of a search Bundle (`link` with relation "next"), if any. */
export function nextLink(bundle: { link?: Array<{ relation?: string; url?: string }> }): string | undefined {
  return bundle.link?.find((l) => l.relation === "next" && typeof l.url === "string")?.url;
}

/** Patient ids of a Group's members (member[].entity.reference "Patient/…"). */
export function groupPatientIds(group: { member?: Array<{ entity?: { reference?: string }; inactive?: boolean }> }): string[] {
  const ids: string[] = [];
  for (const m of group.member ?? []) {
    const ref = m.entity?.reference;
    if (typeof ref !== "string" || m.inactive === true) continue;
    const at = ref.lastIndexOf("Patient/");
    if (at < 0) continue;
    const id = ref.slice(at + "Patient/".length).split("/")[0];
    if (id) ids.push(id);
  }
  return ids;
}
