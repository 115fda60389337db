// `fhir-pipeline simulate`: runs the Epic-like FHIR R4 simulator on 127.0.0.1 until SIGINT/SIGTERM.
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { parseDuration } from "../../simulator/faults";
import { startSimulator, type SimulatorProfile } from "../../simulator";

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}
function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

export function register(program: Command): void {
  program
    .command("simulate")
    .description(
      "run an Epic-like FHIR R4 server on 127.0.0.1 (SMART Backend Services auth, Group bulk $export, Epic-style search) over a deterministic synthetic population",
    )
    .option("--patients <n>", "number of patients (~165 resources each)", positiveInt("--patients"), 100)
    .option("--seed <n>", "PRNG seed: same patients and seed give the same data", positiveInt("--seed"), 1)
    .option("--port <n>", "TCP port on 127.0.0.1 (0 = any free port)", positiveInt("--port"), 0)
    .option("--profile <name>", "epic (what Epic really does) or spec (Bulk Data v2 as written: _since, lastUpdated, deleted)", "epic")
    .option(
      "--faults <spec>",
      "faults to inject, e.g. 429:0.05,500:0.02,503:0.02,reset:0.01,slow:200ms,truncate:0.01,malformed:0.001,token-expiry:30s,token-400:0.05,bulk-error:1",
    )
    .option("--rate-limit <rps>", "requests per second per client; past it 429 with Retry-After", positiveNumber("--rate-limit"))
    .option("--latency <duration>", "added to every FHIR response, e.g. 50ms", "0ms")
    .option(
      "--time-factor <f>",
      "scales Epic's waits (bulk Retry-After 120 s); 0.001 makes 120 s into 120 ms",
      positiveNumber("--time-factor"),
      0.001,
    )
    .option("--group-size <n>", "patients per Group (default: one group with every patient)", positiveInt("--group-size"))
    .option("--client-out <file>", "write the client configuration JSON that `extract --client FILE` reads")
    .option("--workdir <dir>", "directory for the key and bulk files (default: a temporary directory removed on exit)")
    .option("--private-key-file <file>", "PEM private key of the client: loaded if present, else created (0600)")
    .action(async (o: Record<string, string | number | undefined>) => {
      const profile = String(o.profile) as SimulatorProfile;
      if (profile !== "epic" && profile !== "spec") throw new Error("--profile must be epic or spec");
      const sim = await startSimulator({
        patients: o.patients as number,
        seed: o.seed as number,
        port: o.port as number,
        profile,
        faults: o.faults as string | undefined,
        rateLimit: o.rateLimit as number | undefined,
        latencyMs: parseDuration(String(o.latency)),
        timeFactor: o.timeFactor as number,
        groupSize: o.groupSize as number | undefined,
        clientOut: o.clientOut as string | undefined,
        workdir: o.workdir as string | undefined,
        privateKeyFile: o.privateKeyFile as string | undefined,
      });
      process.stdout.write(`${sim.baseUrl}\n`);
      process.stderr.write(
        `simulator (${profile}) ready: ${o.patients} patients, seed ${o.seed}, token URL ${sim.tokenUrl}, client id ${sim.clientId}, groups ${sim.groupIds.join(",")}` +
          (o.clientOut ? `, client config ${o.clientOut}` : "") +
          "\n",
      );
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await sim.stop();
      process.stderr.write("simulator stopped\n");
    });
}
