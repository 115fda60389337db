// Search mode against the real simulator (epic profile: short pages, OperationOutcome-only
// Bundles, Epic's required parameters): bronze reconciles with what was served, every `next`
// link is followed, shared resources are read once, 429s are waited out as told, and with the
// budget set at the server's limit there are none.
import * as fs from "node:fs";
import * as path from "node:path";
import { runExtraction } from "../../lambdas/extractor/local-run";
import { startSimulator } from "../../lib/simulator";
import { countBy, depsFor, readBronze, tempDir } from "./bronze-reader";

describe("search mode", () => {
  it("follows every page, keeps entries by type, reads shared resources once, reconciles with the server", async () => {
    const sim = await startSimulator({ patients: 12, seed: 13, faults: "500:0.02,reset:0.01" });
    const dir = tempDir("search-");
    // Tiny pages: many `next` links per patient and type (Epic also shortens some pages).
    const deps = depsFor(sim, dir, { pageSize: 7, patientsPerUnit: 5, concurrency: 4 });
    try {
      const s = await runExtraction({ mode: "search", groupIds: [sim.groupIds[0]] }, deps);
      const stats = await sim.stats();
      const { rows, rejects } = readBronze(dir, s.runId);
      expect(rejects).toEqual([]);
      const kept = countBy(rows, (r) => r.resource_type);
      // Observations of the configured categories are all there is in the simulator, so: everything.
      expect(kept).toEqual(stats.served);
      expect(new Set(rows.map((r) => `${r.resource_type}/${r.id}`)).size).toBe(rows.length);
      // every page was followed: a patient's Observations span many 7-entry pages
      const perPatient = countBy(
        rows.filter((r) => r.resource_type === "Observation"),
        (r) => r.patient_ref,
      );
      expect(Math.max(...Object.values(perPatient))).toBeGreaterThan(7 * 5);
      expect(kept.Practitioner).toBeGreaterThan(0);
      expect(kept.Organization).toBeGreaterThan(0);
      const m = s.manifest;
      expect(m.mode).toBe("search");
      expect(m.complete).toBe(true);
      // Observation was searched by category only, so it is not part of the complete scope
      expect(m.scope.types).not.toContain("Observation");
      expect(m.scope.types).toContain("Condition");
      expect(m.requested.searchParams?.Observation).toEqual([
        { category: "vital-signs" },
        { category: "laboratory" },
        { category: "social-history" },
      ]);
      // search rows carry meta.lastUpdated
      expect(rows.every((r) => r.last_updated !== null)).toBe(true);
    } finally {
      await deps.http.close();
      await sim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("waits 429s out as the server says (no budget) and still lands everything", async () => {
    const sim = await startSimulator({ patients: 4, seed: 2, rateLimit: 8 });
    const dir = tempDir("search-429-");
    const deps = depsFor(sim, dir, { concurrency: 8, patientsPerUnit: 2 }, { retry: { maxAttempts: 20, baseDelayMs: 5, maxDelayMs: 100 } });
    try {
      const s = await runExtraction(
        { mode: "search", groupIds: [sim.groupIds[0]], types: ["Patient", "Observation", "Condition", "Encounter"] },
        deps,
      );
      const stats = await sim.stats();
      expect(stats.throttled).toBeGreaterThan(0);
      expect(deps.http.stats.throttled).toBe(stats.throttled);
      const { rows } = readBronze(dir, s.runId);
      expect(countBy(rows, (r) => r.resource_type)).toEqual(stats.served);
    } finally {
      await deps.http.close();
      await sim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("gets no 429 when the shared budget is set at the server's limit", async () => {
    const sim = await startSimulator({ patients: 4, seed: 2, rateLimit: 40, latencyMs: 10 });
    const dir = tempDir("search-budget-");
    const deps = depsFor(sim, dir, { concurrency: 8, patientsPerUnit: 2 }, { rateLimitPerSecond: 40 });
    try {
      const s = await runExtraction(
        { mode: "search", groupIds: [sim.groupIds[0]], types: ["Patient", "Observation", "Condition", "Encounter"] },
        deps,
      );
      const stats = await sim.stats();
      expect(stats.throttled).toBe(0);
      expect(deps.http.stats.throttled).toBe(0);
      const { rows } = readBronze(dir, s.runId);
      expect(countBy(rows, (r) => r.resource_type)).toEqual(stats.served);
    } finally {
      await deps.http.close();
      await sim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails the run clearly when a unit cannot succeed (a category Epic refuses)", async () => {
    const sim = await startSimulator({ patients: 3, seed: 3 });
    const dir = tempDir("search-refused-");
    const deps = depsFor(sim, dir, { observationCategories: ["procedure"] });
    try {
      const err = await runExtraction({ mode: "search", groupIds: [sim.groupIds[0]], types: ["Patient", "Observation"] }, deps).catch(
        (e: Error) => e,
      );
      expect(err).toMatchObject({ name: "UnitsFailed", message: expect.stringContaining("1 of 1 work units failed") });
      const failure = JSON.parse(
        fs.readFileSync(path.join(dir, "_runs", fs.readdirSync(path.join(dir, "_runs"))[0], "units", "g0-p00000.failed.json"), "utf8"),
      ) as { error: string; message: string };
      expect(failure.error).toBe("EpicRequestRejected");
      expect(failure.message).toContain("Observation category procedure is not supported");
    } finally {
      await deps.http.close();
      await sim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("crawls a file of patient ids instead of the group", async () => {
    const sim = await startSimulator({ patients: 6, seed: 3 });
    const dir = tempDir("search-ids-");
    const deps = depsFor(sim, dir);
    try {
      const ids = [sim.population.patientId(1), sim.population.patientId(4)];
      const s = await runExtraction(
        { mode: "search", groupIds: [sim.groupIds[0]], types: ["Patient", "Condition"], patientIds: ids },
        deps,
      );
      const { rows } = readBronze(dir, s.runId);
      expect(new Set(rows.map((r) => r.patient_ref))).toEqual(new Set(ids.map((i) => `Patient/${i}`)));
    } finally {
      await deps.http.close();
      await sim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
