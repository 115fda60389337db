// The TypeScript side of lib/pipeline/spark-step-server.py: starts the local run's one Python
// process (one JVM, one SparkSession), sends it the Spark Tasks' EntryPointArguments and reads
// its replies (progress, results) from file descriptor 3. The process starts at the beginning of
// a run, so the JVM warms up while the extraction runs.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const SPARK_JOBS_PYTHON = path.join(REPO_ROOT, "spark-jobs", ".venv", "bin", "python");
export const SPARK_ENTRYPOINT = path.join(REPO_ROOT, "lib", "constructs", "spark-entrypoint.py");
const SERVER_SCRIPT = path.join(__dirname, "spark-step-server.py");
/** Lines of the process's stderr kept for error messages. */
const STDERR_TAIL = 40;

export interface SparkProgress {
  completedTasks: number;
  totalTasks: number;
  jobs: number;
  stagesDone: number;
  stage: string | null;
}

export interface SparkJobReply {
  ok: boolean;
  exitCode?: number;
  seconds?: number;
  /** The JSON the job printed on stdout (its result), if any. */
  output?: unknown;
  error?: string;
}

/** Counts per layer (see lib/pipeline/run_census.py). */
export interface LayerCensus {
  bronze: Record<string, number>;
  bronzeRejected: Record<string, number>;
  silver: Record<string, number>;
  silverRejected: Record<string, number>;
  silverTables: Record<string, number>;
  gold: Record<string, number>;
}

export interface StepServerOptions {
  /** Lake root URI (file:///DIR/lake). */
  lake: string;
  /** config.processing.localSpark. */
  settings?: unknown;
  python?: string;
  /** The Spark entry point file (default: lib/constructs/spark-entrypoint.py, the one EMR runs). */
  entrypoint?: string;
  /** Extra environment (e.g. SPARK_MASTER). */
  env?: NodeJS.ProcessEnv;
  /** Every line the process writes on stdout/stderr (Spark's log, the jobs' logs), for --verbose. */
  onLog?: (line: string) => void;
}

export class SparkStepError extends Error {
  constructor(message: string) {
    super(message);
    // A failed Spark job: the state machine's Spark Retry (States.TaskFailed) retries it once.
    this.name = "SparkJobFailed";
  }
}

interface Pending {
  resolve: (reply: SparkJobReply) => void;
  reject: (err: Error) => void;
  onProgress?: (p: SparkProgress) => void;
}

export class SparkStepServer {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly tail: string[] = [];
  private exited = false;
  private exitError: Error | undefined;
  /** Resolves with the JVM start-up seconds once the session is up. */
  readonly ready: Promise<number>;
  readonly startedAt = Date.now();

  private constructor(private readonly child: ChildProcess) {
    let readyResolve!: (s: number) => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<number>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    // Nobody may be waiting for `ready` yet; an unhandled rejection would end the process.
    this.ready.catch(() => undefined);
    const replies = readline.createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
    replies.on("line", (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg.type === "ready") readyResolve(Number(msg.seconds));
      else if (msg.type === "fatal") readyReject(new SparkStepError(`local Spark did not start: ${String(msg.error)}${this.tailText()}`));
      else if (msg.type === "progress") this.pending.get(Number(msg.id))?.onProgress?.(msg as unknown as SparkProgress);
      else if (msg.type === "result") {
        const p = this.pending.get(Number(msg.id));
        if (!p) return;
        this.pending.delete(Number(msg.id));
        p.resolve(msg as unknown as SparkJobReply);
      }
    });
    child.on("exit", (code, signal) => {
      this.exited = true;
      this.exitError = new SparkStepError(`local Spark process exited (${signal ?? `code ${code}`})${this.tailText()}`);
      readyReject(this.exitError);
      for (const p of this.pending.values()) p.reject(this.exitError);
      this.pending.clear();
    });
  }

  /** Starts the process; `ready` resolves when its SparkSession is up. */
  static start(opts: StepServerOptions): SparkStepServer {
    const python = opts.python ?? SPARK_JOBS_PYTHON;
    if (!fs.existsSync(python)) {
      throw new SparkStepError(`${python} is missing: run \`node scripts/setup.js --python\` (npm run demo does it) first`);
    }
    const args = [SERVER_SCRIPT, "--lake", opts.lake, "--entrypoint", opts.entrypoint ?? SPARK_ENTRYPOINT];
    if (opts.settings !== undefined) args.push("--settings-json", JSON.stringify(opts.settings));
    const child = spawn(python, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, PYTHONUNBUFFERED: "1", ...opts.env },
      stdio: ["pipe", "pipe", "pipe", "pipe"],
    });
    const server = new SparkStepServer(child);
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream as NodeJS.ReadableStream }).on("line", (line) => {
        server.tail.push(line);
        if (server.tail.length > STDERR_TAIL) server.tail.shift();
        opts.onLog?.(line);
      });
    }
    return server;
  }

  private tailText(): string {
    const lines = this.tail.filter((l) => l.trim()).slice(-12);
    return lines.length ? `\n  last output of local Spark:\n    ${lines.join("\n    ")}` : "";
  }

  private request(body: Record<string, unknown>, onProgress?: (p: SparkProgress) => void): Promise<SparkJobReply> {
    if (this.exited) return Promise.reject(this.exitError ?? new SparkStepError("local Spark process has exited"));
    const id = this.nextId++;
    return new Promise<SparkJobReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.child.stdin!.write(JSON.stringify({ id, ...body }) + "\n");
    });
  }

  /** Runs one Spark job (EntryPointArguments); throws SparkStepError when it fails. */
  async runJob(argv: readonly string[], onProgress?: (p: SparkProgress) => void): Promise<SparkJobReply> {
    await this.ready;
    const reply = await this.request({ op: "job", argv }, onProgress);
    if (!reply.ok) throw new SparkStepError(`${argv[0]} job failed: ${reply.error ?? "unknown error"}${this.tailText()}`);
    return reply;
  }

  /** Counts per layer for one run (bronze files of the run, silver and gold tables). */
  async census(runId: string, bronze: string): Promise<LayerCensus> {
    await this.ready;
    const reply = await this.request({ op: "census", runId, bronze });
    if (!reply.ok) throw new SparkStepError(`counting the lake's layers failed: ${reply.error ?? "unknown error"}`);
    return reply.output as LayerCensus;
  }

  /** Stops the session and the process (SIGTERM after `graceMs`, SIGKILL after twice that). */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      this.child.stdin!.end(JSON.stringify({ op: "shutdown" }) + "\n");
    } catch {
      // stdin already closed: the process is on its way out
    }
    const term = setTimeout(() => this.child.kill("SIGTERM"), graceMs);
    const kill = setTimeout(() => this.child.kill("SIGKILL"), graceMs * 2);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }

  /** Ends the process at once (a run being aborted). */
  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }
}
