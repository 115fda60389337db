// The local implementations of the extraction Tasks (BulkKickOff, PollBulkStatus, FanOut,
// CheckDrained). They call the very step functions the Lambda handlers wrap
// (lambdas/extractor/steps.ts); what differs is only the plumbing: FanOut's units go into an
// in-process queue drained by a bounded worker pool (work-pool.ts) instead of SQS + the worker
// Lambdas, every worker shares one HTTP client and so one rate budget, and CheckDrained reads the
// pool's state instead of the queue depths.
import * as fs from "node:fs";
import type { PipelineConfig } from "../../config/schema";
import type { ExtractCounters, ExtractorDeps, ExtractorLog } from "../../lambdas/extractor/extractor-deps";
import { connectionFromConfig, createExtractorDeps, settingsFromConfig } from "../../lambdas/extractor/extractor-setup";
import { processUnit, recordUnitFailure } from "../../lambdas/extractor/process-unit";
import { unitRecordUri, type UnitRecord } from "../../lambdas/extractor/run-records";
import { checkDrained, fanOut, kickOff, pollStatus } from "../../lambdas/extractor/steps";
import type { QueueDepth, UnitQueue } from "../../lambdas/extractor/unit-queue";
import type { WorkUnit } from "../../lambdas/extractor/work-units";
import { LatencyHistogram, MetricsCollector } from "../core/metrics";
import type {
  BulkExportState,
  BulkKickOffInput,
  CheckDrainedInput,
  DrainStatus,
  FanOutInput,
  FanOutOutput,
  LambdaStepName,
  PollBulkStatusInput,
} from "../core/pipeline-steps";
import type { ProgressSink } from "../core/progress";
import { readJsonIfExists } from "../core/storage";
import { WorkPool } from "./work-pool";

export interface LocalExtractionOptions {
  config: PipelineConfig;
  /** file:///…/lake/bronze */
  bronzeUri: string;
  /** file:///…/lake (metrics go under it) */
  lakeUri: string;
  runId: string;
  progress: ProgressSink;
  /**
   * Skip units whose record shows they were finished by an earlier attempt of this run (resume).
   * Only sound when a unit id always names the same data: true for the simulator (deterministic
   * per day), not for a real Epic, whose new export may split files differently.
   */
  skipFinishedUnits: boolean;
  log?: ExtractorLog;
  /** Delay before a failed unit is delivered again (ms, per attempt); the cloud's visibility timeout. */
  retryDelayMs?: (attempt: number) => number;
}

/** The pool seen as the extractor's UnitQueue (FanOut enqueues, CheckDrained reads the depth). */
class PoolQueue implements UnitQueue {
  constructor(private readonly pool: WorkPool<WorkUnit, UnitRecord>) {}
  async enqueue(units: readonly WorkUnit[]): Promise<void> {
    this.pool.enqueue(units);
  }
  async depth(): Promise<QueueDepth> {
    const s = this.pool.status();
    return { pending: s.waiting + s.inFlight, deadLettered: s.failed };
  }
}

/** Worker pool, HTTP client and metrics of one local run's extraction. */
export class LocalExtraction {
  readonly deps: ExtractorDeps;
  readonly pool: WorkPool<WorkUnit, UnitRecord>;
  readonly metrics: MetricsCollector;
  readonly counters: ExtractCounters;
  private readonly unitSeconds = new LatencyHistogram();
  private startedAt: number | undefined;
  private finishedAt: number | undefined;
  private resumedUnits = 0;
  /** Lines per type of the units an earlier attempt of the run finished (resources + rejects). */
  private readonly earlier: Record<string, number> = {};
  private unitRetries = 0;
  /** Resources and rejects per type of every unit (done in this process or earlier). */
  private readonly perType: Record<string, { resources: number; rejected: number; bytes: number }> = {};
  private inputBytes = 0;

  constructor(private readonly opts: LocalExtractionOptions) {
    const { config } = opts;
    const keyFile = config.epic.privateKeyFile;
    if (!keyFile)
      throw Object.assign(new Error("epic.privateKeyFile is required for a local run (the PEM key file)"), { name: "ConfigurationError" });
    if (!fs.existsSync(keyFile))
      throw Object.assign(new Error(`epic.privateKeyFile ${keyFile} does not exist`), { name: "ConfigurationError" });
    this.metrics = new MetricsCollector({ runId: opts.runId, step: "extract", lakeRoot: opts.lakeUri });
    this.pool = new WorkPool<WorkUnit, UnitRecord>({
      concurrency: config.extraction.concurrency,
      // SQS's maxReceiveCount in the ingestion stack.
      maxAttempts: 3,
      retryDelayMs: opts.retryDelayMs,
      process: (unit) => this.process(unit),
      onDone: (_unit, record) => this.account(record),
      onAttemptFailed: (unit, attempt, error) => {
        this.unitRetries++;
        this.deps.log.warn("unit attempt failed", { runId: unit.runId, unitId: unit.unitId, attempt, error: error.name });
      },
      onDeadLettered: (unit, error) => {
        void recordUnitFailure(unit, error, this.deps).catch(() => undefined);
        opts.progress.emit({ kind: "note", text: `unit ${unit.unitId} failed after 3 attempts (${error.name})` });
      },
    });
    const { settings, http } = settingsFromConfig(config.extraction);
    // One HTTP client, so one rate budget and one token, for every worker of the pool.
    this.deps = createExtractorDeps({
      connection: connectionFromConfig(config.epic),
      bronzeUri: opts.bronzeUri,
      queue: new PoolQueue(this.pool),
      settings,
      http,
      log: opts.log,
      progress: opts.progress,
    });
    this.counters = this.deps.counters!;
  }

  private async process(unit: WorkUnit): Promise<UnitRecord> {
    if (this.opts.skipFinishedUnits) {
      const earlier = await readJsonIfExists<UnitRecord>(this.deps.storage, unitRecordUri(this.deps.bronzeUri, unit.runId, unit.unitId));
      if (earlier) {
        this.resumedUnits++;
        for (const [t, c] of Object.entries(earlier.types)) {
          this.counters.add(t, c.resources);
          this.earlier[t] = (this.earlier[t] ?? 0) + c.resources + c.rejected;
        }
        return earlier;
      }
    }
    return processUnit(unit, this.deps);
  }

  private account(record: UnitRecord): void {
    this.unitSeconds.observe(record.seconds);
    this.inputBytes += record.inputBytes;
    for (const [t, c] of Object.entries(record.types)) {
      const p = (this.perType[t] ??= { resources: 0, rejected: 0, bytes: 0 });
      p.resources += c.resources;
      p.rejected += c.rejected;
      p.bytes += c.bytes;
    }
  }

  private started(): void {
    this.startedAt ??= performance.now();
  }

  /** Task handlers for the extraction states, keyed by state name. */
  handlers(): Record<Exclude<LambdaStepName, "PublishMetrics">, (input: never) => Promise<unknown>> {
    return {
      BulkKickOff: async (input: BulkKickOffInput): Promise<BulkExportState> => {
        this.started();
        this.opts.progress.emit({ kind: "note", text: `bulk export of group ${input.groupId} started` });
        return kickOff(input, this.deps);
      },
      PollBulkStatus: async (input: PollBulkStatusInput): Promise<BulkExportState> => {
        const state: BulkExportState & { retryAfterMs?: number } = await pollStatus(input, this.deps);
        // retryAfterMs is the poll's own detail; the state keeps the contract's fields.
        delete state.retryAfterMs;
        if (state.state === "complete")
          this.opts.progress.emit({ kind: "note", text: `bulk export of group ${input.groupId} ready: ${state.outputFiles} files` });
        return state;
      },
      FanOut: async (input: FanOutInput): Promise<FanOutOutput> => {
        this.started();
        return fanOut(input, this.deps);
      },
      CheckDrained: async (input: CheckDrainedInput): Promise<DrainStatus> => {
        const s = this.pool.status();
        this.opts.progress.emit({ kind: "queue", name: "work units", visible: s.waiting, inFlight: s.inFlight });
        const status = await checkDrained(input, this.deps, 1);
        if (status.state !== "pending") {
          this.finishedAt = performance.now();
          this.counters.flush();
          await this.flushMetrics(status);
        }
        return status;
      },
    };
  }

  /**
   * What the units reused from an earlier attempt of the run hold (per type, resources + rejects)
   * and how many they are: that attempt's server is gone, so this is what it served as bronze
   * recorded it.
   */
  get reusedFromEarlierAttempt(): { units: number; lines: Record<string, number> } {
    return { units: this.resumedUnits, lines: { ...this.earlier } };
  }

  /** Seconds from the first extraction Task to the drained (or failed) check. */
  get seconds(): number | undefined {
    return this.startedAt !== undefined && this.finishedAt !== undefined ? (this.finishedAt - this.startedAt) / 1000 : undefined;
  }

  private async flushMetrics(status: DrainStatus): Promise<void> {
    const m = this.metrics;
    const resources = Object.values(this.perType).reduce((a, c) => a + c.resources, 0);
    for (const [t, c] of Object.entries(this.perType).sort(([a], [b]) => a.localeCompare(b))) {
      m.count("extract.resources", c.resources, { resource_type: t });
      if (c.rejected) m.count("extract.rejected", c.rejected, { resource_type: t });
      m.bytes("extract.resource_bytes", c.bytes, { resource_type: t });
    }
    m.count("extract.units", status.unitsEnqueued, { done: status.unitsDone, failed: status.unitsFailed, resumed: this.resumedUnits });
    m.latency("extract.unit_seconds", this.unitSeconds);
    const h = this.deps.http.stats;
    m.count("extract.http_requests", h.requests);
    if (h.retries) m.error("extract.http_retries", h.retries);
    if (h.throttled) m.error("extract.http_throttled", h.throttled);
    if (this.unitRetries) m.error("extract.unit_retries", this.unitRetries);
    if (status.unitsFailed) m.error("extract.units_failed", status.unitsFailed);
    m.recordStep({ records: resources, bytes: this.inputBytes, seconds: this.seconds });
    await m.flush();
  }

  /** Stops the workers and closes the connection pool. */
  async close(): Promise<void> {
    await this.pool.close();
    await this.deps.http.close();
  }
}
