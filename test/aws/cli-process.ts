// Runs the real `fhir-pipeline` CLI (bin/fhir-pipeline.js) as a child process against the emulator.
import { spawn } from "node:child_process";
import * as path from "node:path";
import { AWS_ENDPOINT_ENV } from "../../lib/aws/clients";
import { MOTO_ENV } from "./moto-server";

const BIN = path.resolve(__dirname, "../../bin/fhir-pipeline.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `env` entries set to undefined are removed from the child's environment. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, cwd?: string): Promise<CliResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...MOTO_ENV };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: childEnv,
      cwd: cwd ?? path.resolve(__dirname, "../.."),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The CLI's environment pointing every AWS client at the emulator. */
export function emulatorEnv(endpoint: string): Record<string, string> {
  return { [AWS_ENDPOINT_ENV]: endpoint };
}
