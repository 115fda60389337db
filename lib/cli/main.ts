// The `fhir-pipeline` CLI. Each command is one module in ./commands that exports
// `register(program)`; this file only assembles them, so commands never collide.
import { Command } from "commander";
import * as fs from "node:fs";
import * as path from "node:path";

export interface CommandModule {
  register(program: Command): void;
}

export function buildProgram(): Command {
  const program = new Command("fhir-pipeline")
    .description("Epic FHIR R4 to an AWS lakehouse: simulate Epic, extract to bronze, build silver/gold, query, report")
    .showHelpAfterError()
    .exitOverride((err) => {
      throw err;
    });
  const dir = path.join(__dirname, "commands");
  for (const file of fs.readdirSync(dir).sort()) {
    if (!/\.ts$/.test(file) || file.endsWith(".test.ts") || file.endsWith(".d.ts")) continue;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(dir, file)) as Partial<CommandModule>;
    if (typeof mod.register === "function") mod.register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "commander.helpDisplayed" || code === "commander.version" || code === "commander.help") return;
    if (code && code.startsWith("commander.")) process.exit((err as { exitCode?: number }).exitCode ?? 1);
    throw err;
  }
}
