// A wrong config stops `cdk synth` (the real CLI, the real bin/app.ts) with a message naming the field.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, loadConfig } from "../../config/load";
import { checkDeployable } from "../../lib/stacks/pipeline-app";
import type { CfnValue } from "./template-values";

const ROOT = path.resolve(__dirname, "..", "..");
const dev = () => JSON.parse(fs.readFileSync(path.join(ROOT, "config", "dev.json"), "utf8"));

function synth(configFile: string, outdir: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn("npx", ["cdk", "synth", "--quiet", "--no-notices", "-c", `env=${configFile}`, "-o", outdir], {
      cwd: ROOT,
      env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: "true", CI: "true" },
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (code) => resolve({ code, output }));
  });
}

describe("a wrong config makes synth fail, naming the field", () => {
  const cases: [string, (c: CfnValue) => void, RegExp][] = [
    ["an unknown field", (c) => (c.extraction.turbo = true), /extraction: Unrecognized key.*turbo/],
    [
      "a negative concurrency",
      (c) => (c.extraction.concurrency = -3),
      /extraction\.concurrency: Number must be greater than or equal to 1/,
    ],
    ["a malformed Epic URL", (c) => (c.epic.baseUrl = "fhir.example-health.org/api/FHIR/R4"), /epic\.baseUrl: Invalid url/],
    ["a missing secret name", (c) => delete c.epic.privateKeySecretName, /epic\.privateKeySecretName: Required/],
    [
      "a concurrency the SQS event source cannot run",
      (c) => (c.extraction.concurrency = 1),
      /extraction\.concurrency: must be at least 2 to deploy/,
    ],
  ];

  let results: { code: number | null; output: string }[];
  let tmp: string;
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bad-config-"));
    results = await Promise.all(
      cases.map(([, mutate], i) => {
        const c = dev();
        mutate(c);
        const file = path.join(tmp, `bad-${i}.json`);
        fs.writeFileSync(file, JSON.stringify(c));
        return synth(file, path.join(tmp, `out-${i}`));
      }),
    );
  }, 180_000);

  test.each(cases.map((c, i) => [c[0], i, c[2]] as const))("%s", (_label, i, message) => {
    expect(results[i].code).not.toBe(0);
    expect(results[i].output).toMatch(message);
  });
});

describe("checkDeployable", () => {
  test("accepts the shipped cloud configs and refuses the local one (Epic over http on loopback)", () => {
    expect(() => checkDeployable(loadConfig("dev"))).not.toThrow();
    expect(() => checkDeployable(loadConfig("prod"))).not.toThrow();
    expect(() => checkDeployable(loadConfig("local"))).toThrow(ConfigError);
    expect(() => checkDeployable(loadConfig("local"))).toThrow(/epic\.baseUrl: must be an https:\/\/ URL to deploy/);
  });
});
