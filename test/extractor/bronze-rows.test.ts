// Bronze row keys (pure): the content hash ignores meta.versionId/lastUpdated and nothing else,
// patient_ref from subject/patient/beneficiary, Bundle entry spans byte for byte, rejects.
import { contentHash } from "../../lambdas/extractor/bronze/content-hash";
import { bundleEntryResources, findMember } from "../../lambdas/extractor/bronze/json-spans";
import { examineResource, patientRefOf } from "../../lambdas/extractor/bronze/resource-row";
import { typeOfHead } from "../../lambdas/extractor/bronze/bronze-writer";
import * as crypto from "node:crypto";

const hashOf = (text: string): string => {
  const b = Buffer.from(text);
  const x = examineResource(b, 0, b.length);
  if (!x.ok) throw new Error(x.reason);
  return x.keys.contentHash;
};
const sha = (s: string): string => crypto.createHash("sha256").update(s).digest("hex");

describe("content_hash", () => {
  const body = `"status":"final","code":{"text":"Glucose"},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":5.4,"unit":"mmol/L"}`;

  it("is the same when only meta.versionId / meta.lastUpdated change", () => {
    const v1 = `{"resourceType":"Observation","id":"o1","meta":{"versionId":"1","lastUpdated":"2025-01-01T00:00:00Z"},${body}}`;
    const v2 = `{"resourceType":"Observation","id":"o1","meta":{"versionId":"7","lastUpdated":"2025-03-01T10:00:00Z"},${body}}`;
    const noMeta = `{"resourceType":"Observation","id":"o1",${body}}`;
    const onlyVersion = `{"resourceType":"Observation","id":"o1","meta":{"versionId":"3"},${body}}`;
    expect(hashOf(v1)).toBe(hashOf(v2));
    expect(hashOf(v1)).toBe(hashOf(noMeta));
    expect(hashOf(onlyVersion)).toBe(hashOf(noMeta));
    // and it is SHA-256 of the text without those members
    expect(hashOf(v1)).toBe(sha(noMeta));
  });

  it("changes when the content changes", () => {
    const a = `{"resourceType":"Observation","id":"o1","meta":{"versionId":"1"},${body}}`;
    const b = a.replace("5.4", "5.5");
    expect(hashOf(a)).not.toBe(hashOf(b));
  });

  it("keeps other meta members (profile, tag, source) in the hash", () => {
    const a = `{"resourceType":"Patient","id":"p","meta":{"versionId":"1","profile":["x"]},"active":true}`;
    const b = `{"resourceType":"Patient","id":"p","meta":{"versionId":"2","profile":["x"]},"active":true}`;
    const c = `{"resourceType":"Patient","id":"p","meta":{"versionId":"2","profile":["y"]},"active":true}`;
    expect(hashOf(a)).toBe(hashOf(b));
    expect(hashOf(a)).not.toBe(hashOf(c));
    expect(hashOf(a)).toBe(sha(`{"resourceType":"Patient","id":"p","meta":{"profile":["x"]},"active":true}`));
  });

  it("handles meta first, last, and strings that look like keys", () => {
    const last = `{"resourceType":"Patient","id":"p","note":"a \\"meta\\": {} here","meta":{"lastUpdated":"2025-01-01T00:00:00Z"}}`;
    expect(hashOf(last)).toBe(sha(`{"resourceType":"Patient","id":"p","note":"a \\"meta\\": {} here"}`));
    const first = `{"meta":{"versionId":"9"},"resourceType":"Patient","id":"p"}`;
    expect(hashOf(first)).toBe(sha(`{"resourceType":"Patient","id":"p"}`));
  });

  it("does not look inside nested objects for meta", () => {
    const text = `{"resourceType":"Bundle","id":"b","entry":[{"resource":{"meta":{"versionId":"1"}}}]}`;
    expect(contentHash(Buffer.from(text), 0, text.length, false)).toBe(sha(text));
  });
});

describe("key columns", () => {
  it("reads id, version, lastUpdated and the patient", () => {
    const b = Buffer.from(
      `{"resourceType":"Condition","id":"c-${"x".repeat(80)}","meta":{"versionId":"4","lastUpdated":"2025-02-03T04:05:06.789Z"},"subject":{"reference":"Patient/p9"}}`,
    );
    const x = examineResource(b, 0, b.length);
    expect(x.ok && x.keys).toMatchObject({
      resourceType: "Condition",
      id: `c-${"x".repeat(80)}`,
      versionId: "4",
      lastUpdatedMs: Date.UTC(2025, 1, 3, 4, 5, 6, 789),
      patientRef: "Patient/p9",
    });
  });
  it("patient_ref: own id for Patient; subject, patient, beneficiary; absolute and versioned references", () => {
    const ref = (t: string): string | null => {
      const b = Buffer.from(t);
      const x = examineResource(b, 0, b.length);
      return x.ok ? x.keys.patientRef : "rejected";
    };
    expect(ref(`{"resourceType":"Patient","id":"p1"}`)).toBe("Patient/p1");
    expect(ref(`{"resourceType":"AllergyIntolerance","id":"a","patient":{"reference":"Patient/p2"}}`)).toBe("Patient/p2");
    expect(ref(`{"resourceType":"Coverage","id":"c","beneficiary":{"reference":"Patient/p3"}}`)).toBe("Patient/p3");
    expect(ref(`{"resourceType":"Observation","id":"o","subject":{"reference":"Group/g"}}`)).toBeNull();
    expect(ref(`{"resourceType":"Practitioner","id":"pr"}`)).toBeNull();
    expect(patientRefOf({ reference: "https://epic.example/api/FHIR/R4/Patient/eAbc/_history/2" })).toBe("Patient/eAbc");
  });
  it("rejects what is not a FHIR resource, and types not asked for", () => {
    const reason = (t: string, wanted?: string[]): string => {
      const b = Buffer.from(t);
      const x = examineResource(b, 0, b.length, wanted ? new Set(wanted) : undefined);
      return x.ok ? "ok" : x.reason;
    };
    expect(reason(`{"resourceType":"Patient","id":"p"`)).toBe("not_json");
    expect(reason(`[1,2]`)).toBe("not_a_resource");
    expect(reason(`{"id":"p"}`)).toBe("not_a_resource");
    expect(reason(`{"resourceType":"Patient","id":""}`)).toBe("not_a_resource");
    expect(reason(`{"resourceType":"Patient","id":"p"}`, ["Observation"])).toBe("unexpected_type");
    expect(typeOfHead(`{"resourceType":"Encounter","id":"e","sta`)).toBe("Encounter");
  });
});

describe("Bundle entry spans", () => {
  it("are the resources' bytes exactly as received", () => {
    const r1 = `{"resourceType":"Observation", "id":"o1","valueString":"a}b]c\\"d"}`;
    const r2 = `{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}`;
    const bundle = `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"x"}],"entry":[ {"fullUrl":"u","resource":${r1},"search":{"mode":"match"}} , {"resource":${r2},"search":{"mode":"outcome"}}]}`;
    const b = Buffer.from(bundle);
    const spans = bundleEntryResources(b, 0, b.length);
    expect(spans.map(([s, e]) => b.toString("utf8", s, e))).toEqual([r1, r2]);
    expect(bundleEntryResources(Buffer.from(`{"resourceType":"Bundle","total":0}`), 0, 35)).toEqual([]);
    expect(findMember(b, 0, b.length, Buffer.from("type"))?.valueStart).toBe(bundle.indexOf(`"searchset"`));
  });
});
