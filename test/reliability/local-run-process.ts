// The reliability tests' handle on `fhir-pipeline run --local` as a user runs it: the CLI in a
// child process that leads its own process group (so SIGKILL of the group takes the local Spark
// process and its JVM with it), every byte of its stdout and stderr kept, and the content digest
// of the lake's Iceberg tables (table_digest.py, read through PyIceberg without a JVM).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { RunSummary } from "../../lib/pipeline/run-summary";

export const ROOT = path.resolve(__dirname, "..", "..");
export const CLI = path.join(ROOT, "bin", "fhir-pipeline.js");
export const PYTHON = path.join(ROOT, "spark-jobs", ".venv", "bin", "python");

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  done: Promise<CliResult>;
  /** SIGKILL to the whole process group (the CLI, the Spark step server, its JVM). */
  killGroup(): void;
}

/** Starts the CLI with `args` as the leader of a new process group. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return startNode([CLI, ...args], env);
}

/** `fhir-pipeline run --local` with LocalRunOptions the CLI does not expose (run-local-child.ts). */
export function startLocalRun(options: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): CliProcess {
  return startNode(["-r", "tsx/cjs", path.join(__dirname, "run-local-child.ts"), JSON.stringify(options)], env);
}

/** Starts node with `args` as the leader of a new process group. */
export function startNode(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    done,
    killGroup() {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    },
  };
}

/** Runs the CLI to the end. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

/** Parses the --json summary of a finished `run --local`; throws with the output tail when it failed. */
export function summaryOf(r: CliResult): RunSummary {
  if (r.code !== 0) {
    throw new Error(`run --local exited with ${r.code ?? r.signal}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-3000)}`);
  }
  return JSON.parse(r.stdout) as RunSummary;
}

/** Resolves once `check` is true (polled), or rejects when the process ends first or time runs out. */
export async function waitFor(what: string, check: () => boolean, proc: CliProcess, timeoutMs: number, everyMs = 20): Promise<void> {
  let ended = false;
  void proc.done.then(() => (ended = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return;
    if (ended) throw new Error(`the run ended before ${what}:\n${proc.stderr.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface TableDigest {
  rows: number;
  sha256: string;
  duplicateKeys: number;
}

/** Content digests of every table of a work dir's lake (see table_digest.py). */
export function lakeDigests(workdir: string): Record<string, TableDigest> {
  const out = execFileSync(PYTHON, [path.join(__dirname, "table_digest.py"), path.join(workdir, "lake")], {
    cwd: ROOT,
    encoding: "utf8",
    maxBuffer: 16 << 20,
  });
  return JSON.parse(out) as Record<string, TableDigest>;
}

/** The Iceberg tables registered in a work dir's catalog now (read-only; the run may be writing). */
export function catalogTables(workdir: string): string[] {
  const db = path.join(workdir, "lake", "catalog", "iceberg.db");
  if (!fs.existsSync(db)) return [];
  const script =
    "import sqlite3,sys\n" +
    "c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro',uri=True,timeout=5)\n" +
    "try:\n print('\\n'.join(a+'.'+b for a,b in c.execute('select table_namespace,table_name from iceberg_tables')))\n" +
    "except sqlite3.OperationalError:\n pass\n";
  const out = execFileSync(PYTHON, ["-c", script, db], { encoding: "utf8" });
  return out.split("\n").filter(Boolean).sort();
}

/** Every file under dir (recursively). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** The needles found in a text (exact, case-sensitive). */
export function foundIn(text: string, needles: readonly string[]): string[] {
  return needles.filter((n) => n.length > 0 && text.includes(n));
}
