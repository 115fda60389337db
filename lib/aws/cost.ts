// Pure cost arithmetic for a pipeline run in AWS: EMR Serverless (from GetJobRun's resource
// utilisation), Lambda GB-seconds, Step Functions state transitions and Athena bytes scanned.
// No I/O here; lib/aws/run-cost.ts gathers the inputs, lib/aws/cost-report.ts presents them.
//
// Prices are on-demand list prices for us-east-1 (N. Virginia), the region-agnostic default.
// Other regions differ by a few percent; pass a PriceTable of your own for exact figures (the AWS
// Price List API publishes them). Estimates exclude free tiers, S3 requests/storage, KMS calls and
// data transfer: they answer "what did this run cost in compute", not "what will the bill say".

export type Architecture = "x86_64" | "arm64";

export interface PriceTable {
  /** USD per vCPU-hour of an EMR Serverless worker. */
  emrVcpuHour: number;
  /** USD per GB-hour of EMR Serverless worker memory. */
  emrMemoryGbHour: number;
  /** USD per GB-hour of EMR Serverless ephemeral storage beyond the 20 GB free per worker. */
  emrStorageGbHour: number;
  /** USD per GB-second of Lambda duration. */
  lambdaGbSecond: number;
  /** USD per Lambda request. */
  lambdaRequest: number;
  /** USD per Step Functions Standard state transition. */
  sfnStateTransition: number;
  /** USD per TB scanned by Athena (SQL queries, per-query billing). */
  athenaPerTb: number;
}

/**
 * us-east-1 on-demand prices. EMR Serverless: x86_64 $0.052624/vCPU-h, $0.0057785/GB-h; arm64
 * (Graviton, 20% less) $0.042094/vCPU-h, $0.004628/GB-h; storage $0.000111/GB-h either way.
 * Lambda: $0.0000166667/GB-s x86_64, $0.0000133334/GB-s arm64, $0.20 per million requests.
 * Step Functions Standard: $0.025 per 1,000 state transitions. Athena: $5 per TB scanned.
 */
export const US_EAST_1_PRICES: Record<Architecture, PriceTable> = {
  x86_64: {
    emrVcpuHour: 0.052624,
    emrMemoryGbHour: 0.0057785,
    emrStorageGbHour: 0.000111,
    lambdaGbSecond: 0.0000166667,
    lambdaRequest: 0.2 / 1_000_000,
    sfnStateTransition: 0.025 / 1000,
    athenaPerTb: 5,
  },
  arm64: {
    emrVcpuHour: 0.042094,
    emrMemoryGbHour: 0.004628,
    emrStorageGbHour: 0.000111,
    lambdaGbSecond: 0.0000133334,
    lambdaRequest: 0.2 / 1_000_000,
    sfnStateTransition: 0.025 / 1000,
    athenaPerTb: 5,
  },
};

/**
 * The prices of what the stacks deploy: the extractor Lambdas (lib/constructs/pipeline-function.ts)
 * and the EMR Serverless application (lib/stacks/processing-stack.ts) both run on arm64 (Graviton).
 */
export const DEPLOYED_PRICES: PriceTable = US_EAST_1_PRICES.arm64;

/** Athena's price per TB scanned: $5 (us-east-1 and most regions). */
export const ATHENA_USD_PER_TB = 5;
/** Athena bills bytes in binary units: 1 TB = 2^40 bytes, rounded up to the next MB (2^20). */
export const ATHENA_BYTES_PER_TB = 2 ** 40;
export const ATHENA_BYTES_PER_MB = 2 ** 20;
/** Every query is billed at least 10 MB, even one that scans nothing (or fails after scanning). */
export const ATHENA_MINIMUM_BILLED_BYTES = 10 * ATHENA_BYTES_PER_MB;

/** GetJobRun's resource utilisation (billedResourceUtilization or totalResourceUtilization). */
export interface EmrUtilisation {
  vCPUHour: number;
  memoryGBHour: number;
  storageGBHour: number;
}

export interface EmrJobCost {
  utilisation: EmrUtilisation;
  vcpuUsd: number;
  memoryUsd: number;
  storageUsd: number;
  totalUsd: number;
}

function nonNegative(n: number | undefined): number {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : 0;
}

/** Cost of one EMR Serverless job run from its billed utilisation. */
export function emrJobCost(utilisation: Partial<EmrUtilisation>, prices: PriceTable = DEPLOYED_PRICES): EmrJobCost {
  const u: EmrUtilisation = {
    vCPUHour: nonNegative(utilisation.vCPUHour),
    memoryGBHour: nonNegative(utilisation.memoryGBHour),
    storageGBHour: nonNegative(utilisation.storageGBHour),
  };
  const vcpuUsd = u.vCPUHour * prices.emrVcpuHour;
  const memoryUsd = u.memoryGBHour * prices.emrMemoryGbHour;
  const storageUsd = u.storageGBHour * prices.emrStorageGbHour;
  return { utilisation: u, vcpuUsd, memoryUsd, storageUsd, totalUsd: vcpuUsd + memoryUsd + storageUsd };
}

/** Bytes Athena bills for a query that scanned `bytesScanned`: rounded up to a MB, 10 MB minimum. */
export function athenaBilledBytes(bytesScanned: number): number {
  const rounded = Math.ceil(nonNegative(bytesScanned) / ATHENA_BYTES_PER_MB) * ATHENA_BYTES_PER_MB;
  return Math.max(rounded, ATHENA_MINIMUM_BILLED_BYTES);
}

/** Cost of one Athena query that scanned `bytesScanned` bytes. */
export function athenaQueryCost(bytesScanned: number, usdPerTb: number = ATHENA_USD_PER_TB): number {
  return (athenaBilledBytes(bytesScanned) / ATHENA_BYTES_PER_TB) * usdPerTb;
}

/** Lambda GB-seconds of `invocations` lasting `durationMs` in total with `memoryMb` configured. */
export function lambdaGbSeconds(totalDurationMs: number, memoryMb: number): number {
  return (nonNegative(totalDurationMs) / 1000) * (nonNegative(memoryMb) / 1024);
}

/** One Lambda function's use in a run's window (CloudWatch AWS/Lambda Sum of Duration, Invocations). */
export interface LambdaFunctionUsage {
  /** Its role in the pipeline: the state name, or DownloadFile / SearchWorker. */
  role: string;
  name: string;
  memoryMb: number;
  durationMs: number;
  invocations: number;
  /** durationMs / 1000 x memoryMb / 1024. */
  gbSeconds: number;
}

/** Everything a run consumed that has a price. */
export interface RunUsage {
  /** One entry per EMR Serverless job (silver, gold, maintenance), billed utilisation. */
  emrJobs: { step: string; jobRunId?: string; billed: Partial<EmrUtilisation> }[];
  lambdaGbSeconds: number;
  lambdaRequests: number;
  /** The functions behind lambdaGbSeconds and lambdaRequests, when measured per function. */
  lambdaFunctions?: LambdaFunctionUsage[];
  stateTransitions: number;
  /** Bytes scanned per Athena query the run issued (each billed separately, 10 MB minimum). */
  athenaQueryBytes: number[];
  /** Resources extracted in the run (all types), for the cost per million resources. */
  resources: number;
}

export interface RunCost {
  emrUsd: number;
  emrByStep: Record<string, number>;
  lambdaUsd: number;
  stepFunctionsUsd: number;
  athenaUsd: number;
  totalUsd: number;
  /** Total cost per million resources extracted; undefined when the run extracted none. */
  usdPerMillionResources?: number;
}

export function runCost(usage: RunUsage, prices: PriceTable = DEPLOYED_PRICES): RunCost {
  const emrByStep: Record<string, number> = {};
  let emrUsd = 0;
  for (const job of usage.emrJobs) {
    const c = emrJobCost(job.billed, prices).totalUsd;
    emrByStep[job.step] = (emrByStep[job.step] ?? 0) + c;
    emrUsd += c;
  }
  const lambdaUsd = nonNegative(usage.lambdaGbSeconds) * prices.lambdaGbSecond + nonNegative(usage.lambdaRequests) * prices.lambdaRequest;
  const stepFunctionsUsd = nonNegative(usage.stateTransitions) * prices.sfnStateTransition;
  const athenaUsd = usage.athenaQueryBytes.reduce((sum, b) => sum + athenaQueryCost(b, prices.athenaPerTb), 0);
  const totalUsd = emrUsd + lambdaUsd + stepFunctionsUsd + athenaUsd;
  return {
    emrUsd,
    emrByStep,
    lambdaUsd,
    stepFunctionsUsd,
    athenaUsd,
    totalUsd,
    usdPerMillionResources: usage.resources > 0 ? (totalUsd / usage.resources) * 1_000_000 : undefined,
  };
}

export interface TrendPoint {
  /** When the run started (ms since epoch). */
  at: number;
  value: number;
}

export interface Trend {
  /** Runs considered. */
  points: number;
  /** Least-squares slope per run (value units per run). */
  slopePerRun: number;
  /** Change from the mean of the first half to the mean of the second half, as a fraction. */
  change: number;
  direction: "rising" | "falling" | "flat";
}

/**
 * The trend of a series of per-run values (oldest first): least-squares slope over run index, and
 * the relative change between the older and the newer half. Within ±5% is "flat": run-to-run
 * noise from data volume is larger than that.
 */
export function trend(points: TrendPoint[]): Trend | undefined {
  const sorted = [...points].filter((p) => Number.isFinite(p.value)).sort((a, b) => a.at - b.at);
  const n = sorted.length;
  if (n < 2) return undefined;
  const meanX = (n - 1) / 2;
  const meanY = sorted.reduce((s, p) => s + p.value, 0) / n;
  let num = 0;
  let den = 0;
  sorted.forEach((p, i) => {
    num += (i - meanX) * (p.value - meanY);
    den += (i - meanX) ** 2;
  });
  const slopePerRun = den === 0 ? 0 : num / den;
  const half = Math.floor(n / 2);
  const mean = (xs: TrendPoint[]) => xs.reduce((s, p) => s + p.value, 0) / xs.length;
  const older = mean(sorted.slice(0, half));
  const newer = mean(sorted.slice(n - half));
  const change = older === 0 ? (newer === 0 ? 0 : Infinity) : (newer - older) / older;
  const direction = Math.abs(change) <= 0.05 ? "flat" : change > 0 ? "rising" : "falling";
  return { points: n, slopePerRun, change, direction };
}

/** "$0.0123" style: enough digits to see sub-cent costs. */
export function formatUsd(usd: number): string {
  if (usd === 0) return "$0";
  if (Math.abs(usd) >= 100) return `$${usd.toFixed(0)}`;
  if (Math.abs(usd) >= 1) return `$${usd.toFixed(2)}`;
  return `$${usd.toPrecision(3)}`;
}

/** "0 bytes", "512.0 KB", "1.2 GB": binary units, as Athena bills and S3 reports sizes. */
export function formatBytes(n: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]}`;
}
