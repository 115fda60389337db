// A local run's work directory: the lock that keeps two runs apart (and is taken over from a
// killed run), the run records resume reads, the simulator's persisted day.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  lastUnfinishedRun,
  listRunRecords,
  lockWorkdir,
  readSimulatorState,
  workdirLayout,
  writeRunRecord,
  writeSimulatorState,
} from "../../lib/pipeline/workdir";

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "workdir-"))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test("the layout puts the lake under DIR/lake as file:// URIs and the report in DIR/report", () => {
  const l = workdirLayout(dir);
  expect(l.lake.bronze).toBe(`file://${dir}/lake/bronze`);
  expect(l.lake.metrics).toBe(`file://${dir}/lake/metrics`);
  expect(l.reportDir).toBe(path.join(dir, "report"));
});

test("one run at a time; a lock left by a dead process is taken over", () => {
  const l = workdirLayout(dir);
  const release = lockWorkdir(l);
  // Another live process holds it: refused.
  fs.writeFileSync(l.lockFile, String(process.ppid));
  expect(() => lockWorkdir(l)).toThrow(/in use by another run \(pid \d+\)/);
  // A process that has exited: taken over.
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
  fs.writeFileSync(l.lockFile, dead);
  const again = lockWorkdir(l);
  expect(fs.readFileSync(l.lockFile, "utf8")).toBe(String(process.pid));
  again();
  expect(fs.existsSync(l.lockFile)).toBe(false);
  release();
});

test("the last run is unfinished when it crashed (running) or failed, not when it succeeded", () => {
  const l = workdirLayout(dir);
  expect(lastUnfinishedRun(l)).toBeUndefined();
  const options = { mode: "bulk" as const, patients: 20, seed: 1 };
  writeRunRecord(l, { runId: "20250101T000000Z-000001", status: "succeeded", startedAt: "2025-01-01T00:00:00Z", options });
  expect(lastUnfinishedRun(l)).toBeUndefined();
  writeRunRecord(l, { runId: "20250102T000000Z-000002", status: "running", startedAt: "2025-01-02T00:00:00Z", simulatorDay: 1, options });
  expect(lastUnfinishedRun(l)).toMatchObject({ runId: "20250102T000000Z-000002", simulatorDay: 1 });
  writeRunRecord(l, { runId: "20250102T000000Z-000002", status: "succeeded", startedAt: "2025-01-02T00:00:00Z", options });
  expect(lastUnfinishedRun(l)).toBeUndefined();
  expect(listRunRecords(l).map((r) => r.runId)).toEqual(["20250101T000000Z-000001", "20250102T000000Z-000002"]);
});

test("the simulator's day persists between runs", () => {
  const l = workdirLayout(dir);
  expect(readSimulatorState(l)).toBeUndefined();
  writeSimulatorState(l, { patients: 300, seed: 1, profile: "epic", day: 2 });
  expect(readSimulatorState(l)).toEqual({ patients: 300, seed: 1, profile: "epic", day: 2 });
});
