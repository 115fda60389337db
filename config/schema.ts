// The one schema every environment config obeys. The same file drives `cdk synth` (bin/app.ts)
// and local runs (the CLI), so a mistake is caught before anything is deployed or extracted.
import { z } from "zod";

const FHIR_TYPES = [
  "Patient",
  "Encounter",
  "Observation",
  "Condition",
  "MedicationRequest",
  "AllergyIntolerance",
  "Procedure",
  "Immunization",
  "DiagnosticReport",
  "Practitioner",
  "Organization",
] as const;
export const FhirResourceType = z.enum(FHIR_TYPES);
export type FhirResourceType = z.infer<typeof FhirResourceType>;
export const ALL_RESOURCE_TYPES: readonly FhirResourceType[] = FHIR_TYPES;

const httpsOrLoopbackUrl = z
  .string()
  .url()
  .refine((u) => {
    if (!URL.canParse(u)) return true; // .url() already reported it
    const url = new URL(u);
    return url.protocol === "https:" || (url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname));
  }, "must be an https:// URL (http:// only on 127.0.0.1/localhost)");

const memory = z.string().regex(/^\d+[gGmM]$/, "must look like 4g or 512m");

export const EpicConfig = z
  .object({
    baseUrl: httpsOrLoopbackUrl.describe("FHIR R4 base URL, e.g. https://fhir.example.org/api/FHIR/R4"),
    tokenUrl: httpsOrLoopbackUrl.describe("OAuth 2.0 token endpoint"),
    clientId: z.string().min(1),
    groupIds: z.array(z.string().min(1)).min(1),
    signingAlgorithm: z.enum(["RS384", "RS256", "RS512", "ES384"]).default("RS384"),
    keyId: z.string().min(1).optional(),
    /** Cloud: the Secrets Manager secret holding the PEM private key. */
    privateKeySecretName: z.string().min(1),
    /** Local runs: a file holding the PEM private key (never the key itself). */
    privateKeyFile: z.string().min(1).optional(),
  })
  .strict();

export const ExtractionConfig = z
  .object({
    mode: z.enum(["bulk", "search"]).default("bulk"),
    resourceTypes: z.array(FhirResourceType).min(1).default([...FHIR_TYPES]),
    /** One rate budget shared by every worker (requests per second to Epic). */
    rateLimitPerSecond: z.number().positive().max(1000),
    /** Concurrent workers (Lambda maxConcurrency in the cloud, the worker pool locally). */
    concurrency: z.number().int().min(1).max(1000),
    pageSize: z.number().int().min(1).max(1000).default(200),
    observationCategories: z.array(z.string().min(1)).min(1).default(["vital-signs", "laboratory", "social-history"]),
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).max(20).default(8),
        baseDelayMs: z.number().int().min(1).default(200),
        maxDelayMs: z.number().int().min(1).default(60_000),
      })
      .strict()
      .default({}),
    requestTimeoutMs: z.number().int().min(100).default(60_000),
    bronzePartMaxBytes: z.number().int().min(1 << 20).default(128 << 20),
  })
  .strict();

export const SparkSettings = z
  .object({
    driverMemory: memory,
    driverCores: z.number().int().min(1).max(16),
    executorMemory: memory,
    executorCores: z.number().int().min(1).max(16),
    dynamicAllocation: z
      .object({ enabled: z.boolean(), minExecutors: z.number().int().min(0), maxExecutors: z.number().int().min(1) })
      .strict(),
    adaptiveEnabled: z.boolean(),
    shufflePartitions: z.number().int().min(1).max(10_000),
    autoBroadcastJoinThresholdBytes: z.number().int().min(-1),
    memoryFraction: z.number().gt(0).lt(1),
    storageFraction: z.number().gt(0).lt(1),
    kryo: z.boolean(),
  })
  .strict();
export type SparkSettings = z.infer<typeof SparkSettings>;

export const ProcessingConfig = z
  .object({
    releaseLabel: z.string().regex(/^emr-7\.\d+\.\d+$/, "must be an emr-7.x release label (Spark 3.5)"),
    initialCapacity: z
      .object({ driverWorkers: z.number().int().min(0), executorWorkers: z.number().int().min(0) })
      .strict(),
    maximumCapacity: z.object({ cpu: z.string(), memory: z.string(), disk: z.string() }).strict(),
    autoStopIdleMinutes: z.number().int().min(1).max(10_080),
    /** EMR Serverless cancels a job running longer than this (the state machine then fails the run). */
    jobTimeoutMinutes: z.number().int().min(10).max(1440).default(360),
    spark: SparkSettings,
    /** Spark settings for local runs (one machine): same keys, smaller numbers. */
    localSpark: SparkSettings,
  })
  .strict();

/**
 * When the Maintenance Task runs each Iceberg procedure on a table (spark-jobs maintenance_job.py
 * decides from the table's metadata; a table nothing is due for costs no Spark job).
 */
export const MaintenanceConfig = z
  .object({
    /** Compact once this many small data files were committed since the table's last compaction. */
    compactMinSmallFiles: z.number().int().min(1).default(50),
    /** ...and they are at least this share of its data files. */
    compactSmallFilesShare: z.number().gt(0).max(1).default(0.5),
    /** Compact once a table has this many delete files (merge-on-read updates and deletes)... */
    compactMinDeleteFiles: z.number().int().min(1).default(20),
    /** ...and at least this many per data file (a nightly MERGE adds one to each partition it touches). */
    compactDeleteFilesPerDataFile: z.number().gt(0).default(1),
    /** A data file below this size is small (about 3/4 of the 128 MiB target Athena reads best). */
    smallFileBytes: z
      .number()
      .int()
      .min(1 << 20)
      .default(96 << 20),
    /** Merge a table's manifests once its current snapshot has this many (one per commit). */
    rewriteManifestsMin: z.number().int().min(2).default(16),
    /** Expire snapshots older than this, keeping the last `retainLastSnapshots` and tagged ones. */
    expireSnapshotsOlderThanDays: z.number().int().min(1).default(3),
    retainLastSnapshots: z.number().int().min(1).default(5),
    /** Look for orphan files (it lists every file of a table) at most this often... */
    orphanFilesIntervalDays: z.number().int().min(1).default(7),
    /** ...and delete only those older than this (a write in progress is younger). */
    orphanFilesOlderThanDays: z.number().int().min(1).default(3),
  })
  .strict();
export type MaintenanceConfig = z.infer<typeof MaintenanceConfig>;

export const StorageConfig = z
  .object({
    bronzeInfrequentAccessAfterDays: z.number().int().min(30),
    bronzeGlacierAfterDays: z.number().int().min(90),
    noncurrentVersionExpirationDays: z.number().int().min(1),
    accessLogRetentionDays: z.number().int().min(1),
  })
  .strict();

export const ConfigSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{1,20}$/, "lower-case letters, digits and dashes"),
    epic: EpicConfig,
    extraction: ExtractionConfig,
    storage: StorageConfig,
    processing: ProcessingConfig,
    orchestration: z
      .object({
        scheduleExpression: z.string().regex(/^(cron|rate)\(.+\)$/, "must be cron(...) or rate(...)"),
        scheduleTimezone: z.string().default("UTC"),
        enabled: z.boolean().default(true),
        /** Epic groups exported (or crawled) at the same time by the state machine's Map. */
        maxParallelGroups: z.number().int().min(1).max(40).default(4),
        /** A run still going after this long is stopped (state machine TimeoutSeconds). */
        runTimeoutHours: z.number().int().min(1).max(168).default(24),
      })
      .strict(),
    analytics: z.object({ bytesScannedCutoffPerQuery: z.number().int().min(10_000_000) }).strict(),
    gold: z.object({ suppressionThreshold: z.number().int().min(1).default(10) }).strict(),
    maintenance: MaintenanceConfig.default({}),
    monitoring: z
      .object({
        alarmEmail: z.string().email().optional(),
        lambdaP95DurationMs: z.number().int().positive(),
        queueOldestMessageAgeSeconds: z.number().int().positive(),
        emrJobMaxDurationMinutes: z.number().int().positive(),
        athenaBytesScannedAlarm: z.number().int().positive(),
      })
      .strict(),
    network: z
      .object({
        vpcCidr: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, "must be a CIDR"),
        maxAzs: z.number().int().min(1).max(3).default(2),
        /** NAT gateways for the egress to Epic (one per AZ for resilience, one to save cost). */
        natGateways: z.number().int().min(1).max(3).default(1),
        /** Where Epic lives: the only egress the extractor functions get (443 only). */
        epicEgressCidrs: z.array(z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, "must be a CIDR")).min(1),
      })
      .strict(),
  })
  .strict();

export type PipelineConfig = z.infer<typeof ConfigSchema>;
