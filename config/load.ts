// Loads and validates config/NAME.json (or any file). Errors name the field path and the problem.
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigSchema, type PipelineConfig } from "./schema";

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: string[],
  ) {
    super(`invalid config ${source}:\n  ${issues.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

export const CONFIG_DIR = path.resolve(__dirname);

/** Validates a parsed config object; throws ConfigError listing every `path: problem`. */
export function parseConfig(raw: unknown, source = "<config>"): PipelineConfig {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => {
      const where = i.path.length ? i.path.join(".") : "(root)";
      const extra = i.code === "unrecognized_keys" ? ` (${i.keys.join(", ")})` : "";
      return `${where}: ${i.message}${extra}`;
    });
    throw new ConfigError(source, issues);
  }
  return result.data;
}

/** Loads a config by environment name (config/NAME.json) or by file path. */
export function loadConfig(nameOrFile: string): PipelineConfig {
  const file =
    nameOrFile.endsWith(".json") || nameOrFile.includes("/") ? path.resolve(nameOrFile) : path.join(CONFIG_DIR, `${nameOrFile}.json`);
  if (!fs.existsSync(file)) {
    const known = fs.readdirSync(CONFIG_DIR).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, ""));
    throw new ConfigError(file, [`no such config file (known environments: ${known.join(", ")})`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(file, [`(root): not valid JSON: ${(err as Error).message}`]);
  }
  return parseConfig(raw, file);
}
