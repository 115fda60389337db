// The simulator CLI (`fhir-pipeline simulate`) in its own process, as an Epic server is: its own
// event loop, and a process the test can pause (SIGSTOP) to play a server that stalls. Stats are
// read over its admin endpoint; stop() ends it (SIGCONT first, should it be paused).
import { spawn } from "node:child_process";
import * as path from "node:path";
import type { SimulatorStats } from "../../lib/simulator";

const CLI = path.resolve(__dirname, "..", "..", "bin", "fhir-pipeline.js");

export interface SimulatorProcess {
  origin: string;
  /** The client configuration file it wrote (what `extract --client FILE` reads). */
  clientFile: string;
  pid: number;
  stats(): Promise<SimulatorStats>;
  stop(): Promise<void>;
}

/** Starts `fhir-pipeline simulate ARGS --client-out DIR/client.json --workdir DIR/simulator`. */
export async function startSimulatorProcess(dir: string, args: string[]): Promise<SimulatorProcess> {
  const clientFile = path.join(dir, "client.json");
  const child = spawn(process.execPath, [CLI, "simulate", ...args, "--client-out", clientFile, "--workdir", path.join(dir, "simulator")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("\n")) resolve(out.split("\n")[0].trim());
    });
    void exited.then(() => reject(new Error(`simulate exited: ${stderr}`)));
  });
  const origin = new URL(baseUrl).origin;
  return {
    origin,
    clientFile,
    pid: child.pid!,
    stats: async () => (await (await fetch(`${origin}/_admin/stats`)).json()) as SimulatorStats,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGCONT");
        child.kill("SIGTERM");
      }
      await exited;
    },
  };
}
