// The synthetic population: deterministic, realistic in volume and coding, and changing over
// simulated days in a way incremental extraction can observe.
import { Population, serializeResource, type SimResource } from "../../lib/simulator/population";

function allText(pop: Population, patients: number, day?: number): string {
  const lines: string[] = [];
  for (let i = 0; i < patients; i++) for (const r of pop.patientUncached(i, day).resources) lines.push(serializeResource(r, true));
  return lines.join("\n");
}

describe("Population", () => {
  it("is deterministic: same patients and seed give identical data, another seed differs", () => {
    const a = new Population({ patients: 30, seed: 11, longIds: true });
    const b = new Population({ patients: 30, seed: 11, longIds: true });
    const c = new Population({ patients: 30, seed: 12, longIds: true });
    expect(allText(a, 30)).toBe(allText(b, 30));
    expect(allText(a, 30)).not.toBe(allText(c, 30));
    // A patient regenerated alone, out of order, is the same as in a full pass.
    const alone = new Population({ patients: 30, seed: 11, longIds: true });
    expect(alone.patient(17).resources.map((r) => serializeResource(r, true))).toEqual(
      a.patient(17).resources.map((r) => serializeResource(r, true)),
    );
  });

  it("has at least 150 resources per patient on average, most of them Observations", () => {
    const pop = new Population({ patients: 200, seed: 5, longIds: true });
    const counts: Record<string, number> = {};
    let total = 0;
    for (let i = 0; i < 200; i++) {
      for (const r of pop.patientUncached(i).resources) {
        counts[r.type] = (counts[r.type] ?? 0) + 1;
        total += 1;
      }
    }
    expect(total / 200).toBeGreaterThanOrEqual(150);
    expect(counts.Observation / total).toBeGreaterThan(0.5);
    for (const t of [
      "Patient",
      "Encounter",
      "Condition",
      "MedicationRequest",
      "AllergyIntolerance",
      "Procedure",
      "Immunization",
      "DiagnosticReport",
    ]) {
      expect(counts[t]).toBeGreaterThan(0);
    }
    expect(counts.Patient).toBe(200);
  });

  it("codes observations with LOINC and UCUM, conditions with SNOMED and ICD-10, diabetes for a good fraction", () => {
    const pop = new Population({ patients: 100, seed: 3, longIds: false });
    let diabetic = 0;
    const obsCodes = new Set<string>();
    let concept = 0;
    let str = 0;
    for (let i = 0; i < 100; i++) {
      const rs = pop.patientUncached(i).resources;
      if (rs.some((r) => r.type === "Condition" && r.code === "44054006")) diabetic += 1;
      for (const r of rs) {
        if (r.type === "Observation") {
          obsCodes.add(r.code!);
          if (r.body.valueCodeableConcept) concept += 1;
          if (r.body.valueString) str += 1;
          const vq = r.body.valueQuantity as { system?: string } | undefined;
          if (vq) expect(vq.system).toBe("http://unitsofmeasure.org");
        }
        if (r.type === "Condition") {
          const systems = (r.body.code as { coding: Array<{ system: string }> }).coding.map((c) => c.system);
          expect(systems).toEqual(["http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"]);
        }
      }
    }
    expect(diabetic).toBeGreaterThanOrEqual(20);
    for (const code of ["4548-4", "2345-7", "85354-9", "8867-4", "39156-5", "29463-7", "72166-2"]) expect(obsCodes).toContain(code);
    expect(concept).toBeGreaterThan(0);
    expect(str).toBeGreaterThan(0);
  });

  it("gives every resource meta.versionId and meta.lastUpdated before day 0 ends", () => {
    const pop = new Population({ patients: 10, seed: 9, longIds: true });
    for (let i = 0; i < 10; i++) {
      for (const r of pop.patientUncached(i).resources) {
        const parsed = JSON.parse(serializeResource(r, true));
        expect(parsed.meta.versionId).toBe("1");
        expect(Date.parse(parsed.meta.lastUpdated)).toBeLessThan(pop.now(0));
        expect(JSON.parse(serializeResource(r, false)).meta).toEqual({ versionId: "1" });
        // The bulk writer relies on resources being pure ASCII (string length = byte length).
        expect(serializeResource(r, true)).toMatch(/^[\x20-\x7e]*$/);
      }
    }
  });

  it("makes some ids longer than 64 characters in the epic profile only, and decodes every id", () => {
    const epic = new Population({ patients: 40, seed: 2, longIds: true });
    const spec = new Population({ patients: 40, seed: 2, longIds: false });
    let long = 0;
    for (let i = 0; i < 40; i++) {
      for (const r of epic.patientUncached(i).resources) {
        expect(r.id).toMatch(/^[A-Za-z0-9.-]+$/);
        if (r.id.length > 64) long += 1;
        expect(epic.locate(r.id)).toEqual({ owner: i, slot: r.slot });
      }
      for (const r of spec.patientUncached(i).resources) expect(r.id.length).toBeLessThanOrEqual(64);
      expect(epic.patientIndexOf(epic.patientId(i))).toBe(i);
    }
    expect(long).toBeGreaterThan(0);
    expect(epic.locate("not-an-id")).toBeUndefined();
  });

  it("advances time: updates with a new version, additions and deletions, all dated inside the new day", () => {
    const pop = new Population({ patients: 100, seed: 4, longIds: true });
    const before = new Map<string, SimResource>();
    for (let i = 0; i < 100; i++) for (const r of pop.patientUncached(i).resources) before.set(r.id, r);
    pop.advance(1);
    let updated = 0;
    let added = 0;
    let deleted = 0;
    const after = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const snap = pop.patientUncached(i);
      for (const r of snap.resources) {
        after.add(r.id);
        const old = before.get(r.id);
        if (!old) {
          added += 1;
          expect(r.lastUpdated).toBeGreaterThan(pop.now(0));
          expect(r.lastUpdated).toBeLessThanOrEqual(pop.now(1));
        } else if (old.version !== r.version) {
          updated += 1;
          expect(r.version).toBe(old.version + 1);
          expect(JSON.stringify(r.body)).not.toBe(JSON.stringify(old.body));
          expect(r.lastUpdated).toBeGreaterThan(pop.now(0));
          expect(r.lastUpdated).toBeLessThanOrEqual(pop.now(1));
        }
      }
      for (const d of snap.deleted) {
        deleted += 1;
        expect(after.has(d.id)).toBe(false);
        expect(before.has(d.id)).toBe(true);
      }
    }
    expect(updated).toBeGreaterThan(0);
    expect(added).toBeGreaterThan(0);
    expect(deleted).toBeGreaterThan(0);
    // Past days stay reproducible.
    expect(pop.patient(5, 0).resources.length).toBe([...before.values()].filter((r) => r.owner === 5).length);
  });

  it("lists PHI strings that really occur in the Patient resources", () => {
    const pop = new Population({ patients: 5, seed: 1, longIds: true });
    const phi = pop.phiStrings();
    expect(phi.length).toBe(25);
    const patients = Array.from({ length: 5 }, (_, i) => serializeResource(pop.patient(i).resources[0], true)).join("\n");
    for (const s of phi) expect(patients).toContain(s);
    expect(pop.phiStrings(2).length).toBe(10);
  });

  it("splits patients into groups and references Practitioners and Organizations that exist", () => {
    const pop = new Population({ patients: 25, seed: 1, longIds: true, groupSize: 10 });
    expect(pop.groups.map((g) => [g.id, g.start, g.end])).toEqual([
      ["simulated-group-1", 0, 10],
      ["simulated-group-2", 10, 20],
      ["simulated-group-3", 20, 25],
    ]);
    const snap = pop.patient(3);
    expect(snap.practitioners.length).toBeGreaterThan(0);
    for (const p of snap.practitioners) expect(pop.practitioner(p)).toBeDefined();
    for (const o of snap.organizations) expect(pop.organization(o)).toBeDefined();
    const text = snap.resources.map((r) => serializeResource(r, true)).join("\n");
    for (const p of snap.practitioners) expect(text).toContain(`Practitioner/${pop.practitionerId(p)}`);
  });
});
