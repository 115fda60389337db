// `fhir-pipeline extract` as a user runs it (a child process against the simulator): --json
// prints exactly one JSON object, --help documents the options, errors are one clear line, and
// nothing it prints (logs included) carries PHI.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { startSimulator, type SimulatorHandle } from "../../lib/simulator";
import { readBronze, tempDir } from "./bronze-reader";

const CLI = path.resolve(__dirname, "../../bin/fhir-pipeline.js");
// Only for commands that do not talk to the in-process simulator (spawnSync would block it).
const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 120_000 });

/** Runs the CLI without blocking this process (the simulator answers from here). */
function runAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("fhir-pipeline extract", () => {
  let sim: SimulatorHandle;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir("extract-cli-");
    sim = await startSimulator({ patients: 5, seed: 9, clientOut: path.join(dir, "client.json") });
  });
  afterAll(async () => {
    await sim.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("--json prints one JSON object; logs carry no PHI", async () => {
    const out = `file://${path.join(dir, "bronze")}`;
    const r = await runAsync(["extract", "--client", path.join(dir, "client.json"), "--out", out, "--json", "--verbose"]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]) as {
      run_id: string;
      resources: Record<string, number>;
      rejected: number;
      bytes: number;
      seconds: number;
    };
    expect(Object.keys(summary).sort()).toEqual(["bytes", "rejected", "resources", "run_id", "seconds"]);
    const stats = await sim.stats();
    expect(summary.resources).toEqual(stats.served);
    expect(summary.rejected).toBe(0);
    expect(summary.bytes).toBeGreaterThan(0);
    expect(readBronze(path.join(dir, "bronze"), summary.run_id).rows.length).toBe(Object.values(stats.served).reduce((a, b) => a + b, 0));
    // --verbose logged every unit, with ids, counts and timings only
    expect(r.stderr).toContain("unit done");
    for (const phi of sim.phiStrings()) {
      expect(r.stdout).not.toContain(phi);
      expect(r.stderr).not.toContain(phi);
    }
  });

  it("imports a directory of NDJSON with --source ndjson-dir DIR", () => {
    const src = path.join(dir, "ndjson");
    fs.mkdirSync(src);
    fs.writeFileSync(
      path.join(src, "Patient.ndjson"),
      `{"resourceType":"Patient","id":"a"}\n{"resourceType":"Patient","id":"b"}\nnot json\n`,
    );
    const r = run(["extract", "--source", "ndjson-dir", src, "--out", path.join(dir, "files-bronze"), "--json"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ resources: { Patient: 2 }, rejected: 1 });
  });

  it("has help, and says clearly what is missing", () => {
    const help = run(["extract", "--help"]);
    expect(help.status).toBe(0);
    for (const opt of ["--client", "--base-url", "--mode", "--out", "--types", "--since", "--concurrency", "--rate-limit", "--json"])
      expect(help.stdout).toContain(opt);
    const bad = run(["extract", "--out", path.join(dir, "x"), "--base-url", sim.baseUrl]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toContain("--client-id, --private-key, --group");
    const badType = run([
      "extract",
      "--client",
      path.join(dir, "client.json"),
      "--out",
      path.join(dir, "x"),
      "--types",
      "Patient,Spaceship",
    ]);
    expect(badType.status).not.toBe(0);
    expect(badType.stderr).toContain("unknown resource type(s) Spaceship");
  });
});
