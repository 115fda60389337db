// Search and read as Epic answers them, against the real simulator: paging by `next` with short
// pages, OperationOutcome-only bundles, required-parameter errors, group crawl, rate limit, and
// the request faults.
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { accessToken, getJson, type Json } from "./smart-assertion";

/** Follows `next` links to the end; returns every entry and the page sizes. */
async function crawl(url: string, token: string): Promise<{ entries: Json[]; pageSizes: number[]; pages: number }> {
  const entries: Json[] = [];
  const pageSizes: number[] = [];
  let next: string | undefined = url;
  while (next) {
    const r = await getJson(next, token);
    expect(r.status).toBe(200);
    expect(r.body.resourceType).toBe("Bundle");
    pageSizes.push((r.body.entry ?? []).length);
    entries.push(...(r.body.entry ?? []));
    next = (r.body.link ?? []).find((l: { relation: string }) => l.relation === "next")?.url;
    if (next) expect(next.startsWith(url.split("?")[0].replace(/\/[A-Za-z]+$/, ""))).toBe(true);
  }
  return { entries, pageSizes, pages: pageSizes.length };
}

describe("search, epic profile", () => {
  let sim: SimulatorHandle;
  let token: string;
  beforeAll(async () => {
    sim = await startSimulator({ patients: 12, seed: 31 });
    token = await accessToken(sim);
  });
  afterAll(async () => {
    await sim.stop();
  });

  it("pages Observation searches by next links, sometimes short, and returns exactly the patient's resources", async () => {
    await sim.resetStats();
    const pop = sim.population;
    let shortBeforeEnd = 0;
    let served = 0;
    for (let i = 0; i < 4; i++) {
      const pid = pop.patientId(i);
      const { entries, pageSizes } = await crawl(
        `${sim.baseUrl}/Observation?patient=${pid}&category=laboratory,vital-signs&_count=7`,
        token,
      );
      const expected = pop
        .patient(i)
        .resources.filter((r) => r.type === "Observation" && (r.category === "laboratory" || r.category === "vital-signs"))
        .map((r) => r.id);
      expect(entries.map((e) => e.resource.id)).toEqual(expected);
      for (const e of entries) {
        expect(e.search.mode).toBe("match");
        expect(e.fullUrl).toBe(`${sim.baseUrl}/Observation/${e.resource.id}`);
        expect(e.resource.meta.lastUpdated).toBeDefined();
      }
      pageSizes.slice(0, -1).forEach((n) => {
        expect(n).toBeLessThanOrEqual(7);
        if (n < 7) shortBeforeEnd += 1;
      });
      served += entries.length;
    }
    expect(shortBeforeEnd).toBeGreaterThan(0);
    expect((await sim.stats()).served.Observation).toBe(served);
  });

  it("searches by code and per-patient types; no results is a Bundle with only an OperationOutcome 4101", async () => {
    const pop = sim.population;
    const pid = pop.patientId(1);
    const bp = await crawl(`${sim.baseUrl}/Observation?patient=${pid}&code=http://loinc.org|85354-9`, token);
    expect(bp.entries.length).toBeGreaterThan(0);
    for (const e of bp.entries) expect(e.resource.code.coding[0].code).toBe("85354-9");

    for (const type of [
      "Encounter",
      "Condition",
      "MedicationRequest",
      "Procedure",
      "Immunization",
      "DiagnosticReport",
      "AllergyIntolerance",
    ]) {
      const expected = pop.patient(1).resources.filter((r) => r.type === type).length;
      const { entries } = await crawl(`${sim.baseUrl}/${type}?patient=${pid}`, token);
      if (expected === 0) {
        expect(entries).toHaveLength(1);
        expect(entries[0].search.mode).toBe("outcome");
        expect(entries[0].resource.resourceType).toBe("OperationOutcome");
        expect(entries[0].resource.issue[0].details.coding[0].code).toBe("4101");
      } else {
        expect(entries.filter((e) => e.resource.resourceType === type)).toHaveLength(expected);
      }
    }
    // Results for one code, nothing for the other: the matches plus an outcome entry.
    const mixed = await crawl(`${sim.baseUrl}/Observation?patient=${pid}&code=85354-9,0000-0`, token);
    expect(mixed.entries.filter((e) => e.resource.resourceType === "Observation")).toHaveLength(bp.entries.length);
    const outcomes = mixed.entries.filter((e) => e.search.mode === "outcome");
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0].resource.issue[0].diagnostics).toBe("No results for code 0000-0.");

    const none = await getJson(`${sim.baseUrl}/Observation?patient=${pid}&code=0000-0`, token);
    expect(none.status).toBe(200);
    expect(none.body.total).toBe(0);
    expect(none.body.entry).toEqual([
      expect.objectContaining({ search: { mode: "outcome" }, resource: expect.objectContaining({ resourceType: "OperationOutcome" }) }),
    ]);
  });

  it("answers Epic's required-parameter errors with 400 OperationOutcomes", async () => {
    const pid = sim.population.patientId(0);
    const cases = [
      `Observation?patient=${pid}`,
      `Observation?patient=${pid}&category=procedure`,
      `Observation?patient=${pid}&category=therapy`,
      `Observation?patient=${pid}&category=activity`,
      `Condition`,
      `Patient`,
      `Patient?gender=female`,
      `Encounter?patient=${pid}&_lastUpdated=gt2024-01-01`,
      `Observation?patient=${pid}&category=laboratory&_count=0`,
    ];
    for (const c of cases) {
      const r = await getJson(`${sim.baseUrl}/${c}`, token);
      expect([c, r.status]).toEqual([c, 400]);
      expect(r.body.resourceType).toBe("OperationOutcome");
      expect(r.body.issue[0].severity).toBe("error");
    }
  });

  it("reads Patients by id, searches Patient by _id list and demographics, reads Groups and Practitioners", async () => {
    const pop = sim.population;
    const read = await getJson(`${sim.baseUrl}/Patient/${pop.patientId(2)}`, token);
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(pop.patientId(2));
    const byIds = await getJson(`${sim.baseUrl}/Patient?_id=${pop.patientId(0)},${pop.patientId(5)}`, token);
    expect(byIds.body.entry.map((e: Json) => e.resource.id)).toEqual([pop.patientId(0), pop.patientId(5)]);
    const demo = pop.patientSearchFields(3);
    const byDemo = await getJson(`${sim.baseUrl}/Patient?family=${demo.family}&birthdate=${demo.birthdate}`, token);
    expect(byDemo.body.entry.map((e: Json) => e.resource.id)).toContain(pop.patientId(3));
    expect((await getJson(`${sim.baseUrl}/Patient/eNOTANID`, token)).status).toBe(404);

    const group = await getJson(`${sim.baseUrl}/Group/${sim.groupIds[0]}`, token);
    expect(group.status).toBe(200);
    expect(group.body.member.map((m: Json) => m.entity.reference)).toEqual(
      Array.from({ length: 12 }, (_, i) => `Patient/${pop.patientId(i)}`),
    );

    const prac = await getJson(`${sim.baseUrl}/Practitioner/${pop.practitionerId(0)}`, token);
    expect(prac.body.resourceType).toBe("Practitioner");
    const org = await getJson(`${sim.baseUrl}/Organization/${pop.organizationId(0)}`, token);
    expect(org.body.resourceType).toBe("Organization");
    const obs = pop.patient(4).resources.find((r) => r.type === "Observation")!;
    expect((await getJson(`${sim.baseUrl}/Observation/${obs.id}`, token)).body.id).toBe(obs.id);
    expect((await getJson(`${sim.baseUrl}/Condition/${obs.id}`, token)).status).toBe(404);
  });

  it("keeps a search's pages consistent when time advances between pages", async () => {
    const pid = sim.population.patientId(6);
    const first = await getJson(`${sim.baseUrl}/Observation?patient=${pid}&category=vital-signs&_count=5`, token);
    const next = first.body.link.find((l: Json) => l.relation === "next").url;
    const before = await getJson(next, token);
    await sim.advance(1);
    const after = await getJson(next, token);
    expect(after.body).toEqual(before.body);
  });
});

describe("search, spec profile", () => {
  it("answers an empty search with an empty Bundle and full pages", async () => {
    const sim = await startSimulator({ patients: 3, seed: 31, profile: "spec" });
    try {
      const token = await accessToken(sim);
      const pid = sim.population.patientId(0);
      const none = await getJson(`${sim.baseUrl}/Observation?patient=${pid}&code=0000-0`, token);
      expect(none.body).toMatchObject({ resourceType: "Bundle", total: 0 });
      expect(none.body.entry).toBeUndefined();
      const { pageSizes } = await crawl(`${sim.baseUrl}/Observation?patient=${pid}&category=vital-signs&_count=4`, token);
      pageSizes.slice(0, -1).forEach((n) => expect(n).toBe(4));
    } finally {
      await sim.stop();
    }
  });
});

describe("rate limit and request faults", () => {
  it("answers 429 with Retry-After past the per-client rate", async () => {
    const sim = await startSimulator({ patients: 2, seed: 1, rateLimit: 2 });
    try {
      const token = await accessToken(sim);
      const url = `${sim.baseUrl}/Patient/${sim.population.patientId(0)}`;
      const get = async (): Promise<{ status: number; retryAfter: string | null }> => {
        const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
        await r.text();
        return { status: r.status, retryAfter: r.headers.get("retry-after") };
      };
      // Ten requests at once against 2 per second (burst 2): most are refused.
      const results = await Promise.all(Array.from({ length: 10 }, get));
      const refused = results.filter((r) => r.status === 429);
      expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(Number(r.retryAfter)).toBeGreaterThan(0);
        expect(Number(r.retryAfter)).toBeLessThanOrEqual(0.5);
      }
      await new Promise((r) => setTimeout(r, 600));
      expect((await get()).status).toBe(200);
      const stats = await sim.stats();
      expect(stats.throttled).toBe(refused.length);
      expect(stats.served.Patient).toBe(1); // the same resource version counts once
    } finally {
      await sim.stop();
    }
  });

  it("injects 500/503/429/reset faults deterministically from the seed and counts them", async () => {
    const run = async (): Promise<string[]> => {
      const sim = await startSimulator({ patients: 2, seed: 5, faults: "429:0.2,500:0.2,503:0.1,reset:0.1" });
      try {
        const token = await accessToken(sim);
        const url = `${sim.baseUrl}/Patient/${sim.population.patientId(0)}`;
        const out: string[] = [];
        for (let k = 0; k < 40; k++) {
          try {
            const r = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
            await r.text();
            out.push(String(r.status));
          } catch {
            out.push("reset");
          }
        }
        const stats = await sim.stats();
        const faulted = out.filter((s) => s !== "200").length;
        expect(Object.values(stats.faults).reduce((a, b) => a + b, 0)).toBe(faulted);
        return out;
      } finally {
        await sim.stop();
      }
    };
    const a = await run();
    expect(new Set(a)).toEqual(new Set(["200", "429", "500", "503", "reset"]));
    expect(await run()).toEqual(a);
  });

  it("adds latency to FHIR responses", async () => {
    const sim = await startSimulator({ patients: 2, seed: 1, latencyMs: 120 });
    try {
      const token = await accessToken(sim);
      const t = Date.now();
      await getJson(`${sim.baseUrl}/Patient/${sim.population.patientId(0)}`, token);
      expect(Date.now() - t).toBeGreaterThanOrEqual(115);
    } finally {
      await sim.stop();
    }
  });
});
