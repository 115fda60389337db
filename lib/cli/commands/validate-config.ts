// `fhir-pipeline validate-config NAME|FILE`: checks a config against the schema and says what is wrong.
import type { Command } from "commander";
import { loadConfig } from "../../../config/load";

export function register(program: Command): void {
  program
    .command("validate-config")
    .description("validate config/NAME.json (or a file) against the schema; prints each bad field with its path")
    .argument("<nameOrFile>", "environment name (config/NAME.json) or a path to a config file")
    .action((nameOrFile: string) => {
      const config = loadConfig(nameOrFile);
      process.stdout.write(`config ${config.name} is valid\n`);
    });
}
