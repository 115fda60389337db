// Bulk mode against the real simulator: bronze reconciles exactly with what the server served
// (for each type: bronze rows + rejects = served), under faults; a unit processed twice adds no
// rows; the job is always deleted; Epic refuses a second export of a group the same day and the
// client says why; in the spec profile `--since auto` after `advance` fetches only what changed.
import * as fs from "node:fs";
import { runExtraction } from "../../lambdas/extractor/local-run";
import { processUnit } from "../../lambdas/extractor/process-unit";
import { readExportRecord, readRunManifest } from "../../lambdas/extractor/run-records";
import { checkDrained, fanOut, kickOff, pollStatus } from "../../lambdas/extractor/steps";
import { drainLocalQueue } from "../../lambdas/extractor/local-run";
import { LocalUnitQueue } from "../../lambdas/extractor/unit-queue";
import type { RunContext } from "../../lib/core/pipeline-steps";
import { fileUriToPath } from "../../lib/core/storage";
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { countBy, depsFor, readBronze, tempDir, type BronzeRowJson } from "./bronze-reader";
import * as crypto from "node:crypto";

function expectReconciled(served: Record<string, number>, rows: BronzeRowJson[], rejects: Array<Record<string, unknown>>): void {
  const kept = countBy(rows, (r) => r.resource_type);
  const rejected = countBy(rejects, (r) => r.resource_type as string);
  const types = new Set([...Object.keys(served), ...Object.keys(kept), ...Object.keys(rejected)]);
  for (const t of types) expect({ type: t, n: (kept[t] ?? 0) + (rejected[t] ?? 0) }).toEqual({ type: t, n: served[t] ?? 0 });
  // and no resource twice
  expect(new Set(rows.map((r) => `${r.resource_type}/${r.id}`)).size).toBe(rows.length);
}

describe("bulk mode, epic profile, with faults", () => {
  let sim: SimulatorHandle;
  let dir: string;
  beforeAll(async () => {
    sim = await startSimulator({
      patients: 24,
      seed: 21,
      resourcesPerFile: 400,
      faults: "429:0.04,500:0.03,503:0.02,reset:0.02,truncate:0.15,malformed:0.004,token-expiry:1500ms,bulk-error:1",
    });
    dir = tempDir("bulk-epic-");
  });
  afterAll(async () => {
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("lands bronze that reconciles with /_admin/stats; error entries kept; job deleted", async () => {
    const deps = depsFor(sim, dir);
    try {
      const s = await runExtraction({ mode: "bulk", groupIds: [sim.groupIds[0]] }, deps);
      const stats = await sim.stats();
      const { rows, rejects } = readBronze(dir, s.runId);
      expectReconciled(stats.served, rows, rejects);
      // the faults really happened
      expect(stats.faults.truncate ?? 0).toBeGreaterThan(0);
      expect(rejects.length).toBeGreaterThan(0);
      expect(rejects.every((r) => r.reason === "not_json" && Number(r.line_number) > 0 && r.run_id === s.runId)).toBe(true);

      const m = (await readRunManifest(deps.storage, deps.bronzeUri, s.runId))!;
      expect(m.complete).toBe(true);
      expect(m.scope.groups).toEqual([sim.groupIds[0]]);
      expect(m.transactionTime).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      expect(m.resources).toEqual(
        Object.fromEntries(Object.keys(m.resources).map((t) => [t, rows.filter((r) => r.resource_type === t).length])),
      );
      expect(m.rejects.total).toBe(rejects.length);
      expect(m.errors.outcomes).toBeGreaterThan(0);
      const errorsFile = fileUriToPath(m.errors.uris[0]);
      expect(fs.readFileSync(errorsFile, "utf8").split("\n")[0]).toContain('"resourceType":"OperationOutcome"');
      expect(Object.values(m.bulk)[0].jobDeleted).toBe(true);
      expect(s.resources).toEqual(Object.fromEntries(Object.entries(m.resources).filter(([, n]) => n > 0)));

      // the export job is gone at the server
      const rec = (await readExportRecord(deps.storage, deps.bronzeUri, s.runId, 0))!;
      const res = await deps.http.send({ url: rec.statusUrl });
      await res.discard();
      expect(res.status).toBe(404);

      // rows: the contract's partitions, raw text kept, keys right
      const today = m.startedAt.slice(0, 10);
      for (const r of rows.slice(0, 200)) {
        expect(r.run_id).toBe(s.runId);
        const parsed = JSON.parse(r.resource) as { resourceType: string; id: string; meta?: { versionId?: string; lastUpdated?: string } };
        expect([parsed.resourceType, parsed.id]).toEqual([r.resource_type, r.id]);
        expect(r.version_id).toBe(parsed.meta?.versionId ?? null);
        expect(r.last_updated).toBeNull(); // Epic's bulk output has no meta.lastUpdated
        const withoutMeta = r.resource.replace(/"meta":\{"versionId":"[^"]*"\},/, "");
        expect(r.content_hash).toBe(crypto.createHash("sha256").update(withoutMeta).digest("hex"));
      }
      expect(rows.filter((r) => r.resource_type === "Observation").every((r) => r.patient_ref?.startsWith("Patient/"))).toBe(true);
      const parts = m.files.filter((f) => !f.startsWith("_rejects"));
      expect(parts.every((f) => f.includes(`/ingest_date=${today}/run_id=${s.runId}/part-`))).toBe(true);
      expect(deps.http.stats.retries).toBeGreaterThan(0);
    } finally {
      await deps.http.close();
    }
  });

  it("refuses a second export of the group the same day, and says why", async () => {
    const deps = depsFor(sim, dir);
    try {
      const err = await runExtraction({ mode: "bulk", groupIds: [sim.groupIds[0]] }, deps).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).name).toBe("EpicRequestRejected");
      expect((err as Error).message).toContain("requested this Group too recently");
      expect((err as Error).message).toContain("one export per group per client per day");
    } finally {
      await deps.http.close();
    }
  });
});

describe("bulk steps, one unit processed twice", () => {
  it("adds no duplicate rows (deterministic part files, overwritten)", async () => {
    const sim = await startSimulator({ patients: 6, seed: 8, resourcesPerFile: 300 });
    const dir = tempDir("bulk-twice-");
    const deps = depsFor(sim, dir);
    try {
      const run: RunContext = {
        runId: "run-twice",
        startedAt: new Date().toISOString(),
        mode: "bulk",
        groupIds: [sim.groupIds[0]],
        request: {},
      };
      let state = await kickOff({ run, groupId: sim.groupIds[0] }, deps);
      while (state.state !== "complete") {
        await new Promise((r) => setTimeout(r, 50));
        state = await pollStatus({ run, groupId: sim.groupIds[0], export: state }, deps);
      }
      const out = await fanOut({ run, groupId: sim.groupIds[0] }, deps);
      expect(out.unitsEnqueued).toBeGreaterThan(2);
      const queue = deps.queue as LocalUnitQueue;
      const first = queue.take()!;
      const a = await processUnit(first, deps);
      const b = await processUnit(first, deps);
      queue.done();
      expect(b.files).toEqual(a.files);
      expect(await checkDrained({ run, groups: [out] }, deps)).toMatchObject({ state: "pending" });
      await drainLocalQueue(queue, deps, 4);
      expect(await checkDrained({ run, groups: [out] }, deps)).toMatchObject({ state: "drained", unitsDone: out.unitsEnqueued });
      const { rows, rejects } = readBronze(dir, run.runId);
      expectReconciled((await sim.stats()).served, rows, rejects);
    } finally {
      await deps.http.close();
      await sim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("bulk mode, spec profile: --since auto", () => {
  it("after advance fetches only what changed, and records the deletions", async () => {
    const sim = await startSimulator({ patients: 30, seed: 4, profile: "spec" });
    const dir = tempDir("bulk-spec-");
    const deps = depsFor(sim, dir);
    try {
      const first = await runExtraction({ mode: "bulk", groupIds: [sim.groupIds[0]], since: "auto" }, deps);
      const m1 = first.manifest;
      expect(m1.requested.since).toBeNull(); // nothing to continue from: a full export
      expect(m1.complete).toBe(true);
      const t1 = Date.parse(m1.transactionTime!);

      await sim.advance(3);
      await sim.resetStats();
      const second = await runExtraction({ mode: "bulk", groupIds: [sim.groupIds[0]], since: "auto" }, deps);
      const m2 = second.manifest;
      expect(m2.requested.since).toBe(m1.transactionTime);
      expect(m2.requested.sinceSource).toBe("auto");
      expect(m2.complete).toBe(false); // incremental: not a snapshot

      const stats = await sim.stats();
      const { rows, rejects } = readBronze(dir, second.runId);
      expectReconciled(stats.served, rows, rejects);
      // only what changed: every row is newer than the first run, far fewer rows than the first run
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r) => r.last_updated !== null && r.last_updated > t1)).toBe(true);
      const firstTotal = Object.values(first.resources).reduce((a, b) => a + b, 0);
      expect(rows.length).toBeLessThan(firstTotal / 4);
      // exactly the resources the server changed since t1 (from the population itself)
      const changed = new Set<string>();
      const deleted = new Set<string>();
      for (let i = 0; i < sim.population.size; i++) {
        const snap = sim.population.patient(i);
        for (const r of snap.resources) if (r.lastUpdated > t1) changed.add(`${r.type}/${r.id}`);
        for (const d of snap.deleted) if (d.deletedAt > t1) deleted.add(`${d.type}/${d.id}`);
      }
      const patientScoped = rows.filter((r) => r.resource_type !== "Practitioner" && r.resource_type !== "Organization");
      expect(new Set(patientScoped.map((r) => `${r.resource_type}/${r.id}`))).toEqual(changed);
      expect(new Set(m2.deleted.map((d) => `${d.resourceType}/${d.id}`))).toEqual(deleted);
      expect(deleted.size).toBeGreaterThan(0);
      expect(Object.values(stats.deleted).reduce((a, b) => a + b, 0)).toBe(deleted.size);
    } finally {
      await deps.http.close();
      await sim.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
