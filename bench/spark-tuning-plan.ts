// The Spark tuning benchmark's plan and verdicts (pure): which settings to compare (the config's
// against Spark's defaults, all at once and one setting at a time) and the ratios that justify
// each non-default setting.
import type { SparkSettings } from "../config/schema";
import type { BenchRatio } from "./types";

/** The tuned keys at Spark 3.5's own defaults (resources such as driver memory are not tuning). */
export const SPARK_DEFAULTS = {
  shufflePartitions: 200, // spark.sql.shuffle.partitions
  autoBroadcastJoinThresholdBytes: 10 * 1024 * 1024, // spark.sql.autoBroadcastJoinThreshold (10 MB)
  adaptiveEnabled: true, // spark.sql.adaptive.enabled (on since Spark 3.2)
  memoryFraction: 0.6, // spark.memory.fraction
  storageFraction: 0.5, // spark.memory.storageFraction
  kryo: false, // spark.serializer = JavaSerializer
} as const satisfies Partial<SparkSettings>;

export type TunedKey = keyof typeof SPARK_DEFAULTS;

/**
 * Non-default values worth trying on this data, one at a time against the configured settings
 * (each was in the config once; none paid for itself here, see the README): shuffle partitions
 * sized to 2 cores (2 per core) instead of AQE coalescing Spark's 200, a 32 MB broadcast
 * threshold, a smaller storage share of Spark memory, Kryo.
 */
export const CANDIDATES: Partial<SparkSettings> = {
  shufflePartitions: 4,
  autoBroadcastJoinThresholdBytes: 32 * 1024 * 1024,
  storageFraction: 0.3,
  kryo: true,
};

/** Below this, a candidate costs enough less than the configured settings to be adopted. */
export const CANDIDATE_TARGET = 0.95;

export interface Trial {
  /**
   * "configured", "defaults", "default:<key>" (configured with one key at Spark's default) or
   * "candidate:<key>" (configured with one key at its CANDIDATES value).
   */
  name: string;
  settings: SparkSettings;
  revertedKey?: TunedKey;
  candidateKey?: TunedKey;
}

/** Tuned keys whose configured value differs from Spark's default. */
export function nonDefaultKeys(configured: SparkSettings): TunedKey[] {
  return (Object.keys(SPARK_DEFAULTS) as TunedKey[]).filter((k) => configured[k] !== SPARK_DEFAULTS[k]);
}

/**
 * Configured; all defaults and one trial per non-default key reverted to its default (when any
 * key differs from Spark's default); one trial per candidate value the config does not use.
 */
export function tuningTrials(configured: SparkSettings, candidates: Partial<SparkSettings> = CANDIDATES): Trial[] {
  const trials: Trial[] = [{ name: "configured", settings: configured }];
  const keys = nonDefaultKeys(configured);
  if (keys.length) trials.push({ name: "defaults", settings: { ...configured, ...SPARK_DEFAULTS } });
  // With a single non-default key, "defaults" already is that key reverted.
  if (keys.length > 1)
    for (const key of keys)
      trials.push({ name: `default:${key}`, settings: { ...configured, [key]: SPARK_DEFAULTS[key] }, revertedKey: key });
  for (const key of Object.keys(SPARK_DEFAULTS) as TunedKey[]) {
    const value = candidates[key];
    if (value === undefined || value === configured[key]) continue;
    trials.push({ name: `candidate:${key}`, settings: { ...configured, [key]: value }, candidateKey: key });
  }
  return trials;
}

/**
 * Trial order for repetition `rep`: rotated so that no trial always runs first (the first JVM of
 * a series pays for cold OS caches) or last.
 */
export function trialOrder<T>(trials: readonly T[], rep: number): T[] {
  const k = rep % trials.length;
  return [...trials.slice(k), ...trials.slice(0, k)];
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/**
 * Ratios cost(other settings) / cost(configured), from the median cost (the silver job's CPU
 * seconds) of each trial: above 1 means the configured settings are cheaper, so higher is better
 * and >= 1 is the target (a setting that does not pay for itself shows as NOT met).
 */
export function tuningRatios(
  trials: readonly Trial[],
  seconds: ReadonlyMap<string, readonly number[]>,
  configured: SparkSettings,
): BenchRatio[] {
  const base = median(seconds.get("configured") ?? []);
  if (!(base > 0)) throw new Error("no time measured for the configured settings");
  const ratios: BenchRatio[] = [];
  for (const trial of trials) {
    if (trial.name === "configured") continue;
    const t = seconds.get(trial.name);
    if (!t?.length) throw new Error(`no time measured for trial ${trial.name}`);
    const value = median(t) / base;
    if (trial.candidateKey) {
      const key = trial.candidateKey;
      ratios.push({
        name: `spark_tuning.silver.candidate.${key}`,
        value,
        higherIsBetter: true,
        target: { op: ">=", value: CANDIDATE_TARGET },
        detail: `silver job CPU time with ${key}=${String(trial.settings[key])} (candidate) / with ${key}=${String(configured[key])} (configured); below ${CANDIDATE_TARGET} the candidate pays for itself`,
      });
    } else if (trial.revertedKey) {
      const key = trial.revertedKey;
      ratios.push({
        name: `spark_tuning.silver.${key}`,
        value,
        higherIsBetter: true,
        target: { op: ">=", value: 1 },
        detail: `silver job CPU time with ${key}=${String(SPARK_DEFAULTS[key])} (Spark default) / with ${key}=${String(configured[key])} (configured)`,
      });
    } else {
      const changed = nonDefaultKeys(configured)
        .map((k) => `${k}=${String(configured[k])}`)
        .join(", ");
      ratios.push({
        name: "spark_tuning.silver.defaults",
        value,
        higherIsBetter: true,
        target: { op: ">=", value: 1 },
        detail: `silver job CPU time with Spark's defaults / with the configured settings (${changed || "none differ"})`,
      });
    }
  }
  return ratios;
}
