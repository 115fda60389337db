// What every step of the extractor needs, built once per process (a Lambda container, a CLI run):
// the HTTP client (auth, rate budget, retries), the storage of the bronze layer, the queue units
// go to, the extraction settings, and where logs and progress go. The step functions take it as
// their second argument, so the Lambda handlers and the local run share every line of logic.
import { ALL_RESOURCE_TYPES } from "../../config/schema";
import type { ProgressSink } from "../../lib/core/progress";
import type { Storage } from "../../lib/core/storage";
import { DEFAULT_MAX_LINE_BYTES } from "./bronze/ndjson-lines";
import type { FhirHttp } from "./http/fhir-http";
import type { UnitQueue } from "./unit-queue";

export interface ExtractorSettings {
  /** Types asked for when the run does not say (config.extraction.resourceTypes). */
  resourceTypes: string[];
  /** _count of search pages. */
  pageSize: number;
  /** Requests in flight per worker (search) and units in flight (local pool). */
  concurrency: number;
  /** Observation categories searched (Epic needs a category or a code). */
  observationCategories: string[];
  /** Extra per-type search parameter sets (each set is one search per patient); Observation's come from observationCategories. */
  searchParams?: Record<string, Array<Record<string, string>>>;
  /** config.extraction.bronzePartMaxBytes */
  partMaxBytes: number;
  /** Patients per search work unit. */
  patientsPerUnit: number;
  /** Bulk output files (of one type) per work unit. */
  bulkFilesPerUnit: number;
  /** Lines longer than this are rejected (line_too_large) without being buffered. */
  maxLineBytes: number;
}

export const DEFAULT_SETTINGS: ExtractorSettings = {
  resourceTypes: [...ALL_RESOURCE_TYPES],
  pageSize: 200,
  concurrency: 8,
  observationCategories: ["vital-signs", "laboratory", "social-history"],
  partMaxBytes: 128 << 20,
  patientsPerUnit: 25,
  bulkFilesPerUnit: 4,
  maxLineBytes: DEFAULT_MAX_LINE_BYTES,
};

/** Structured logs: ids, counts and timings only (never resource content). */
export interface ExtractorLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export const SILENT_LOG: ExtractorLog = { info: () => undefined, warn: () => undefined };

/** Cumulative counts per resource type for the progress display. */
export class ExtractCounters {
  readonly resources: Record<string, number> = {};
  rejected = 0;
  bytes = 0;
  private lastEmit = 0;
  constructor(private readonly progress?: ProgressSink) {}

  add(type: string, n: number): void {
    this.resources[type] = (this.resources[type] ?? 0) + n;
    this.maybeEmit();
  }

  private maybeEmit(force = false): void {
    if (!this.progress) return;
    const now = Date.now();
    if (!force && now - this.lastEmit < 200) return;
    this.lastEmit = now;
    for (const [key, done] of Object.entries(this.resources))
      this.progress.emit({ kind: "counter", group: "extract", key, done, unit: "resources" });
  }

  flush(): void {
    this.maybeEmit(true);
  }
}

export interface ExtractorDeps {
  http: FhirHttp;
  /** FHIR R4 base URL. */
  baseUrl: string;
  storage: Storage;
  bronzeUri: string;
  queue: UnitQueue;
  settings: ExtractorSettings;
  log: ExtractorLog;
  counters?: ExtractCounters;
  progress?: ProgressSink;
}
