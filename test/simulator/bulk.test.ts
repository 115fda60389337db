// Bulk Data $export against the real simulator, in both profiles, with the faults that affect
// bulk files, and the stats the extractor's tests reconcile against.
import * as http from "node:http";
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { serializeResource } from "../../lib/simulator/population";
import { accessToken, BULK_HEADERS, downloadLines, getJson, runExport } from "./smart-assertion";

function expectedCounts(sim: SimulatorHandle, since?: number): Record<string, number> {
  const pop = sim.population;
  const counts: Record<string, number> = {};
  const pr = new Set<number>();
  const org = new Set<number>();
  for (let i = 0; i < pop.size; i++) {
    const snap = pop.patient(i);
    snap.practitioners.forEach((p) => pr.add(p));
    snap.organizations.forEach((o) => org.add(o));
    for (const r of snap.resources) if (since === undefined || r.lastUpdated > since) counts[r.type] = (counts[r.type] ?? 0) + 1;
  }
  if (since === undefined) {
    counts.Practitioner = pr.size;
    counts.Organization = org.size;
  }
  return counts;
}

/** Raw GET that tolerates a connection closed mid-body; returns the bytes received. */
function rawGet(url: string, token: string): Promise<{ status: number; body: Buffer; aborted: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let aborted = false;
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("aborted", () => (aborted = true));
      res.on("error", () => (aborted = true));
      res.on("close", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), aborted: aborted || !res.complete }));
    });
    req.on("error", reject);
  });
}

describe("bulk export, epic profile", () => {
  let sim: SimulatorHandle;
  let token: string;
  beforeAll(async () => {
    sim = await startSimulator({ patients: 24, seed: 21, resourcesPerFile: 500, timeFactor: 0.005 });
    token = await accessToken(sim);
  });
  afterAll(async () => {
    await sim.stop();
  });

  it("exports the group: 202 + polling, an Epic manifest, NDJSON without lastUpdated, stats that reconcile", async () => {
    const group = sim.groupIds[0];
    const { statusUrl, manifest, polls, progress, retryAfter } = await runExport(sim, token, `Group/${group}/$export`);
    expect(polls).toBeGreaterThanOrEqual(1);
    expect(progress[0]).toMatch(/^\d+% complete$/);
    expect(retryAfter[0]).toBe("0.6"); // Epic's 120 s scaled by the time factor 0.005
    expect(manifest.requiresAccessToken).toBe("true");
    expect(manifest.transactionTime).toBe("2025-01-01T00:00:00.000Z");
    expect(manifest.request).toBe(`${sim.baseUrl}/Group/${group}/$export`);
    expect(manifest.error).toEqual([]);
    expect(manifest).not.toHaveProperty("deleted");
    for (const o of manifest.output) expect(Object.keys(o).sort()).toEqual(["type", "url"]);

    const got: Record<string, number> = {};
    const ids = new Set<string>();
    let longIds = 0;
    for (const o of manifest.output) {
      const lines = await downloadLines(o.url, token);
      expect(lines.length).toBeLessThanOrEqual(500);
      for (const line of lines) {
        const r = JSON.parse(line);
        expect(r.resourceType).toBe(o.type);
        expect(r.meta.versionId).toBe("1");
        expect(r.meta.lastUpdated).toBeUndefined();
        if (r.id.length > 64) longIds += 1;
        ids.add(`${r.resourceType}/${r.id}`);
        got[o.type] = (got[o.type] ?? 0) + 1;
      }
    }
    expect(got).toEqual(expectedCounts(sim));
    expect(longIds).toBeGreaterThan(0);
    // Every Practitioner and Organization a resource references is in the export.
    for (let i = 0; i < sim.population.size; i++) {
      const snap = sim.population.patient(i);
      for (const p of snap.practitioners) expect(ids.has(`Practitioner/${sim.population.practitionerId(p)}`)).toBe(true);
      for (const o of snap.organizations) expect(ids.has(`Organization/${sim.population.organizationId(o)}`)).toBe(true);
    }
    // served = distinct resources delivered; a second download of the same file counts nothing more.
    const stats = await sim.stats();
    expect(stats.served).toEqual(got);
    await downloadLines(manifest.output[0].url, token, true);
    expect((await sim.stats()).served).toEqual(got);

    // Files need the token; DELETE removes the job.
    expect((await fetch(manifest.output[0].url)).status).toBe(401);
    const del = await fetch(statusUrl, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
    expect(del.status).toBe(202);
    expect((await getJson(statusUrl, token)).status).toBe(404);
    expect((await getJson(manifest.output[0].url, token)).status).toBe(404);
  });

  it("mixes patients within a file and serves the same bytes gzip-compressed", async () => {
    await sim.advance(1); // a new day: a new export is allowed
    const { manifest } = await runExport(sim, token, `Group/${sim.groupIds[0]}/$export?_type=Observation`);
    expect(new Set(manifest.output.map((o: { type: string }) => o.type))).toEqual(new Set(["Observation"]));
    const plain = await downloadLines(manifest.output[0].url, token, false);
    const gz = await downloadLines(manifest.output[0].url, token, true);
    expect(gz).toEqual(plain);
    const subjects = plain.map((l) => JSON.parse(l).subject.reference as string);
    let switches = 0;
    for (let k = 1; k < subjects.length; k++) if (subjects[k] !== subjects[k - 1]) switches += 1;
    expect(switches).toBeGreaterThan(new Set(subjects).size * 5);
  });

  it("refuses a second export of the same group the same day, _since, and non-group exports", async () => {
    await sim.advance(1);
    const group = sim.groupIds[0];
    const url = `${sim.baseUrl}/Group/${group}/$export?_type=Patient`;
    const first = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...BULK_HEADERS } });
    expect(first.status).toBe(202);
    const second = await getJson(url, token, BULK_HEADERS);
    expect(second.status).toBe(400);
    expect(JSON.stringify(second.body)).toContain("The Client requested this Group too recently");
    const since = await getJson(`${sim.baseUrl}/Group/${group}/$export?_since=2024-01-01T00:00:00Z`, token, BULK_HEADERS);
    expect(since.status).toBe(400);
    expect(since.body.resourceType).toBe("OperationOutcome");
    expect((await getJson(`${sim.baseUrl}/Patient/$export`, token, BULK_HEADERS)).status).toBe(400);
    expect((await getJson(`${sim.baseUrl}/$export`, token, BULK_HEADERS)).status).toBe(400);
    expect((await getJson(`${sim.baseUrl}/Group/nope/$export`, token, BULK_HEADERS)).status).toBe(404);
    expect((await getJson(`${sim.baseUrl}/Group/${group}/$export?_type=Banana`, token, BULK_HEADERS)).status).toBe(400);
    const noPrefer = await getJson(`${sim.baseUrl}/Group/${group}/$export`, token, { accept: "application/fhir+json" });
    expect(noPrefer.status).toBe(400);
  });
});

describe("bulk export, spec profile", () => {
  it("exports with lastUpdated, then after advance `_since` returns only what changed and lists deletions", async () => {
    const sim = await startSimulator({ patients: 40, seed: 8, profile: "spec" });
    try {
      const token = await accessToken(sim);
      const full = await runExport(sim, token, "Group/simulated-group-1/$export");
      expect(full.manifest.requiresAccessToken).toBe(true);
      expect(full.manifest.deleted).toEqual([]);
      const first = await downloadLines(full.manifest.output.find((o: { type: string }) => o.type === "Observation").url, token);
      expect(JSON.parse(first[0]).meta.lastUpdated).toMatch(/^\d{4}-/);
      const t0 = full.manifest.transactionTime as string;

      await sim.advance(2);
      await sim.resetStats();
      const inc = await runExport(sim, token, `Group/simulated-group-1/$export?_since=${encodeURIComponent(t0)}`);
      const got: Record<string, number> = {};
      for (const o of inc.manifest.output) {
        for (const line of await downloadLines(o.url, token)) {
          const r = JSON.parse(line);
          expect(Date.parse(r.meta.lastUpdated)).toBeGreaterThan(Date.parse(t0));
          got[o.type] = (got[o.type] ?? 0) + 1;
        }
      }
      expect(got).toEqual(expectedCounts(sim, Date.parse(t0)));
      expect(Object.values(got).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

      const expectedDeleted = new Set<string>();
      for (let i = 0; i < sim.population.size; i++)
        for (const d of sim.population.patient(i).deleted) expectedDeleted.add(`${d.type}/${d.id}`);
      expect(expectedDeleted.size).toBeGreaterThan(0);
      const deleted = new Set<string>();
      for (const d of inc.manifest.deleted) {
        expect(d.type).toBe("Bundle");
        for (const line of await downloadLines(d.url, token)) {
          const b = JSON.parse(line);
          expect(b).toMatchObject({ resourceType: "Bundle", type: "transaction" });
          for (const e of b.entry) {
            expect(e.request.method).toBe("DELETE");
            deleted.add(e.request.url);
          }
        }
      }
      expect(deleted).toEqual(expectedDeleted);
      const stats = await sim.stats();
      expect(stats.served).toEqual(got);
      expect(Object.values(stats.deleted).reduce((a, b) => a + b, 0)).toBe(expectedDeleted.size);

      // System-level and Patient-level exports are allowed in the spec profile, and repeatable.
      const sys = await runExport(sim, token, "$export?_type=Patient");
      expect(sys.manifest.output[0].count).toBe(40);
      const pat = await runExport(sim, token, "Patient/$export?_type=Patient");
      expect(pat.manifest.output[0].count).toBe(40);
    } finally {
      await sim.stop();
    }
  });
});

describe("bulk faults", () => {
  it("truncate cuts a download short and counts only the lines delivered before the cut", async () => {
    const sim = await startSimulator({ patients: 6, seed: 3, faults: "truncate:1" });
    try {
      const token = await accessToken(sim);
      const { manifest } = await runExport(sim, token, "Group/simulated-group-1/$export?_type=Observation");
      const url = manifest.output[0].url;
      const r = await rawGet(url, token);
      expect(r.status).toBe(200);
      expect(r.aborted).toBe(true);
      const text = r.body.toString("utf8");
      const complete = text.split("\n").slice(0, -1);
      expect(text.endsWith("\n")).toBe(false);
      expect((await sim.stats()).served.Observation ?? 0).toBe(complete.length);
      expect((await sim.stats()).faults.truncate).toBe(1);
      await expect(
        fetch(url, { headers: { authorization: `Bearer ${token}`, "accept-encoding": "gzip" } }).then((x) => x.text()),
      ).rejects.toThrow();
    } finally {
      await sim.stop();
    }
  });

  it("malformed corrupts some lines, which still count as served; bulk-error adds an error file", async () => {
    const sim = await startSimulator({ patients: 6, seed: 3, faults: "malformed:0.05,bulk-error:1" });
    try {
      const token = await accessToken(sim);
      const { manifest } = await runExport(sim, token, "Group/simulated-group-1/$export?_type=Observation,Patient");
      let bad = 0;
      let lines = 0;
      for (const o of manifest.output) {
        for (const line of await downloadLines(o.url, token)) {
          lines += 1;
          try {
            JSON.parse(line);
          } catch {
            bad += 1;
          }
        }
      }
      expect(bad).toBeGreaterThan(0);
      const stats = await sim.stats();
      expect((stats.served.Observation ?? 0) + (stats.served.Patient ?? 0)).toBe(lines);
      expect(manifest.error).toHaveLength(1);
      expect(manifest.error[0].type).toBe("OperationOutcome");
      const errors = await downloadLines(manifest.error[0].url, token);
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(JSON.parse(e).resourceType).toBe("OperationOutcome");
    } finally {
      await sim.stop();
    }
  });

  it("writes the same bulk output for the same seed", async () => {
    const texts: string[] = [];
    for (let k = 0; k < 2; k++) {
      const sim = await startSimulator({ patients: 5, seed: 77 });
      try {
        const token = await accessToken(sim);
        const { manifest } = await runExport(sim, token, "Group/simulated-group-1/$export");
        const parts: string[] = [];
        for (const o of manifest.output) parts.push(o.type, ...(await downloadLines(o.url, token)));
        texts.push(parts.join("\n"));
        // The export holds exactly the population's resources, Epic-style (no lastUpdated).
        const p0 = serializeResource(sim.population.patient(0).resources[0], false);
        expect(parts).toContain(p0);
      } finally {
        await sim.stop();
      }
    }
    expect(texts[0]).toBe(texts[1]);
  });
});
