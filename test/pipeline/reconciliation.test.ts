// The reconciliation rules (pure): served = bronze + rejected, and silver = bronze − duplicates −
// silver rejects where the run is a complete snapshot of the type (a lower bound elsewhere).
import { reconcile } from "../../lib/pipeline/reconciliation";

const clean = {
  served: { Patient: 20, Observation: 2600 },
  bronze: { Patient: 20, Observation: 2600 },
  bronzeRejected: {},
  silver: { Patient: 20, Observation: 2600 },
  completeSnapshot: true,
};

test("a clean snapshot run reconciles exactly, type by type", () => {
  const r = reconcile(clean);
  expect(r.reconciled).toBe(true);
  expect(r.silverCheck).toBe("exact");
  expect(r.problems).toEqual([]);
  expect(r.types.map((t) => [t.type, t.served, t.bronze, t.silver, t.reconciled])).toEqual([
    ["Observation", 2600, 2600, 2600, true],
    ["Patient", 20, 20, 20, true],
  ]);
});

test("rejected lines count on the served side; silver holds what bronze kept", () => {
  const r = reconcile({
    ...clean,
    bronze: { Patient: 20, Observation: 2597 },
    bronzeRejected: { Observation: 3 },
    silver: { Patient: 20, Observation: 2597 },
  });
  expect(r.reconciled).toBe(true);
  expect(r.types.find((t) => t.type === "Observation")).toMatchObject({ served: 2600, bronze: 2597, rejected: 3, expectedSilver: 2597 });
});

test("a resource lost between the server and bronze is named", () => {
  const r = reconcile({ ...clean, bronze: { Patient: 19, Observation: 2600 }, silver: { Patient: 19, Observation: 2600 } });
  expect(r.reconciled).toBe(false);
  expect(r.problems).toEqual(["Patient: served 20 != bronze 19 + rejected 0"]);
});

test("silver duplicates and silver's own rejects are accounted for; a missing silver row is not", () => {
  const ok = reconcile({
    ...clean,
    bronze: { Patient: 21, Observation: 2600 },
    served: { Patient: 21, Observation: 2600 },
    silverChanges: { Patient: { duplicates: 1 } },
  });
  expect(ok.reconciled).toBe(true);
  const bad = reconcile({ ...clean, silver: { Patient: 20, Observation: 2599 } });
  expect(bad.reconciled).toBe(false);
  expect(bad.problems[0]).toMatch(/^Observation: silver 2599 != bronze 2600/);
});

test("outside a complete snapshot silver may keep earlier rows: only a lower bound", () => {
  // Search mode: Observation is crawled by category, so the snapshot's scope leaves it out.
  const r = reconcile({ ...clean, silver: { Patient: 20, Observation: 2700 }, snapshotTypes: ["Patient"] });
  expect(r.reconciled).toBe(true);
  expect(r.silverCheck).toBe("at-least");
  expect(r.types.find((t) => t.type === "Observation")?.silverCheck).toBe("at-least");
  expect(reconcile({ ...clean, silver: { Patient: 21, Observation: 2600 } }).reconciled).toBe(false);
});

test("a real Epic (nothing served to compare with) checks silver against bronze only", () => {
  const r = reconcile({ ...clean, served: undefined });
  expect(r.reconciled).toBe(true);
  expect(r.types.every((t) => t.served === null && t.extractionReconciled === null)).toBe(true);
});

test("rejects of unknown type make the run not reconcile (they cannot be put on a type)", () => {
  const r = reconcile({
    ...clean,
    bronze: { Patient: 20, Observation: 2599 },
    bronzeRejected: { "": 1 },
    silver: { Patient: 20, Observation: 2599 },
  });
  expect(r.untypedRejects).toBe(1);
  expect(r.reconciled).toBe(false);
  expect(r.problems).toContain("1 rejected line(s) of unknown resource type");
});
