// `run --local --config FILE`: the path a real Epic takes (no simulator started by the run; the
// server is whatever the config names). Here the config names a simulator this test starts on
// 127.0.0.1, as a site's Epic sandbox would be named; the run cannot see what the server served,
// so it reconciles silver against bronze, and the test compares with the simulator's own count.
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadConfig } from "../../config/load";
import type { RunSummary } from "../../lib/pipeline/run-summary";
import { simulatorEpicConfig, startSimulator, type SimulatorHandle } from "../../lib/simulator";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "bin", "fhir-pipeline.js");

let dir: string;
let sim: SimulatorHandle;

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(ROOT, "scripts", "setup.js"), "--python"], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "epic-config-"));
  sim = await startSimulator({ patients: 8, seed: 7, port: 0, workdir: path.join(dir, "epic") });
}, 600_000);

afterAll(async () => {
  await sim?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("runs against the server a config file names, in search mode, and reconciles what it can see", async () => {
  const base = loadConfig("local");
  const config = {
    ...base,
    name: "sandbox",
    epic: simulatorEpicConfig(sim, base.epic),
  };
  const file = path.join(dir, "sandbox.json");
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  const workdir = path.join(dir, "work");
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, "run", "--local", "--config", file, "--workdir", workdir, "--mode", "search", "--json"], {
      cwd: ROOT,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  if (r.code !== 0) throw new Error(`run --local --config exited with ${r.code}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  const s = JSON.parse(r.stdout) as RunSummary;
  expect(s.status).toBe("succeeded");
  expect(s.mode).toBe("search");
  expect(s.source).toEqual({ kind: "epic", config: file });
  expect(s.reconciled).toBe(true);
  // Search mode crawls Observation by category: the snapshot covers the other types exactly.
  expect(s.reconciliation.silverCheck).toBe("at-least");
  // Nothing told the run what was served ("-"); the simulator knows, and it matches bronze.
  const served = (await sim.stats()).served;
  for (const [type, c] of Object.entries(s.layers)) {
    expect({ type, served: c.served }).toEqual({ type, served: null });
    expect({ type, bronze: c.bronze + c.rejected }).toEqual({ type, bronze: served[type] });
    expect({ type, silver: c.silver }).toEqual({ type, silver: c.bronze });
  }
  expect(s.layers.Patient.bronze).toBe(8);
  expect(Object.values(s.goldTables).every((rows) => rows > 0)).toBe(true);
  // No simulator state in a --config work dir: nothing to advance.
  expect(fs.existsSync(path.join(workdir, "simulator-state.json"))).toBe(false);
}, 900_000);
