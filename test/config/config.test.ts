import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError, loadConfig, parseConfig } from "../../config/load";

const root = path.resolve(__dirname, "../..");
const devRaw = () => JSON.parse(fs.readFileSync(path.join(root, "config/dev.json"), "utf8"));

describe("config schema", () => {
  it.each(["dev", "prod", "local"])("accepts config/%s.json", (name) => {
    expect(loadConfig(name).name).toBe(name);
  });

  it("names the field path of an unknown field", () => {
    const raw = devRaw();
    raw.extraction.turbo = true;
    expect(() => parseConfig(raw)).toThrow(/extraction: .*turbo/);
  });

  it("rejects negative concurrency, a malformed Epic URL and a missing secret name", () => {
    const raw = devRaw();
    raw.extraction.concurrency = -1;
    raw.epic.baseUrl = "not a url";
    delete raw.epic.privateKeySecretName;
    try {
      parseConfig(raw);
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const issues = (err as ConfigError).issues.join("\n");
      expect(issues).toMatch(/extraction\.concurrency:/);
      expect(issues).toMatch(/epic\.baseUrl:/);
      expect(issues).toMatch(/epic\.privateKeySecretName:/);
    }
  });

  it("the CLI explains a bad config file with its field path", () => {
    const raw = devRaw();
    raw.network.vpcCidr = "10.0.0.0";
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "cfg-")), "bad.json");
    fs.writeFileSync(file, JSON.stringify(raw));
    let stderr = "";
    try {
      execFileSync(process.execPath, [path.join(root, "bin/fhir-pipeline.js"), "validate-config", file], { stdio: "pipe" });
    } catch (err) {
      stderr = String((err as { stderr: Buffer }).stderr);
    }
    expect(stderr).toMatch(/network\.vpcCidr: must be a CIDR/);
  });
});
