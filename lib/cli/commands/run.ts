// `fhir-pipeline run`: one run of the pipeline, either in AWS (`--env NAME`: the deployed state
// machine, lib/aws/run.ts) or on this machine (`--local`: the same definition in-process,
// lib/pipeline/local-run.ts). Only the option parsing lives here.
import type { Command } from "commander";
import * as fs from "node:fs";
import * as path from "node:path";
import { ALL_RESOURCE_TYPES, type FhirResourceType } from "../../../config/schema";
import type { RunInput } from "../../core/pipeline-steps";

const LOCAL_RUN_MODULE = path.join(__dirname, "..", "..", "pipeline", "local-run.ts");

function parseTypes(list: string | undefined): FhirResourceType[] | undefined {
  if (!list) return undefined;
  const types = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = types.filter((t) => !(ALL_RESOURCE_TYPES as readonly string[]).includes(t));
  if (unknown.length) throw new Error(`unknown resource type(s) ${unknown.join(", ")}: one of ${ALL_RESOURCE_TYPES.join(", ")}`);
  return types as FhirResourceType[];
}

export function register(program: Command): void {
  program
    .command("run")
    .description("run the pipeline once: in AWS with --env NAME (follows the deployed state machine), or on this machine with --local")
    .option("--env <name>", "deployed environment (config/NAME.json; stack outputs read from CloudFormation)")
    .option("--region <region>", "AWS region of the environment (default: AWS_REGION or the profile's)")
    .option("--outputs-file <file>", "read stack outputs from this `cdk deploy --outputs-file` file instead of CloudFormation")
    .option("--detach", "with --env: start the execution, print its ARN and return")
    .option("--mode <mode>", "bulk or search (default: the config's extraction.mode)")
    .option("--types <list>", "comma-separated resource types (default: the config's)")
    .option("--since <instant>", "explicit _since for servers that support it")
    .option("--poll <seconds>", "with --env: seconds between progress polls", "5")
    .option("--local", "run on this machine: against the built-in simulator, or a real Epic with --config")
    .option("--patients <n>", "with --local: simulated population size")
    .option("--workdir <dir>", "with --local: where the lake, catalog and report go")
    .option("--faults <spec>", "with --local: the simulator's fault specification")
    .option("--config <file>", "with --local: a config file for a real Epic instead of the simulator")
    .option("--seed <n>", "with --local: the simulator's seed (same patients + seed = same data; default 1)")
    .option("--profile <name>", "with --local: the simulator's profile, epic (default) or spec")
    .option("--advance", "with --local: one simulated day passes first (changes, additions, deletions), then an incremental run")
    .option("--resume", "with --local: continue the work directory's last unfinished run")
    .option("--json", "no progress display; print one JSON summary")
    .action(async (opts: Record<string, unknown>) => {
      if (opts.env && opts.local) throw new Error("choose one of --env NAME (AWS) or --local (this machine)");
      if (opts.local) {
        if (!fs.existsSync(LOCAL_RUN_MODULE))
          throw new Error("local runs are provided by lib/pipeline/local-run.ts, which is not in this checkout yet");
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const local = require("../../pipeline/local-run") as { runLocal(opts: Record<string, unknown>): Promise<unknown> };
        await local.runLocal(opts);
        return;
      }
      if (!opts.env) throw new Error("say where to run: --env NAME (a deployed environment) or --local (this machine)");
      const localOnly = ["patients", "workdir", "faults", "config", "seed", "profile", "advance", "resume"].filter((k) => opts[k] !== undefined);
      if (localOnly.length) throw new Error(`--${localOnly.join(", --")} only apply to --local runs`);
      const mode = opts.mode as string | undefined;
      if (mode && mode !== "bulk" && mode !== "search") throw new Error("--mode must be bulk or search");
      const input: RunInput = {};
      if (mode) input.mode = mode as RunInput["mode"];
      const types = parseTypes(opts.types as string | undefined);
      if (types) input.resourceTypes = types;
      if (opts.since) input.since = String(opts.since);
      const poll = Number(opts.poll);
      if (!Number.isFinite(poll) || poll <= 0) throw new Error("--poll must be a positive number of seconds");
      // Loaded on demand: the AWS SDK clients are not needed by the other commands.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { runInAws } = require("../../aws/run") as typeof import("../../aws/run");
      const result = await runInAws({
        envName: String(opts.env),
        region: opts.region as string | undefined,
        outputsFile: opts.outputsFile as string | undefined,
        detach: Boolean(opts.detach),
        json: Boolean(opts.json),
        input,
        pollIntervalMs: poll * 1000,
      });
      if (result.follow && result.follow.status !== "SUCCEEDED") process.exitCode = 1;
    });
}
