// Builds ExtractorDeps from what a caller has: the pipeline config (Lambdas: FunctionConfig and
// a Secrets Manager key; local runs: a config file or a client file written by `simulate`).
import type { ClientConfigFile } from "../../lib/core/client-config";
import type { ProgressSink } from "../../lib/core/progress";
import { storageFor, normalizeUri } from "../../lib/core/storage";
import type { PipelineConfig } from "../../config/schema";
import type { SigningAlgorithm } from "./auth/client-assertion";
import { FileKeySource, SecretsManagerKeySource, type KeySource } from "./auth/key-source";
import { TokenProvider } from "./auth/token-provider";
import {
  DEFAULT_SETTINGS,
  ExtractCounters,
  SILENT_LOG,
  type ExtractorDeps,
  type ExtractorLog,
  type ExtractorSettings,
} from "./extractor-deps";
import { FhirHttp } from "./http/fhir-http";
import { RateBudget } from "./http/rate-budget";
import { DEFAULT_RETRY, type RetryOptions } from "./http/retry-policy";
import type { UnitQueue } from "./unit-queue";

export interface Connection {
  baseUrl: string;
  tokenUrl: string;
  clientId: string;
  keySource: KeySource;
  algorithm: SigningAlgorithm;
  keyId?: string;
}

export interface HttpSettings {
  /** Requests per second, shared by every worker of this process (undefined: no budget). */
  rateLimitPerSecond?: number;
  retry: RetryOptions;
  requestTimeoutMs: number;
  connections: number;
}

export function connectionFromClientFile(c: ClientConfigFile): Connection {
  return {
    baseUrl: c.baseUrl,
    tokenUrl: c.tokenUrl,
    clientId: c.clientId,
    keySource: new FileKeySource(c.privateKeyFile),
    algorithm: c.algorithm,
    keyId: c.keyId,
  };
}

/** From the pipeline config: the key from its file locally, from Secrets Manager otherwise (or `secretId`). */
export function connectionFromConfig(
  epic: Omit<PipelineConfig["epic"], "privateKeyFile"> & { privateKeyFile?: string },
  secretId?: string,
): Connection {
  const keySource =
    epic.privateKeyFile && !secretId
      ? new FileKeySource(epic.privateKeyFile)
      : new SecretsManagerKeySource(secretId ?? epic.privateKeySecretName);
  return {
    baseUrl: epic.baseUrl,
    tokenUrl: epic.tokenUrl,
    clientId: epic.clientId,
    keySource,
    algorithm: epic.signingAlgorithm,
    keyId: epic.keyId,
  };
}

export function settingsFromConfig(x: PipelineConfig["extraction"]): { settings: ExtractorSettings; http: HttpSettings } {
  return {
    settings: {
      ...DEFAULT_SETTINGS,
      resourceTypes: [...x.resourceTypes],
      pageSize: x.pageSize,
      concurrency: x.concurrency,
      observationCategories: [...x.observationCategories],
      partMaxBytes: x.bronzePartMaxBytes,
    },
    http: {
      rateLimitPerSecond: x.rateLimitPerSecond,
      retry: {
        maxAttempts: x.retry.maxAttempts,
        baseDelayMs: x.retry.baseDelayMs,
        maxDelayMs: x.retry.maxDelayMs,
        maxRetryAfterMs: DEFAULT_RETRY.maxRetryAfterMs,
      },
      requestTimeoutMs: x.requestTimeoutMs,
      connections: x.concurrency,
    },
  };
}

export const DEFAULT_HTTP: HttpSettings = { retry: DEFAULT_RETRY, requestTimeoutMs: 60_000, connections: 8 };

export interface DepsOptions {
  connection: Connection;
  bronzeUri: string;
  queue: UnitQueue;
  settings?: Partial<ExtractorSettings>;
  http?: Partial<HttpSettings>;
  log?: ExtractorLog;
  progress?: ProgressSink;
}

export function createExtractorDeps(o: DepsOptions): ExtractorDeps {
  const http = { ...DEFAULT_HTTP, ...o.http };
  const settings = { ...DEFAULT_SETTINGS, ...o.settings };
  const tokens = new TokenProvider({
    tokenUrl: o.connection.tokenUrl,
    clientId: o.connection.clientId,
    keySource: o.connection.keySource,
    algorithm: o.connection.algorithm,
    keyId: o.connection.keyId,
    retry: http.retry,
    timeoutMs: http.requestTimeoutMs,
  });
  const fhir = new FhirHttp({
    tokens,
    budget: http.rateLimitPerSecond ? new RateBudget(http.rateLimitPerSecond) : undefined,
    retry: http.retry,
    timeoutMs: http.requestTimeoutMs,
    connections: http.connections,
  });
  const bronzeUri = normalizeUri(o.bronzeUri);
  return {
    http: fhir,
    baseUrl: o.connection.baseUrl.replace(/\/+$/, ""),
    storage: storageFor(bronzeUri),
    bronzeUri,
    queue: o.queue,
    settings,
    log: o.log ?? SILENT_LOG,
    progress: o.progress,
    counters: new ExtractCounters(o.progress),
  };
}
