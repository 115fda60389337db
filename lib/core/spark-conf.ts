// The one mapping from the config's Spark settings (config/*.json processing.spark / localSpark) to
// Spark conf keys. The processing stack turns it into EMR Serverless `sparkSubmitParameters`; the
// local run passes the same keys to its local SparkSession, so both places tune Spark identically.
import type { SparkSettings } from "../../config/schema";

export type { SparkSettings };

/** The Iceberg catalog name every job uses (`lake.silver.resources`), locally and on EMR. */
export const ICEBERG_CATALOG = "lake";

/** Where EMR 7.x ships the Iceberg runtime (no download at job start). */
export const EMR_ICEBERG_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar";

/** Spark conf keys for the tuning settings (memory, cores, allocation, AQE, joins, serializer). */
export function sparkConf(settings: SparkSettings): Record<string, string> {
  const conf: Record<string, string> = {
    "spark.driver.memory": settings.driverMemory,
    "spark.driver.cores": String(settings.driverCores),
    "spark.executor.memory": settings.executorMemory,
    "spark.executor.cores": String(settings.executorCores),
    "spark.dynamicAllocation.enabled": String(settings.dynamicAllocation.enabled),
    "spark.sql.adaptive.enabled": String(settings.adaptiveEnabled),
    "spark.sql.shuffle.partitions": String(settings.shufflePartitions),
    "spark.sql.autoBroadcastJoinThreshold": String(settings.autoBroadcastJoinThresholdBytes),
    "spark.memory.fraction": String(settings.memoryFraction),
    "spark.memory.storageFraction": String(settings.storageFraction),
  };
  if (settings.dynamicAllocation.enabled) {
    conf["spark.dynamicAllocation.minExecutors"] = String(settings.dynamicAllocation.minExecutors);
    conf["spark.dynamicAllocation.maxExecutors"] = String(settings.dynamicAllocation.maxExecutors);
  } else {
    // Without dynamic allocation the job gets a fixed fleet: the configured maximum.
    conf["spark.executor.instances"] = String(settings.dynamicAllocation.maxExecutors);
  }
  if (settings.kryo) conf["spark.serializer"] = "org.apache.spark.serializer.KryoSerializer";
  return conf;
}

/** Iceberg over the AWS Glue Data Catalog, tables stored under `warehouse` (an s3:// URI). */
export function icebergGlueConf(warehouse: string): Record<string, string> {
  const c = `spark.sql.catalog.${ICEBERG_CATALOG}`;
  return {
    "spark.jars": EMR_ICEBERG_JAR,
    "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    [c]: "org.apache.iceberg.spark.SparkCatalog",
    [`${c}.catalog-impl`]: "org.apache.iceberg.aws.glue.GlueCatalog",
    [`${c}.io-impl`]: "org.apache.iceberg.aws.s3.S3FileIO",
    [`${c}.warehouse`]: warehouse,
    "spark.sql.defaultCatalog": ICEBERG_CATALOG,
  };
}

export interface SubmitOptions {
  /** s3:// URI of the Iceberg warehouse (the silver layer). */
  warehouse: string;
  /** s3:// URI of the zipped Python package put on the PYTHONPATH of driver and executors. */
  pyFiles?: string;
  /** Extra keys, applied last (they win). */
  extraConf?: Record<string, string>;
}

/** The whole conf of a cloud job: tuning + Iceberg/Glue + package + extras, in a stable order. */
export function emrJobConf(settings: SparkSettings, options: SubmitOptions): Record<string, string> {
  return {
    ...sparkConf(settings),
    ...icebergGlueConf(options.warehouse),
    ...(options.pyFiles ? { "spark.submit.pyFiles": options.pyFiles } : {}),
    ...(options.extraConf ?? {}),
  };
}

/** Renders conf as spark-submit arguments: `--conf k=v --conf k2=v2`. */
export function renderSubmitParameters(conf: Record<string, string>): string {
  return Object.entries(conf)
    .map(([key, value]) => {
      if (/\s/.test(key) || /\s/.test(value)) throw new Error(`spark conf ${key} has whitespace; EMR would split it`);
      return `--conf ${key}=${value}`;
    })
    .join(" ");
}

/** EMR Serverless `sparkSubmitParameters` for one job (see emrJobConf). */
export function sparkSubmitParameters(settings: SparkSettings, options: SubmitOptions): string {
  return renderSubmitParameters(emrJobConf(settings, options));
}

/** Gigabytes in a Spark memory string ("14g" -> 14, "512m" -> 0.5). */
export function memoryGb(memory: string): number {
  const m = /^(\d+)([gGmM])$/.exec(memory);
  if (!m) throw new Error(`not a Spark memory size: ${memory}`);
  const n = Number(m[1]);
  return m[2].toLowerCase() === "g" ? n : n / 1024;
}

/** EMR Serverless's allowed memory range (GB) per worker vCPU count. */
const WORKER_MEMORY_RANGE: Record<number, [number, number]> = {
  1: [2, 8],
  2: [4, 16],
  4: [8, 30],
  8: [16, 60],
  16: [32, 120],
};

export interface WorkerConfiguration {
  cpu: string;
  memory: string;
  disk: string;
}

/**
 * The worker size that holds one Spark driver or executor of `cores` and `memory` plus the 10%
 * memory overhead Spark adds, so pre-initialised capacity is actually used by the jobs (EMR only
 * hands a job pre-initialised workers whose size matches its request).
 */
export function emrWorkerConfiguration(cores: number, memory: string, diskGb = 20): WorkerConfiguration {
  const vcpu = Object.keys(WORKER_MEMORY_RANGE)
    .map(Number)
    .find((c) => c >= cores);
  if (vcpu === undefined) throw new Error(`no EMR Serverless worker has ${cores} vCPU`);
  const [min, max] = WORKER_MEMORY_RANGE[vcpu];
  const needed = Math.ceil(memoryGb(memory) * 1.1);
  if (needed > max) throw new Error(`${memory} (+10% overhead) does not fit a ${vcpu} vCPU EMR Serverless worker (max ${max} GB)`);
  return { cpu: `${vcpu} vCPU`, memory: `${Math.max(min, needed)} GB`, disk: `${diskGb} GB` };
}
