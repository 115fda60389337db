// `fhir-pipeline simulate` as a user runs it: prints its base URL, writes the client config that
// `extract --client FILE` reads, serves the admin endpoints, and stops cleanly on SIGTERM.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { readClientConfigFile } from "../../lib/core/client-config";

const ROOT = path.join(__dirname, "..", "..");

describe("fhir-pipeline simulate", () => {
  it("starts, writes the client config, answers admin calls and stops on SIGTERM", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sim-cli-"));
    const clientOut = path.join(dir, "client.json");
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, "bin", "fhir-pipeline.js"),
        "simulate",
        "--patients",
        "4",
        "--seed",
        "9",
        "--profile",
        "spec",
        "--client-out",
        clientOut,
      ],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      const baseUrl = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout.on("data", (c: Buffer) => {
          out += c.toString();
          const line = out.split("\n")[0];
          if (out.includes("\n")) resolve(line.trim());
        });
        child.once("exit", (code) => reject(new Error(`exited early with ${code}`)));
      });
      expect(baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/FHIR\/R4$/);
      const config = readClientConfigFile(clientOut);
      expect(config).toMatchObject({
        baseUrl,
        clientId: "fhir-pipeline-simulated-client",
        algorithm: "RS384",
        groupId: "simulated-group-1",
      });
      expect(config.tokenUrl).toBe(baseUrl.replace("/api/FHIR/R4", "/oauth2/token"));
      expect(fs.statSync(config.privateKeyFile).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(config.privateKeyFile, "utf8")).toContain("BEGIN PRIVATE KEY");

      const origin = new URL(baseUrl).origin;
      const advanced = await (await fetch(`${origin}/_admin/advance`, { method: "POST", body: JSON.stringify({ days: 2 }) })).json();
      expect(advanced).toEqual({ day: 2, now: "2025-01-03T00:00:00.000Z" });
      const stats = (await (await fetch(`${origin}/_admin/stats`)).json()) as Record<string, unknown>;
      expect(stats).toMatchObject({ served: {}, requests: 0, throttled: 0, faults: {}, day: 2 });
      expect((await fetch(`${origin}/_admin/reset-stats`, { method: "POST" })).status).toBe(200);
      expect((await fetch(`${origin}/_admin/advance`, { method: "POST", body: '{"days": -1}' })).status).toBe(400);

      const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("has --help and refuses a bad fault spec clearly", async () => {
    const run = (args: string[]): Promise<{ code: number | null; out: string; err: string }> =>
      new Promise((resolve) => {
        const c = spawn(process.execPath, [path.join(ROOT, "bin", "fhir-pipeline.js"), ...args], { cwd: ROOT });
        let out = "";
        let err = "";
        c.stdout.on("data", (d: Buffer) => (out += d.toString()));
        c.stderr.on("data", (d: Buffer) => (err += d.toString()));
        c.on("exit", (code) => resolve({ code, out, err }));
      });
    const help = await run(["simulate", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("--rate-limit");
    expect(help.out).toContain("--faults");
    const bad = await run(["simulate", "--patients", "2", "--faults", "500:2"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('fault "500": "2" is not a probability');
  });
});
