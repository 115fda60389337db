// A local run's work directory:
//   DIR/lake/{bronze,silver,gold,metrics,catalog,warehouse}   the lake (file:// URIs)
//   DIR/report/index.html                                      the HTML report of the last run
//   DIR/simulator-state.json                                   the simulated population and its day
//   DIR/runs/{runId}.json                                      one record per run (resume reads them)
//   DIR/simulator/                                             the simulator's key and bulk files
//   DIR/.run.lock                                              pid of the run using the directory
// The simulator is deterministic given (patients, seed, days advanced), so "a persistent simulator
// across runs" is its day count on disk: the next run starts it afresh and advances it that far.
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { LakeLocations } from "../core/pipeline-steps";

export interface WorkdirLayout {
  root: string;
  lakeDir: string;
  /** file:///…/lake */
  lakeUri: string;
  lake: LakeLocations;
  reportDir: string;
  runsDir: string;
  simulatorDir: string;
  simulatorStateFile: string;
  lockFile: string;
}

export function workdirLayout(dir: string): WorkdirLayout {
  const root = path.resolve(dir);
  const lakeDir = path.join(root, "lake");
  const lakeUri = pathToFileURL(lakeDir).href;
  return {
    root,
    lakeDir,
    lakeUri,
    lake: { bronze: `${lakeUri}/bronze`, silver: `${lakeUri}/silver`, gold: `${lakeUri}/gold`, metrics: `${lakeUri}/metrics` },
    reportDir: path.join(root, "report"),
    runsDir: path.join(root, "runs"),
    simulatorDir: path.join(root, "simulator"),
    simulatorStateFile: path.join(root, "simulator-state.json"),
    lockFile: path.join(root, ".run.lock"),
  };
}

/** The simulated population a work directory's lake was built from, and how far its clock is. */
export interface SimulatorState {
  patients: number;
  seed: number;
  profile: "epic" | "spec";
  /** Days advanced so far (the day of the most recent run). */
  day: number;
}

export interface LocalRunOptionsRecord {
  mode: "bulk" | "search";
  patients?: number;
  seed?: number;
  profile?: "epic" | "spec";
  faults?: string;
  config?: string;
  types?: string[];
}

/** DIR/runs/{runId}.json */
export interface LocalRunRecord {
  runId: string;
  status: "running" | "succeeded" | "failed";
  startedAt: string;
  finishedAt?: string;
  /** The simulator day the run extracts (resume restarts the simulator at the same day). */
  simulatorDay?: number;
  options: LocalRunOptionsRecord;
  error?: { error: string; cause: string };
  /** Seconds per stage and what changed, for comparing runs (the demo shows first vs incremental). */
  outcome?: { stages: Record<string, number>; resources: number; changed: number; reconciled: boolean };
}

function readJson<T>(file: string): T | undefined {
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}

/** Writes JSON atomically (a crash never leaves half a file). */
function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n");
  fs.renameSync(tmp, file);
}

export function readSimulatorState(layout: WorkdirLayout): SimulatorState | undefined {
  return readJson<SimulatorState>(layout.simulatorStateFile);
}

export function writeSimulatorState(layout: WorkdirLayout, state: SimulatorState): void {
  writeJsonAtomic(layout.simulatorStateFile, state);
}

export function writeRunRecord(layout: WorkdirLayout, record: LocalRunRecord): void {
  writeJsonAtomic(path.join(layout.runsDir, `${record.runId}.json`), record);
}

/** Every run record of the directory, oldest first (run ids sort by start time). */
export function listRunRecords(layout: WorkdirLayout): LocalRunRecord[] {
  if (!fs.existsSync(layout.runsDir)) return [];
  return fs
    .readdirSync(layout.runsDir)
    .filter((f) => f.endsWith(".json") && !f.startsWith("."))
    .sort()
    .map((f) => readJson<LocalRunRecord>(path.join(layout.runsDir, f)) as LocalRunRecord);
}

/** The most recent run, if it did not succeed (a crash leaves "running", a failure "failed"). */
export function lastUnfinishedRun(layout: WorkdirLayout): LocalRunRecord | undefined {
  const last = listRunRecords(layout).pop();
  return last && last.status !== "succeeded" ? last : undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes the directory for this process (DIR/.run.lock holds the pid); a lock left by a process
 * that is gone (killed) is taken over. Returns the release function.
 */
export function lockWorkdir(layout: WorkdirLayout): () => void {
  fs.mkdirSync(layout.root, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(layout.lockFile, String(process.pid), { flag: "wx" });
      return () => {
        try {
          if (fs.readFileSync(layout.lockFile, "utf8") === String(process.pid)) fs.rmSync(layout.lockFile);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(fs.readFileSync(layout.lockFile, "utf8"));
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) {
        throw new Error(`${layout.root} is in use by another run (pid ${holder}); wait for it or use another --workdir`);
      }
      fs.rmSync(layout.lockFile, { force: true });
    }
  }
  throw new Error(`could not lock ${layout.root}`);
}
