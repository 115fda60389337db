// The deterministic synthetic population. Nothing is stored: patient i's resources on simulated
// day d are a pure function of (seed, i, d), regenerated on demand (with a small LRU cache for the
// search crawl, which asks for the same patient once per resource type).
//
// Day 0 is the base history (five years of care before `startTime`); each later day applies a
// deterministic set of changes (updates with a new versionId and lastUpdated, additions,
// deletions) to about one patient in five, so incremental extraction can be tested.
import {
  ACT_CODE,
  ALLERGENS,
  BP_DIASTOLIC,
  BP_PANEL,
  BP_SYSTOLIC,
  CITIES,
  CONDITION_CATEGORY,
  CONDITION_CLINICAL,
  CONDITION_VERIFICATION,
  CONDITIONS,
  CVX,
  DIABETES,
  DIAG_SERVICE,
  ENCOUNTER_TYPES,
  FAMILY_NAMES,
  GIVEN_FEMALE,
  GIVEN_MALE,
  HBA1C,
  ICD10,
  LAB_PANELS,
  LOINC,
  MEDICATIONS,
  MRN_SYSTEM,
  OBS_CATEGORY,
  PROCEDURES,
  REACTIONS,
  RXNORM,
  SMOKING_ANSWERS,
  SMOKING_STATUS,
  SNOMED,
  SPECIALTIES,
  STREET_KINDS,
  STREETS,
  UCUM,
  VACCINES,
  VITALS,
  type ConditionCode,
  type LabPanel,
  type QuantityCode,
} from "./codes";
import { makeIdCodec, MAX_PATIENTS, MAX_SLOT, resourceKey, SHARED_OWNER, type IdCodec } from "./ids";
import { ALL_RESOURCE_TYPES, type FhirResourceType } from "../../config/schema";
import { Rng } from "./prng";

// The resource types the simulator serves are the ones the config schema knows (one list).
export const RESOURCE_TYPES = ALL_RESOURCE_TYPES;
export type ResourceType = FhirResourceType;
export function isResourceType(s: string): s is ResourceType {
  return (RESOURCE_TYPES as readonly string[]).includes(s);
}
/** Types that belong to one patient (everything but the shared Practitioner and Organization). */
export const PATIENT_TYPES: readonly ResourceType[] = RESOURCE_TYPES.filter((t) => t !== "Practitioner" && t !== "Organization");

export const DAY_MS = 86_400_000;
/** Default simulated "now" of day 0. Fixed, so the same seed gives the same timestamps. */
export const DEFAULT_START_TIME = Date.UTC(2025, 0, 1);
const YEAR_MS = 365 * DAY_MS;

/** One resource version as the simulator holds it: the FHIR body plus what search and stats need. */
export interface SimResource {
  type: ResourceType;
  id: string;
  owner: number;
  slot: number;
  version: number;
  /** epoch milliseconds */
  lastUpdated: number;
  /** Observation category code (vital-signs, laboratory, social-history); Condition category. */
  category?: string;
  /** Primary code (LOINC for Observations), for `code=` searches. */
  code?: string;
  /** Every element after resourceType, id and meta. */
  body: Record<string, unknown>;
}

export interface DeletedResource {
  type: ResourceType;
  id: string;
  owner: number;
  slot: number;
  /** epoch milliseconds */
  deletedAt: number;
}

export interface PatientSnapshot {
  index: number;
  day: number;
  /** Live resources, Patient first. */
  resources: SimResource[];
  /** Resources deleted on days 1..day. */
  deleted: DeletedResource[];
  /** Practitioner and Organization indexes referenced by this patient's resources. */
  practitioners: number[];
  organizations: number[];
}

interface Demographics {
  gender: "male" | "female";
  given: string;
  family: string;
  birthDate: string;
  line: string;
  city: string;
  state: string;
  postalCode: string;
  phone: string;
  mrn: string;
  diabetic: boolean;
}

export interface PopulationOptions {
  patients: number;
  seed: number;
  /** Epic profile: some ids longer than 64 characters. */
  longIds: boolean;
  startTime?: number;
  /** Patients per Group (default: all patients in one group). */
  groupSize?: number;
}

export interface GroupInfo {
  id: string;
  /** Patient indexes [start, end). */
  start: number;
  end: number;
}

const ORG_SLOT_BASE = 200_000;

let isoDay = NaN;
let isoDayPrefix = "";
const pad2 = (n: number): string => (n < 10 ? "0" + n : String(n));
/** ISO 8601 instant with milliseconds, like Date.toISOString but cached per day (a hot path). */
export function iso(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  if (day !== isoDay) {
    isoDay = day;
    isoDayPrefix = new Date(day * 86_400_000).toISOString().slice(0, 11);
  }
  let r = ms - day * 86_400_000;
  const h = Math.floor(r / 3_600_000);
  r -= h * 3_600_000;
  const m = Math.floor(r / 60_000);
  r -= m * 60_000;
  const sec = Math.floor(r / 1000);
  const milli = r - sec * 1000;
  return `${isoDayPrefix}${pad2(h)}:${pad2(m)}:${pad2(sec)}.${milli < 10 ? "00" + milli : milli < 100 ? "0" + milli : milli}Z`;
}
function isoDate(ms: number): string {
  return iso(ms).slice(0, 10);
}
function ref(type: string, id: string, display?: string): Record<string, string> {
  return display === undefined ? { reference: `${type}/${id}` } : { reference: `${type}/${id}`, display };
}

export class Population {
  readonly size: number;
  readonly seed: number;
  readonly startTime: number;
  readonly practitionerCount: number;
  readonly organizationCount: number;
  readonly groups: GroupInfo[];
  private readonly ids: IdCodec;
  private currentDay = 0;
  private readonly cache = new Map<string, PatientSnapshot>();
  private readonly cacheLimit = 128;

  constructor(opts: PopulationOptions) {
    if (!Number.isInteger(opts.patients) || opts.patients < 1 || opts.patients > MAX_PATIENTS) {
      throw new Error(`patients must be an integer between 1 and ${MAX_PATIENTS}`);
    }
    this.size = opts.patients;
    this.seed = opts.seed | 0;
    this.startTime = opts.startTime ?? DEFAULT_START_TIME;
    this.ids = makeIdCodec(this.seed, opts.longIds);
    this.practitionerCount = Math.max(5, Math.ceil(this.size / 40));
    this.organizationCount = Math.max(2, Math.ceil(this.size / 400));
    const groupSize = opts.groupSize && opts.groupSize > 0 ? Math.floor(opts.groupSize) : this.size;
    this.groups = [];
    for (let start = 0, n = 1; start < this.size; start += groupSize, n++) {
      this.groups.push({ id: `simulated-group-${n}`, start, end: Math.min(this.size, start + groupSize) });
    }
  }

  /** The simulated day (0 at start; POST /_admin/advance moves it). */
  get day(): number {
    return this.currentDay;
  }
  /** Simulated "now" in epoch ms: the end of the current day's changes. */
  now(day = this.currentDay): number {
    return this.startTime + day * DAY_MS;
  }
  advance(days = 1): number {
    if (!Number.isInteger(days) || days < 1 || days > 3650) throw new Error("days must be an integer from 1 to 3650");
    this.currentDay += days;
    this.cache.clear();
    return this.currentDay;
  }

  group(id: string): GroupInfo | undefined {
    return this.groups.find((g) => g.id === id);
  }

  patientId(index: number): string {
    return this.ids.encode(index, 0, "Patient");
  }
  practitionerId(index: number): string {
    return this.ids.encode(SHARED_OWNER, index, "Practitioner");
  }
  organizationId(index: number): string {
    return this.ids.encode(SHARED_OWNER, ORG_SLOT_BASE + index, "Organization");
  }
  /** Patient index of a Patient id, or undefined. */
  patientIndexOf(id: string): number | undefined {
    const d = this.ids.decode(id);
    return d && d.slot === 0 && d.owner < this.size ? d.owner : undefined;
  }
  /** Owner and slot of any id this population made. */
  locate(id: string): { owner: number; slot: number } | undefined {
    return this.ids.decode(id);
  }

  /** Numeric key of one resource version (for distinct counting). */
  static key(r: { owner: number; slot: number; version: number }): number {
    return resourceKey(r.owner, r.slot, r.version);
  }

  // ---------------------------------------------------------------- shared resources

  practitioner(index: number): SimResource | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.practitionerCount) return undefined;
    const rng = new Rng(this.seed, index, 901);
    const female = rng.chance(0.5);
    const given = rng.pick(female ? GIVEN_FEMALE : GIVEN_MALE);
    const family = rng.pick(FAMILY_NAMES);
    const spec = SPECIALTIES[index % SPECIALTIES.length];
    return {
      type: "Practitioner",
      id: this.practitionerId(index),
      owner: SHARED_OWNER,
      slot: index,
      version: 1,
      lastUpdated: this.startTime - 400 * DAY_MS + index * 60_000,
      body: {
        identifier: [
          {
            use: "usual",
            system: "http://hl7.org/fhir/sid/us-npi",
            value: String(1_000_000_000 + ((index * 7919 + this.seed) % 899_999_999)),
          },
        ],
        active: true,
        name: [{ use: "usual", text: `${given} ${family}, MD`, family, given: [given], prefix: ["Dr."] }],
        gender: female ? "female" : "male",
        qualification: [
          {
            code: { coding: [{ system: "http://nucc.org/provider-taxonomy", code: spec.code, display: spec.display }], text: spec.display },
          },
        ],
      },
    };
  }

  organization(index: number): SimResource | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.organizationCount) return undefined;
    const rng = new Rng(this.seed, index, 902);
    const place = CITIES[index % CITIES.length];
    const name = `${place.city} ${rng.pick(["Family Clinic", "Medical Center", "Health Partners", "Community Hospital"])} ${index + 1}`;
    return {
      type: "Organization",
      id: this.organizationId(index),
      owner: SHARED_OWNER,
      slot: ORG_SLOT_BASE + index,
      version: 1,
      lastUpdated: this.startTime - 500 * DAY_MS + index * 60_000,
      body: {
        identifier: [{ use: "usual", system: "urn:oid:1.2.840.114350.1.13.0.1.7.2.696570", value: String(10_000 + index) }],
        active: true,
        type: [
          { coding: [{ system: "http://terminology.hl7.org/CodeSystem/organization-type", code: "prov", display: "Healthcare Provider" }] },
        ],
        name,
        telecom: [{ system: "phone", value: `608-555-${String(1000 + index).slice(-4)}`, use: "work" }],
        address: [
          {
            line: [`${100 + index} Clinic Way`],
            city: place.city,
            state: place.state,
            postalCode: `${place.zip}0${index % 10}`,
            country: "USA",
          },
        ],
      },
    };
  }

  /** A shared resource (Practitioner/Organization) by slot. */
  shared(slot: number): SimResource | undefined {
    return slot >= ORG_SLOT_BASE ? this.organization(slot - ORG_SLOT_BASE) : this.practitioner(slot);
  }

  // ---------------------------------------------------------------- patients

  private demographics(i: number): Demographics {
    const rng = new Rng(this.seed, i, 101);
    const gender = rng.chance(0.51) ? "female" : "male";
    const given = rng.pick(gender === "female" ? GIVEN_FEMALE : GIVEN_MALE);
    const family = rng.pick(FAMILY_NAMES);
    const birth = this.startTime - rng.int(1, 90) * YEAR_MS - rng.int(0, 364) * DAY_MS;
    const place = rng.pick(CITIES);
    return {
      gender,
      given,
      family,
      birthDate: isoDate(birth),
      line: `${rng.int(10, 9999)} ${rng.pick(STREETS)} ${rng.pick(STREET_KINDS)}`,
      city: place.city,
      state: place.state,
      postalCode: `${place.zip}${String(rng.int(0, 99)).padStart(2, "0")}`,
      phone: `${rng.pick(["608", "414", "920", "815", "612"])}-555-${String(rng.int(0, 9999)).padStart(4, "0")}`,
      mrn: `E${String(1_000_000 + i)}`,
      diabetic: rng.chance(0.35),
    };
  }

  /** Demographic fields a Patient search may match on (day-0 values; they never change). */
  patientSearchFields(i: number): { family: string; given: string; birthdate: string; gender: string; identifier: string } {
    const d = this.demographics(i);
    return { family: d.family, given: d.given, birthdate: d.birthDate, gender: d.gender, identifier: d.mrn };
  }

  /**
   * PHI strings of every patient (full name, birth date, street line, phone, MRN), as they appear
   * in the Patient resources: for tests that assert no PHI reaches a log. Day-0 values; advancing
   * time never changes them. `limit` caps the number of patients sampled (first N).
   */
  phiStrings(limit = this.size): string[] {
    const out: string[] = [];
    for (let i = 0; i < Math.min(limit, this.size); i++) {
      const d = this.demographics(i);
      out.push(`${d.given} ${d.family}`, d.birthDate, d.line, d.phone, d.mrn);
    }
    return out;
  }

  /** Patient i's live resources on `day` (default: today). */
  patient(i: number, day = this.currentDay): PatientSnapshot {
    if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new Error(`no patient ${i}`);
    const cacheKey = `${i}:${day}`;
    const hit = this.cache.get(cacheKey);
    if (hit) {
      this.cache.delete(cacheKey);
      this.cache.set(cacheKey, hit);
      return hit;
    }
    const snap = new PatientBuilder(this, i, this.demographics(i)).build(day);
    this.cache.set(cacheKey, snap);
    if (this.cache.size > this.cacheLimit) this.cache.delete(this.cache.keys().next().value as string);
    return snap;
  }

  /** Patient i's resources generated without caching (for bulk jobs that visit each patient once). */
  patientUncached(i: number, day = this.currentDay): PatientSnapshot {
    const hit = this.cache.get(`${i}:${day}`);
    return hit ?? new PatientBuilder(this, i, this.demographics(i)).build(day);
  }

  /** @internal */
  encodeId(owner: number, slot: number, type: ResourceType): string {
    return this.ids.encode(owner, slot, type);
  }
}

const BP_SYSTOLIC_CODE = { coding: [{ system: LOINC, code: BP_SYSTOLIC.code, display: BP_SYSTOLIC.display }] };
const BP_DIASTOLIC_CODE = { coding: [{ system: LOINC, code: BP_DIASTOLIC.code, display: BP_DIASTOLIC.display }] };
const categoryCache = new Map<string, unknown>();
function sharedCategory(code: string, display: string): unknown {
  let c = categoryCache.get(code);
  if (!c) categoryCache.set(code, (c = [{ coding: [{ system: OBS_CATEGORY, code, display }], text: display }]));
  return c;
}
const loincCache = new Map<string, unknown>();
function sharedLoinc(code: string, display: string): unknown {
  let c = loincCache.get(code);
  if (!c) loincCache.set(code, (c = { coding: [{ system: LOINC, code, display }], text: display }));
  return c;
}

/** FHIR JSON text of a resource; `withLastUpdated` false drops meta.lastUpdated (Epic bulk output). */
export function serializeResource(r: SimResource, withLastUpdated: boolean): string {
  const rest = JSON.stringify(r.body);
  const meta = withLastUpdated ? `{"versionId":"${r.version}","lastUpdated":"${iso(r.lastUpdated)}"}` : `{"versionId":"${r.version}"}`;
  return `{"resourceType":"${r.type}","id":"${r.id}","meta":${meta}${rest.length > 2 ? "," + rest.slice(1) : "}"}`;
}

/** Builds one patient's history, then replays the daily changes up to the requested day. */
class PatientBuilder {
  private readonly rng: Rng;
  private readonly resources: SimResource[] = [];
  private nextSlot = 0;
  private readonly patientRef: Record<string, string>;
  private readonly subjectRef: Record<string, string>;
  private readonly orgIndex: number;
  private readonly clinicians: number[];
  private readonly pracUsed = new Set<number>();
  private readonly orgUsed = new Set<number>();

  constructor(
    private readonly pop: Population,
    private readonly index: number,
    private readonly demo: Demographics,
  ) {
    this.rng = new Rng(pop.seed, index, 202);
    this.patientRef = ref("Patient", pop.patientId(index), `${demo.given} ${demo.family}`);
    this.subjectRef = { reference: this.patientRef.reference };
    this.orgIndex = this.rng.int(0, pop.organizationCount - 1);
    // Clinicians of the patient's clinic: practitioners whose index maps to the same organization.
    const perOrg = Math.max(1, Math.floor(pop.practitionerCount / pop.organizationCount));
    this.clinicians = [];
    for (let k = 0; k < 3; k++) {
      const p = (this.orgIndex + pop.organizationCount * this.rng.int(0, perOrg - 1)) % pop.practitionerCount;
      this.clinicians.push(p);
    }
  }

  build(day: number): PatientSnapshot {
    this.base();
    const deleted: DeletedResource[] = [];
    for (let k = 1; k <= day; k++) this.applyDay(k, deleted);
    return {
      index: this.index,
      day,
      resources: this.resources,
      deleted,
      practitioners: [...this.pracUsed].sort((a, b) => a - b),
      organizations: [...this.orgUsed].sort((a, b) => a - b),
    };
  }

  private add(
    type: ResourceType,
    lastUpdated: number,
    body: Record<string, unknown>,
    extra?: { category?: string; code?: string },
  ): SimResource {
    const slot = this.nextSlot++;
    if (slot > MAX_SLOT) throw new Error("too many resources for one patient");
    const r: SimResource = { type, id: this.pop.encodeId(this.index, slot, type), owner: this.index, slot, version: 1, lastUpdated, body };
    if (extra?.category) r.category = extra.category;
    if (extra?.code) r.code = extra.code;
    this.resources.push(r);
    return r;
  }

  private practitionerRef(p: number): Record<string, string> {
    this.pracUsed.add(p);
    return ref("Practitioner", this.pop.practitionerId(p));
  }
  private organizationRef(o: number): Record<string, string> {
    this.orgUsed.add(o);
    return ref("Organization", this.pop.organizationId(o));
  }

  /** lastUpdated of a base resource: shortly after the clinical date, always before day 0's end. */
  private baseUpdated(clinical: number): number {
    return Math.min(clinical + this.rng.int(0, 3 * 86_400) * 1000, this.pop.startTime - 1000);
  }

  private base(): void {
    const d = this.demo;
    const rng = this.rng;
    const start = this.pop.startTime;
    this.add("Patient", start - rng.int(30, 2000) * DAY_MS - rng.int(0, 86_399) * 1000, {
      extension: [
        {
          url: "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
          valueCode: d.gender === "female" ? "F" : "M",
        },
      ],
      identifier: [
        {
          use: "usual",
          type: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v2-0203", code: "MR" }], text: "MRN" },
          system: MRN_SYSTEM,
          value: d.mrn,
        },
      ],
      active: true,
      name: [{ use: "official", text: `${d.given} ${d.family}`, family: d.family, given: [d.given] }],
      telecom: [{ system: "phone", value: d.phone, use: "home" }],
      gender: d.gender,
      birthDate: d.birthDate,
      address: [{ use: "home", line: [d.line], city: d.city, state: d.state, postalCode: d.postalCode, country: "USA" }],
      maritalStatus: {
        coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", code: rng.pick(["M", "S", "D", "W"]) }],
      },
      communication: [
        { language: { coding: [{ system: "urn:ietf:bcp:47", code: "en", display: "English" }], text: "English" }, preferred: true },
      ],
      generalPractitioner: [this.practitionerRef(this.clinicians[0])],
      managingOrganization: this.organizationRef(this.orgIndex),
    });

    // Problems: diabetes for about a third of patients, plus a few chronic and acute conditions.
    const conditions: ConditionCode[] = d.diabetic ? [DIABETES] : [];
    const nCond = rng.int(1, 6);
    for (let k = 0; k < nCond; k++) {
      const c = rng.pick(CONDITIONS);
      if (!conditions.includes(c)) conditions.push(c);
    }
    for (const c of conditions) this.condition(c, start - rng.int(30, 5 * 365) * DAY_MS);

    // Medications for the chronic problems, and a few short courses.
    for (const c of conditions) {
      for (const m of MEDICATIONS)
        if (m.forCondition === c.snomed && rng.chance(0.8)) this.medication(m, rng.chance(0.8) ? "active" : "stopped");
    }
    const nAcute = rng.int(0, 3);
    for (let k = 0; k < nAcute; k++) this.medication(rng.pick(MEDICATIONS.slice(8)), "completed");

    const nAllergy = rng.int(0, 2);
    for (let k = 0; k < nAllergy; k++) this.allergy();
    const nImm = rng.int(2, 8);
    for (let k = 0; k < nImm; k++) this.immunization(start - rng.int(10, 5 * 365) * DAY_MS);
    const nProc = rng.int(1, 5);
    for (let k = 0; k < nProc; k++) this.procedure(start - rng.int(10, 5 * 365) * DAY_MS);

    const nEnc = rng.int(5, 20);
    for (let k = 0; k < nEnc; k++) this.encounter(start - rng.int(1, 5 * 365) * DAY_MS - rng.int(0, 86_399) * 1000, undefined);

    const nSmoke = rng.int(1, 2);
    for (let k = 0; k < nSmoke; k++) this.smoking(start - rng.int(1, 5 * 365) * DAY_MS);
  }

  private condition(c: ConditionCode, onset: number): SimResource {
    const rng = this.rng;
    const resolved = !c.chronic && rng.chance(0.85);
    const body: Record<string, unknown> = {
      clinicalStatus: { coding: [{ system: CONDITION_CLINICAL, code: resolved ? "resolved" : "active" }] },
      verificationStatus: { coding: [{ system: CONDITION_VERIFICATION, code: "confirmed" }] },
      category: [{ coding: [{ system: CONDITION_CATEGORY, code: c.chronic ? "problem-list-item" : "encounter-diagnosis" }] }],
      code: {
        coding: [
          { system: SNOMED, code: c.snomed, display: c.display },
          { system: ICD10, code: c.icd10, display: c.display },
        ],
        text: c.display,
      },
      subject: this.patientRef,
      onsetDateTime: iso(onset),
      recordedDate: iso(onset + DAY_MS),
    };
    if (resolved) body.abatementDateTime = iso(onset + rng.int(7, 60) * DAY_MS);
    return this.add("Condition", this.baseUpdated(onset + DAY_MS), body, {
      category: c.chronic ? "problem-list-item" : "encounter-diagnosis",
      code: c.snomed,
    });
  }

  private medication(m: (typeof MEDICATIONS)[number], status: string, authored?: number): SimResource {
    const rng = this.rng;
    const when = authored ?? this.pop.startTime - rng.int(10, 4 * 365) * DAY_MS;
    return this.add(
      "MedicationRequest",
      authored ? when : this.baseUpdated(when),
      {
        status,
        intent: "order",
        category: [{ coding: [{ system: "http://terminology.hl7.org/CodeSystem/medicationrequest-category", code: "outpatient" }] }],
        medicationCodeableConcept: { coding: [{ system: RXNORM, code: m.rxnorm, display: m.display }], text: m.display },
        subject: this.patientRef,
        authoredOn: iso(when),
        requester: this.practitionerRef(rng.pick(this.clinicians)),
        dosageInstruction: [{ text: m.dose }],
      },
      { code: m.rxnorm },
    );
  }

  private allergy(): SimResource {
    const rng = this.rng;
    const a = rng.pick(ALLERGENS);
    const recorded = this.pop.startTime - rng.int(30, 5 * 365) * DAY_MS;
    const reaction = rng.pick(REACTIONS);
    return this.add("AllergyIntolerance", this.baseUpdated(recorded), {
      clinicalStatus: { coding: [{ system: "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", code: "active" }] },
      verificationStatus: {
        coding: [{ system: "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", code: "confirmed" }],
      },
      type: "allergy",
      category: [a.category],
      criticality: rng.pick(["low", "high"]),
      code: { coding: [{ system: SNOMED, code: a.code, display: a.display }], text: a.display },
      patient: this.patientRef,
      recordedDate: iso(recorded),
      reaction: [
        {
          manifestation: [{ coding: [{ system: SNOMED, code: reaction.code, display: reaction.display }], text: reaction.display }],
          severity: rng.pick(["mild", "moderate", "severe"]),
        },
      ],
    });
  }

  private immunization(when: number): SimResource {
    const rng = this.rng;
    const v = rng.pick(VACCINES);
    return this.add(
      "Immunization",
      this.baseUpdated(when),
      {
        status: "completed",
        vaccineCode: { coding: [{ system: CVX, code: v.code, display: v.display }], text: v.display },
        patient: this.patientRef,
        occurrenceDateTime: iso(when),
        primarySource: true,
        lotNumber: `L${rng.int(100000, 999999)}`,
      },
      { code: v.code },
    );
  }

  private procedure(when: number): SimResource {
    const rng = this.rng;
    const p = rng.pick(PROCEDURES);
    return this.add(
      "Procedure",
      this.baseUpdated(when),
      {
        status: "completed",
        code: { coding: [{ system: SNOMED, code: p.code, display: p.display }], text: p.display },
        subject: this.patientRef,
        performedDateTime: iso(when),
        performer: [{ actor: this.practitionerRef(rng.pick(this.clinicians)) }],
      },
      { code: p.code },
    );
  }

  private obsBase(
    category: string,
    categoryDisplay: string,
    code: { code: string; display: string },
    when: number,
    encounterRef?: Record<string, string>,
  ): Record<string, unknown> {
    // Constant parts are shared objects (never mutated: updates replace fields), which keeps
    // generation fast and light on the garbage collector.
    const body: Record<string, unknown> = {
      status: "final",
      category: sharedCategory(category, categoryDisplay),
      code: sharedLoinc(code.code, code.display),
      subject: this.subjectRef,
    };
    if (encounterRef) body.encounter = encounterRef;
    body.effectiveDateTime = iso(when);
    body.issued = iso(when + 3_600_000);
    return body;
  }

  private quantity(q: QuantityCode, mean = q.mean): Record<string, unknown> {
    return { value: this.rng.around(mean, q.spread, q.digits), unit: q.unit, system: UCUM, code: q.unit };
  }

  /** An encounter with its vital signs and, for some, laboratory panels with DiagnosticReports. */
  private encounter(when: number, updatedAt: number | undefined): void {
    const rng = this.rng;
    const t = rng.chance(0.85) ? ENCOUNTER_TYPES[rng.int(0, 2)] : rng.pick(ENCOUNTER_TYPES);
    const clinician = rng.pick(this.clinicians);
    const end = when + rng.int(15, t.cls === "IMP" ? 4320 : 90) * 60_000;
    const lu = (clinical: number): number => updatedAt ?? this.baseUpdated(clinical);
    const enc = this.add("Encounter", lu(end), {
      identifier: [
        { use: "usual", system: "urn:oid:1.2.840.114350.1.13.0.1.7.3.698084.8", value: String(rng.int(100_000_000, 999_999_999)) },
      ],
      status: "finished",
      class: {
        system: ACT_CODE,
        code: t.cls,
        display: t.cls === "AMB" ? "ambulatory" : t.cls === "EMER" ? "emergency" : "inpatient encounter",
      },
      type: [{ coding: [{ system: SNOMED, code: t.code, display: t.display }], text: t.display }],
      subject: this.patientRef,
      participant: [{ individual: this.practitionerRef(clinician) }],
      period: { start: iso(when), end: iso(end) },
      serviceProvider: this.organizationRef(this.orgIndex),
    });

    // Vital signs: the blood pressure panel with its components, then the single vitals.
    const vitalsAt = when + 10 * 60_000;
    const encRef = { reference: `Encounter/${enc.id}` };
    const bp = this.obsBase("vital-signs", "Vital Signs", BP_PANEL, vitalsAt, encRef);
    const sys = rng.around(this.demo.diabetic ? 134 : 124, 16);
    bp.component = [
      { code: BP_SYSTOLIC_CODE, valueQuantity: { value: sys, unit: "mm[Hg]", system: UCUM, code: "mm[Hg]" } },
      {
        code: BP_DIASTOLIC_CODE,
        valueQuantity: { value: Math.round(sys * 0.64 + rng.int(-6, 6)), unit: "mm[Hg]", system: UCUM, code: "mm[Hg]" },
      },
    ];
    this.add("Observation", lu(vitalsAt), bp, { category: "vital-signs", code: BP_PANEL.code });
    for (const v of VITALS) {
      if (v.code === "9279-1" && rng.chance(0.3)) continue;
      const o = this.obsBase("vital-signs", "Vital Signs", v, vitalsAt, encRef);
      o.valueQuantity = this.quantity(v);
      this.add("Observation", lu(vitalsAt), o, { category: "vital-signs", code: v.code });
    }

    // Laboratory panels at about half of the encounters (HbA1c more often for diabetics).
    if (rng.chance(0.5)) {
      const panels: LabPanel[] = [rng.pick(LAB_PANELS)];
      if (rng.chance(0.4)) panels.push(rng.pick(LAB_PANELS));
      if (this.demo.diabetic && !panels.some((p) => p.code === HBA1C) && rng.chance(0.6)) panels.push(LAB_PANELS[3]);
      const labAt = when + 30 * 60_000;
      for (const panel of panels) {
        const results: Array<Record<string, string>> = [];
        for (const m of panel.members) {
          const o = this.obsBase("laboratory", "Laboratory", m, labAt, encRef);
          if (m.kind === "quantity") {
            o.valueQuantity = this.quantity(m, m.code === HBA1C && this.demo.diabetic ? 7.8 : m.mean);
          } else if (m.kind === "concept") {
            const a = rng.chance(0.85) ? m.answers[0] : rng.pick(m.answers);
            o.valueCodeableConcept = { coding: [{ system: SNOMED, code: a.code, display: a.display }], text: a.display };
          } else {
            o.valueString = rng.pick(m.answers);
          }
          const r = this.add("Observation", lu(labAt + 3_600_000), o, { category: "laboratory", code: m.code });
          results.push({ reference: `Observation/${r.id}` });
        }
        this.add(
          "DiagnosticReport",
          lu(labAt + 7_200_000),
          {
            status: "final",
            category: [{ coding: [{ system: DIAG_SERVICE, code: "LAB", display: "Laboratory" }], text: "Laboratory" }],
            code: { coding: [{ system: LOINC, code: panel.code, display: panel.display }], text: panel.display },
            subject: this.subjectRef,
            encounter: encRef,
            effectiveDateTime: iso(labAt),
            issued: iso(labAt + 7_200_000),
            performer: [this.organizationRef(this.orgIndex)],
            result: results,
          },
          { category: "LAB", code: panel.code },
        );
      }
    }
  }

  private smoking(when: number): SimResource {
    const o = this.obsBase("social-history", "Social History", SMOKING_STATUS, when);
    const a = this.rng.pick(SMOKING_ANSWERS);
    o.valueCodeableConcept = { coding: [{ system: SNOMED, code: a.code, display: a.display }], text: a.display };
    return this.add("Observation", this.baseUpdated(when), o, { category: "social-history", code: SMOKING_STATUS.code });
  }

  // ---------------------------------------------------------------- daily changes

  /** Day k's changes for this patient: about one patient in five is touched on a given day. */
  private applyDay(k: number, deleted: DeletedResource[]): void {
    const rng = new Rng(this.pop.seed, this.index, k, 303);
    if (!rng.chance(0.2)) return;
    const dayStart = this.pop.now(k - 1);
    // Change times fall inside (now(k-1), now(k)], so `_since = transactionTime of day k-1` finds them.
    const at = (): number => dayStart + rng.int(1, 86_400) * 1000;
    const nUpd = rng.int(1, 3);
    const picked = new Set<number>();
    for (let u = 0; u < nUpd; u++) {
      const idx = rng.int(0, this.resources.length - 1);
      if (picked.has(idx)) continue; // one new version per resource per day
      picked.add(idx);
      this.update(this.resources[idx], rng, at());
    }
    if (rng.chance(0.5)) {
      const when = at();
      this.encounter(when - 3 * 3_600_000, when);
    }
    if (rng.chance(0.35)) {
      const idx = rng.int(1, this.resources.length - 1);
      const r = this.resources[idx];
      if (r.type !== "Encounter" && r.type !== "DiagnosticReport") {
        this.resources.splice(idx, 1);
        deleted.push({ type: r.type, id: r.id, owner: r.owner, slot: r.slot, deletedAt: at() });
      }
    }
  }

  private update(r: SimResource, rng: Rng, when: number): void {
    const b = { ...r.body };
    switch (r.type) {
      case "Patient": {
        const cur = (b.maritalStatus as { coding: Array<{ code: string }> }).coding[0].code;
        b.maritalStatus = { coding: [{ system: "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", code: cur === "M" ? "D" : "M" }] };
        break;
      }
      case "Observation": {
        b.status = "amended";
        const vq = b.valueQuantity as { value: number } | undefined;
        if (vq) b.valueQuantity = { ...vq, value: Math.round(vq.value * (1 + (rng.next() - 0.5) / 10) * 100) / 100 };
        else b.note = [{ text: `Corrected on ${isoDate(when)}` }];
        break;
      }
      case "Condition": {
        const active = (b.clinicalStatus as { coding: Array<{ code: string }> }).coding[0].code === "active";
        b.clinicalStatus = { coding: [{ system: CONDITION_CLINICAL, code: active ? "resolved" : "active" }] };
        if (active) b.abatementDateTime = iso(when);
        else delete b.abatementDateTime;
        break;
      }
      case "MedicationRequest":
        b.status = b.status === "active" ? rng.pick(["completed", "stopped"]) : "active";
        break;
      case "Encounter": {
        const p = b.period as { start: string; end: string };
        b.period = { start: p.start, end: iso(Date.parse(p.end) + 30 * 60_000) };
        break;
      }
      case "AllergyIntolerance":
        b.criticality = b.criticality === "high" ? "low" : "high";
        break;
      case "DiagnosticReport":
        b.status = "amended";
        b.conclusion = "Results reviewed; see amended observations.";
        break;
      default:
        b.note = [{ text: `Updated on ${isoDate(when)}` }];
    }
    r.body = b;
    r.version += 1;
    r.lastUpdated = when;
  }
}
