// Work units: what one worker does in one go (one SQS message in the cloud, one task of the
// in-process pool locally). Each is self-contained: a worker needs nothing but the unit and its
// dependencies. `unitIndex` is unique within a run and fixes the unit's part-file numbers, so a
// unit processed twice overwrites its own files instead of adding rows.

interface UnitCommon {
  runId: string;
  /** Unique in the run; names the unit's record file (_runs/{run}/units/{unitId}.json). */
  unitId: string;
  unitIndex: number;
  /** YYYY-MM-DD of the run's start (the ingest_date partition). */
  ingestDate: string;
  /** The Epic group the unit belongs to ("" for an NDJSON directory import). */
  groupId: string;
  /** Resource types asked for in the run. */
  types: string[];
}

/**
 * Files of a bulk export's manifest: `output` (resources; up to bulkFilesPerUnit files of one
 * type, so a unit makes fewer, larger part files), `error` (OperationOutcomes) or `deleted`
 * (Bundles), one file each.
 */
export interface BulkFileUnit extends UnitCommon {
  kind: "bulk-file";
  fileKind: "output" | "error" | "deleted";
  /** The manifest entries' `type`. */
  resourceType: string;
  urls: string[];
  requiresAccessToken: boolean;
}

/** A batch of patients of a group, crawled by search for every patient-scoped type. */
export interface SearchPatientsUnit extends UnitCommon {
  kind: "search-patients";
  patientIds: string[];
}

/** Shared resources (Practitioner, Organization) referenced by the crawled patients, read by id once per run. */
export interface SearchSharedUnit extends UnitCommon {
  kind: "search-shared";
  resourceType: string;
  ids: string[];
}

/** One NDJSON file of a directory another tool exported. */
export interface NdjsonFileUnit extends UnitCommon {
  kind: "ndjson-file";
  /** file:// or s3:// URI of the file. */
  uri: string;
}

export type WorkUnit = BulkFileUnit | SearchPatientsUnit | SearchSharedUnit | NdjsonFileUnit;
export type WorkUnitKind = WorkUnit["kind"];

/** Unit indexes: group g's units are g * UNITS_PER_GROUP + i (shared units use g = number of groups). */
export const UNITS_PER_GROUP = 100_000;
