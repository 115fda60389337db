// `fhir-pipeline run --local`: the whole pipeline on this machine. It executes the state machine
// the CDK app synthesises (lib/core/state-machine-definition.ts) in-process with
// aws-local-stepfunctions, each Task state mapped by name to the local implementation of the same
// step: the extractor's step functions with an in-process worker pool instead of Lambda + SQS
// (local-extract-steps.ts), one local Spark process instead of EMR Serverless and the work dir's
// SQLite Iceberg catalog instead of Glue (local-spark-steps.ts), the run's metrics and the
// reconciliation of the layers instead of PublishMetrics, a printed message instead of SNS. The
// control flow exists once, in the definition.
import "../core/promise-with-resolvers";
import { StateMachine, type StateMachineDefinition } from "aws-local-stepfunctions";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadConfig, parseConfig } from "../../config/load";
import { ALL_RESOURCE_TYPES, type FhirResourceType, type PipelineConfig } from "../../config/schema";
import { newRunId, readRunManifest } from "../../lambdas/extractor/run-records";
import { MetricsCollector, metricsDirUri } from "../core/metrics";
import { localContext, STEP, TASK_STEPS, type NotifyFailureInput, type PublishMetricsOutput, type RunInput } from "../core/pipeline-steps";
import { createProgressRenderer, type ProgressSink } from "../core/progress";
import { writeHtmlReport } from "../core/report";
import { renderStateMachineDefinition } from "../core/state-machine-definition";
import { FileStorage } from "../core/storage";
import { simulatorEpicConfig, startSimulator, type SimulatorHandle } from "../simulator";
import { LocalExtraction } from "./local-extract-steps";
import { localSparkSteps, type SparkJobRecord } from "./local-spark-steps";
import { reconcile, type Reconciliation, type SilverTypeCounts } from "./reconciliation";
import {
  layerCounts,
  maintenanceDigest,
  renderSummaryText,
  silverChanges,
  tableRows,
  type GoldTableChange,
  type RunSummary,
} from "./run-summary";
import { SparkStepServer, type LayerCensus } from "./spark-step-server";
import {
  lastUnfinishedRun,
  lockWorkdir,
  readSimulatorState,
  workdirLayout,
  writeRunRecord,
  writeSimulatorState,
  type LocalRunRecord,
  type SimulatorState,
  type WorkdirLayout,
} from "./workdir";

export const DEFAULT_WORKDIR = ".work/local";
const DEFAULT_SEED = 1;

/** The options of `run --local` (also what the demo passes). Strings as the CLI gives them. */
export interface LocalRunOptions {
  /** Simulated population size (required for a first simulator run in a work dir). */
  patients?: number | string;
  workdir?: string;
  seed?: number | string;
  /** The simulator's fault specification, e.g. "429:0.05,500:0.02". */
  faults?: string;
  profile?: string;
  mode?: string;
  /** Comma-separated resource types (default: the config's). */
  types?: string;
  /** Explicit `_since` (servers that support it). */
  since?: string;
  /** Advance the simulator's clock one day past the work dir's last run first. */
  advance?: boolean;
  /** Continue the work dir's last unfinished run (same run id, simulator day and options). */
  resume?: boolean;
  /** A config file for a real Epic instead of the simulator. */
  config?: string;
  /** No progress display; print one JSON summary on stdout. */
  json?: boolean;
  /** Where the progress goes (default: a renderer chosen for stderr). */
  progress?: ProgressSink;
  /** Simulator start-up overrides (tests: a faster bulk clock, small files). */
  simulator?: { timeFactor?: number; resourcesPerFile?: number; rateLimit?: number; latencyMs?: number; groupSize?: number };
  /** Another Spark entry point file than the one EMR runs (benchmarks, development). */
  sparkEntrypoint?: string;
  /** Overrides of the local config's extraction settings (tests, benchmarks). */
  extraction?: Partial<Pick<PipelineConfig["extraction"], "concurrency" | "rateLimitPerSecond" | "pageSize">>;
}

interface ResolvedSource {
  kind: "simulator" | "epic";
  patients: number;
  seed: number;
  profile: "epic" | "spec";
  day: number;
  faults?: string;
  configFile?: string;
}

function positiveInt(value: unknown, what: string): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, not ${String(value)}`);
  return n;
}

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

/** Which data the run extracts: the simulator at which day, or a real Epic. */
function resolveSource(opts: LocalRunOptions, layout: WorkdirLayout, resumed: LocalRunRecord | undefined): ResolvedSource {
  const configFile = resumed ? resumed.options.config : opts.config;
  if (configFile) {
    for (const k of ["patients", "seed", "faults", "profile", "advance"] as const) {
      if (!resumed && opts[k] !== undefined && opts[k] !== false)
        throw new Error(`--${k} applies to the built-in simulator, not to --config runs`);
    }
    return { kind: "epic", patients: 0, seed: 0, profile: "epic", day: 0, configFile };
  }
  const state = readSimulatorState(layout);
  if (resumed) {
    const o = resumed.options;
    return {
      kind: "simulator",
      patients: o.patients!,
      seed: o.seed ?? DEFAULT_SEED,
      profile: o.profile ?? "epic",
      day: resumed.simulatorDay ?? 0,
      faults: o.faults,
    };
  }
  const patients = positiveInt(opts.patients, "--patients") ?? state?.patients;
  if (patients === undefined) throw new Error("say how many patients to simulate: --patients N (or --config FILE for a real Epic)");
  const seed = opts.seed !== undefined ? Number(opts.seed) : (state?.seed ?? DEFAULT_SEED);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, not ${String(opts.seed)}`);
  const profile = (opts.profile ?? state?.profile ?? "epic") as string;
  if (profile !== "epic" && profile !== "spec") throw new Error("--profile must be epic or spec");
  if (state && (state.patients !== patients || state.seed !== seed || state.profile !== profile)) {
    throw new Error(
      `${layout.root} holds the lake of a simulated population of ${state.patients} patients (seed ${state.seed}, profile ${state.profile}); ` +
        `use those settings to run it again, or another --workdir`,
    );
  }
  const lastDay = state?.day ?? 0;
  return { kind: "simulator", patients, seed, profile, day: opts.advance ? lastDay + 1 : lastDay, faults: opts.faults };
}

/** The local config (config/local.json) pointed at the running simulator. */
function simulatorConfig(
  sim: SimulatorHandle,
  mode: "bulk" | "search" | undefined,
  extraction: LocalRunOptions["extraction"],
): PipelineConfig {
  const base = loadConfig("local");
  return parseConfig(
    {
      ...base,
      epic: simulatorEpicConfig(sim, base.epic),
      extraction: { ...base.extraction, ...(mode ? { mode } : {}), ...(extraction ?? {}) },
    },
    "config/local.json (simulator)",
  );
}

/** Per-state timings from the execution's event log. */
class StateTimer {
  private readonly open = new Map<string, number>();
  readonly seconds: Record<string, number> = {};
  readonly first: Record<string, number> = {};
  readonly last: Record<string, number> = {};

  entered(name: string, at: number): void {
    this.open.set(name, at);
    this.first[name] ??= at;
  }
  exited(name: string, at: number): void {
    const t0 = this.open.get(name);
    if (t0 === undefined) return;
    this.open.delete(name);
    this.seconds[name] = (this.seconds[name] ?? 0) + (at - t0) / 1000;
    this.last[name] = at;
  }
}

/** Seconds per stage of the run, from the state timings. */
function stageSeconds(t: StateTimer, runStarted: number, runEnded: number): Record<string, number> {
  const out: Record<string, number> = {};
  const extractStart = t.first[STEP.extractGroups];
  const extractEnd = t.last[STEP.checkDrained];
  if (extractStart !== undefined && extractEnd !== undefined) out.extract = (extractEnd - extractStart) / 1000;
  const named: [string, string][] = [
    ["silver", STEP.silverJob],
    ["gold", STEP.goldJob],
    ["maintenance", STEP.maintenance],
    ["metrics and reconciliation", STEP.publishMetrics],
  ];
  for (const [label, state] of named) if (t.seconds[state] !== undefined) out[label] = t.seconds[state];
  out.total = (runEnded - runStarted) / 1000;
  return out;
}

function goldChanges(output: unknown): Record<string, GoldTableChange> {
  const out: Record<string, GoldTableChange> = {};
  const tables = (output as { tables?: unknown } | undefined)?.tables;
  if (!Array.isArray(tables)) return out;
  for (const t of tables as Record<string, unknown>[]) {
    if (typeof t.table !== "string") continue;
    out[t.table] = {
      mode: String(t.mode ?? "unknown"),
      ...(typeof t.reason === "string" ? { reason: t.reason } : {}),
      addedRecords: Number(t.added_records ?? 0),
      deletedRecords: Number(t.deleted_records ?? 0),
      ...(typeof t.seconds === "number" ? { seconds: t.seconds } : {}),
    };
  }
  return out;
}

/** What the run found when PublishMetrics ran (the last Task). */
interface Published {
  census: LayerCensus;
  reconciliation: Reconciliation;
  simulatorStats?: Awaited<ReturnType<SimulatorHandle["stats"]>>;
}

/** Writes DIR/report/index.html from the lake's metrics (the report module's page); returns its path. */
export function writeLocalReport(layout: WorkdirLayout, runId: string): string {
  return writeHtmlReport(layout.root, runId);
}

function addCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Removes what an interrupted run extracted: its bronze parts, rejects and unit records. */
export function clearRunExtraction(layout: WorkdirLayout, runId: string): void {
  const bronze = path.join(layout.lakeDir, "bronze");
  if (!fs.existsSync(bronze)) return;
  for (const typeDir of fs.readdirSync(bronze).filter((d) => d.startsWith("resource_type="))) {
    for (const dateDir of fs.readdirSync(path.join(bronze, typeDir))) {
      fs.rmSync(path.join(bronze, typeDir, dateDir, `run_id=${runId}`), { recursive: true, force: true });
    }
  }
  fs.rmSync(path.join(bronze, "_rejects", `run_id=${runId}`), { recursive: true, force: true });
  for (const dir of ["units", "plans", "exports"]) fs.rmSync(path.join(bronze, "_runs", runId, dir), { recursive: true, force: true });
}

/**
 * Runs the pipeline locally and returns its summary (prints nothing but progress; see runLocal
 * for the CLI). Throws only for bad options or a broken installation; a run that fails inside
 * the state machine returns a summary with status "failed".
 */
export async function executeLocalRun(opts: LocalRunOptions): Promise<RunSummary> {
  const layout = workdirLayout(opts.workdir ?? DEFAULT_WORKDIR);
  const release = lockWorkdir(layout);
  const progress = opts.progress ?? createProgressRenderer({ json: opts.json });
  let sim: SimulatorHandle | undefined;
  let spark: SparkStepServer | undefined;
  let extraction: LocalExtraction | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    // The run record stays "running": `run --resume` continues it.
    spark?.kill();
    progress.close();
    process.stderr.write(`\nrun interrupted (${signal}); continue it with --resume\n`);
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    let resumed: LocalRunRecord | undefined;
    if (opts.resume) {
      resumed = lastUnfinishedRun(layout);
      if (!resumed) throw new Error(`nothing to resume in ${layout.root}: its last run finished (or it has none)`);
    }
    const source = resolveSource(opts, layout, resumed);
    const modeOpt = resumed ? resumed.options.mode : opts.mode;
    if (modeOpt !== undefined && modeOpt !== "bulk" && modeOpt !== "search") throw new Error("--mode must be bulk or search");
    const types = resumed ? (resumed.options.types as FhirResourceType[] | undefined) : parseTypes(opts.types);

    // Where the data comes from.
    let config: PipelineConfig;
    if (source.kind === "simulator") {
      fs.mkdirSync(layout.simulatorDir, { recursive: true });
      sim = await startSimulator({
        patients: source.patients,
        seed: source.seed,
        port: 0,
        profile: source.profile,
        faults: source.faults,
        workdir: layout.simulatorDir,
        privateKeyFile: path.join(layout.simulatorDir, "client-private-key.pem"),
        ...(opts.simulator ?? {}),
      });
      if (source.day > 0) await sim.advance(source.day);
      await sim.resetStats();
      config = simulatorConfig(sim, modeOpt as "bulk" | "search" | undefined, opts.extraction);
    } else {
      config = loadConfig(source.configFile!);
    }
    const mode = (modeOpt as "bulk" | "search" | undefined) ?? config.extraction.mode;

    const runId = resumed?.runId ?? newRunId();
    // A real Epic's new export may split the data into other files than the interrupted attempt
    // got, so its extraction starts over (same run id); the simulator's units are reused as they are.
    if (resumed && source.kind !== "simulator") clearRunExtraction(layout, runId);
    const startedAtIso = resumed?.startedAt ?? new Date().toISOString();
    const record: LocalRunRecord = {
      runId,
      status: "running",
      startedAt: startedAtIso,
      ...(source.kind === "simulator" ? { simulatorDay: source.day } : {}),
      options: {
        mode,
        ...(source.kind === "simulator"
          ? { patients: source.patients, seed: source.seed, profile: source.profile }
          : { config: path.resolve(source.configFile!) }),
        ...(source.faults ? { faults: source.faults } : {}),
        ...(types ? { types } : {}),
      },
    };
    writeRunRecord(layout, record);
    if (source.kind === "simulator") {
      const state: SimulatorState = { patients: source.patients, seed: source.seed, profile: source.profile, day: source.day };
      writeSimulatorState(layout, state);
    }
    progress.emit({ kind: "run", status: "started", runId, detail: resumed ? "resumed" : undefined });

    // The local stand-ins of the cloud services.
    fs.mkdirSync(layout.lakeDir, { recursive: true });
    const logDir = path.join(layout.root, "logs");
    fs.mkdirSync(logDir, { recursive: true });
    const sparkLog = fs.createWriteStream(path.join(logDir, `${runId}-spark.log`), { flags: "a" });
    const extractLog = fs.createWriteStream(path.join(logDir, `${runId}-extract.log`), { flags: "a" });
    const logLine = (level: string) => (message: string, fields?: Record<string, unknown>) =>
      extractLog.write(JSON.stringify({ at: new Date().toISOString(), level, message, ...(fields ?? {}) }) + "\n");
    spark = SparkStepServer.start({
      lake: layout.lakeUri,
      settings: config.processing.localSpark,
      entrypoint: opts.sparkEntrypoint,
      onLog: (line) => sparkLog.write(line + "\n"),
    });
    spark.ready.then(
      (s) => progress.emit({ kind: "note", text: `local Spark session ready (${s.toFixed(1)} s)` }),
      () => undefined,
    );
    extraction = new LocalExtraction({
      config,
      bronzeUri: layout.lake.bronze,
      lakeUri: layout.lakeUri,
      runId,
      progress,
      // A unit id names the same data only when the source is deterministic (the simulator).
      skipFinishedUnits: source.kind === "simulator",
      log: { info: logLine("info"), warn: logLine("warn") },
    });
    const sparkJobs: SparkJobRecord[] = [];
    let published: Published | undefined;
    const simulated = source.kind === "simulator";

    const handlers: Record<string, (input: never) => Promise<unknown>> = {
      ...extraction.handlers(),
      ...localSparkSteps(spark, progress, sparkJobs, layout.lakeUri),
      PublishMetrics: async (): Promise<PublishMetricsOutput> => {
        const t0 = performance.now();
        const census = await spark!.census(runId, layout.lake.bronze);
        const manifest = await readRunManifest(new FileStorage(), layout.lake.bronze, runId);
        const silverOut = sparkJobs.filter((j) => j.step === "SilverJob").pop()?.output as
          { types?: Record<string, SilverTypeCounts> } | undefined;
        const simulatorStats = sim ? await sim.stats() : undefined;
        const reused = extraction!.reusedFromEarlierAttempt;
        const reconciliation = reconcile({
          served: simulatorStats ? addCounts(simulatorStats.served, reused.lines) : undefined,
          bronze: census.bronze,
          bronzeRejected: census.bronzeRejected,
          silver: census.silver,
          silverChanges: silverOut?.types,
          completeSnapshot: manifest?.complete ?? false,
          snapshotTypes: manifest?.complete ? manifest.scope.types : [],
        });
        published = { census, reconciliation, simulatorStats };
        const m = new MetricsCollector({ runId, step: "reconcile", lakeRoot: layout.lakeUri });
        for (const t of reconciliation.types) {
          if (t.served !== null) m.count("layer.served", t.served, { resource_type: t.type });
          m.count("layer.bronze", t.bronze, { resource_type: t.type });
          if (t.rejected) m.count("layer.rejected", t.rejected, { resource_type: t.type });
          m.count("layer.silver", t.silver, { resource_type: t.type });
        }
        for (const [table, rows] of Object.entries(census.gold)) m.count("layer.gold", rows, { table });
        if (!reconciliation.reconciled) m.error("reconciliation.mismatches", reconciliation.problems.length);
        m.recordStep({ records: reconciliation.types.reduce((a, t) => a + t.bronze, 0), seconds: (performance.now() - t0) / 1000 });
        await m.flush();
        return { metricsUri: metricsDirUri(layout.lakeUri), resources: reconciliation.types.reduce((a, t) => a + t.bronze, 0) };
      },
      NotifyFailure: async (input: NotifyFailureInput) => {
        progress.emit({ kind: "note", text: `${input.Subject}: ${input.Message.split("\n")[0]}` });
        return { MessageId: `local-${runId}` };
      },
    };
    const missing = TASK_STEPS.filter((t) => !handlers[t]);
    if (missing.length) throw new Error(`no local implementation for Task state(s) ${missing.join(", ")}`);

    // The definition the CDK app deploys, with this work dir's lake and the local catalog.
    const definition = renderStateMachineDefinition(config, { lake: layout.lake, catalog: "local" });
    const machine = new StateMachine(definition as unknown as StateMachineDefinition);
    const input: RunInput = {
      ...(modeOpt ? { mode: mode } : {}),
      ...(types ? { resourceTypes: types } : {}),
      ...(opts.since ? { since: opts.since } : {}),
    };
    // Waits the simulator makes short anyway; a real Epic's Retry-After is honoured as is.
    const waitTimeOverrides: Record<string, number> = { [STEP.waitForDrain]: 200 };
    if (simulated) waitTimeOverrides[STEP.waitForExport] = 100;
    const retryIntervalOverrides: Record<string, number> = simulated ? Object.fromEntries(TASK_STEPS.map((t) => [t, 500])) : {};

    const timer = new StateTimer();
    const runStarted = Date.now();
    const execution = machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: handlers as never, waitTimeOverrides, retryIntervalOverrides },
      context: localContext(runId, input, startedAtIso) as never,
    });
    let failure: { error: string; cause: string } | undefined;
    const events = (async () => {
      for await (const ev of execution.eventLogs) {
        if (ev.type === "StateEntered" || ev.type === "StateExited" || ev.type === "StateFailed") {
          const name = ev.state.name;
          // Tasks and the Map are what a person follows; the drain loop shows once.
          const shown = ev.state.type === "Task" || ev.state.type === "Map" || ev.state.type === "Fail";
          // Loops (the export poll, the drain check) show their first round only.
          const quiet = !shown || name === STEP.checkDrained || name === STEP.pollBulkStatus;
          if (ev.type === "StateEntered") {
            timer.entered(name, ev.timestamp);
            if (shown && (!quiet || timer.first[name] === ev.timestamp)) progress.emit({ kind: "state", name, status: "entered" });
          } else {
            timer.exited(name, ev.timestamp);
            if (ev.type === "StateFailed") progress.emit({ kind: "state", name, status: "failed", detail: String(ev.Error) });
            else if (!quiet) progress.emit({ kind: "state", name, status: "succeeded" });
          }
        } else if (ev.type === "ExecutionFailed") {
          failure = { error: String(ev.Error), cause: String(ev.Cause ?? "") };
        }
      }
    })();
    try {
      await execution.result;
    } catch (err) {
      failure ??= {
        error: (err as Error & { cause?: Error }).cause?.name ?? (err as Error).name,
        cause: (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message,
      };
    }
    await events.catch(() => undefined);
    const runEnded = Date.now();

    // The summary, the report, the records.
    const stages = stageSeconds(timer, runStarted, runEnded);
    const silverOut = sparkJobs.filter((j) => j.step === "SilverJob").pop()?.output as
      { types?: Record<string, SilverTypeCounts> } | undefined;
    const goldOut = sparkJobs.filter((j) => j.step === "GoldJob").pop()?.output;
    const maintenance = maintenanceDigest(sparkJobs.filter((j) => j.step === "Maintenance").pop()?.output);
    if (!published && failure) {
      // The run stopped early: still show what reached each layer (best effort).
      const census = await spark.census(runId, layout.lake.bronze).catch(() => undefined);
      const simulatorStats = sim ? await sim.stats().catch(() => undefined) : undefined;
      if (census) {
        const partial = reconcile({
          served: simulatorStats?.served,
          bronze: census.bronze,
          bronzeRejected: census.bronzeRejected,
          silver: census.silver,
          completeSnapshot: false,
        });
        published = { census, reconciliation: partial, simulatorStats };
      }
    }
    const rec = published?.reconciliation ?? reconcile({ bronze: {}, bronzeRejected: {}, silver: {}, completeSnapshot: false });
    const { layers, totals } = layerCounts(rec);
    let report: string | undefined;
    try {
      report = writeLocalReport(layout, runId);
    } catch (err) {
      progress.emit({ kind: "note", text: `no HTML report: ${(err as Error).message}` });
    }
    const summary: RunSummary = {
      runId,
      status: failure ? "failed" : "succeeded",
      ...(failure ? { error: failure } : {}),
      mode,
      source:
        source.kind === "simulator"
          ? {
              kind: "simulator",
              patients: source.patients,
              seed: source.seed,
              profile: source.profile,
              day: source.day,
              ...(source.faults ? { faults: source.faults } : {}),
            }
          : { kind: "epic", config: path.resolve(source.configFile!) },
      resumed: Boolean(resumed),
      workdir: layout.root,
      lake: layout.lakeUri,
      ...(report ? { report } : {}),
      layers,
      totals,
      changed: { ...silverChanges(silverOut?.types), gold: goldChanges(goldOut) },
      ...(maintenance ? { maintenance } : {}),
      stages,
      ...(spark.ready ? { sparkStartupSeconds: await spark.ready.catch(() => undefined) } : {}),
      ...tableRows(published?.census),
      reconciled: Boolean(published) && !failure && rec.reconciled,
      reconciliation: {
        silverCheck: rec.silverCheck,
        problems: rec.problems,
        untypedRejects: rec.untypedRejects,
        ...(extraction.reusedFromEarlierAttempt.units > 0 ? { unitsFromEarlierAttempt: extraction.reusedFromEarlierAttempt.units } : {}),
      },
      ...(published?.simulatorStats
        ? {
            simulator: {
              requests: published.simulatorStats.requests,
              throttled: published.simulatorStats.throttled,
              faults: published.simulatorStats.faults,
            },
          }
        : {}),
    };
    const c = summary.changed.silverTotal;
    writeRunRecord(layout, {
      ...record,
      status: summary.status,
      finishedAt: new Date().toISOString(),
      ...(failure ? { error: failure } : {}),
      outcome: { stages, resources: totals.bronze, changed: c.inserted + c.updated + c.deleted, reconciled: summary.reconciled },
    });
    progress.emit({
      kind: "run",
      status: failure ? "failed" : "succeeded",
      runId,
      detail: failure ? `${failure.error}: ${failure.cause.split("\n")[0]}` : undefined,
    });
    sparkLog.end();
    extractLog.end();
    return summary;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    progress.close();
    await extraction?.close().catch(() => undefined);
    await spark?.stop().catch(() => undefined);
    await sim?.stop().catch(() => undefined);
    release();
  }
}

/**
 * The CLI's `run --local` (lib/cli/commands/run.ts calls it with the parsed options): runs, then
 * prints the summary (one JSON object on stdout with --json, tables otherwise). Exit code 1 when
 * the run failed (whether it reconciled is in the summary).
 */
export async function runLocal(opts: Record<string, unknown>): Promise<RunSummary> {
  const summary = await executeLocalRun(opts as LocalRunOptions);
  if (opts.json) process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
  else process.stdout.write(renderSummaryText(summary));
  if (summary.status !== "succeeded") process.exitCode = 1;
  return summary;
}
