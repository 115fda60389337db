// What the simulator served, for tests that reconcile the extractor's output exactly.
//
// Semantics of `served` (GET /_admin/stats):
// - It counts DISTINCT resource versions (type, id, versionId) per resource type that reached a
//   client in full: a resource counts once however many times it is delivered (a bulk file
//   downloaded twice, the same resource returned by a read and a search, or by two exports).
// - Bulk NDJSON files: a complete download (every byte handed to the connection) counts every
//   line. A truncated download (`truncate` fault) counts only the complete lines before the cut;
//   the partial line at the cut and everything after it do not count (unless delivered again
//   later). A download the client aborts counts nothing. Lines corrupted by the `malformed` fault count as
//   served for the file's type: the client receives them and must count them as rejects. So, for
//   each type: rows kept by a client + lines it rejected = served (after stats are reset and
//   provided the client keeps each delivered resource version once).
// - Searches and reads: every entry of a Bundle (or the resource of a read) counts once the whole
//   response has been written. OperationOutcome entries (search.mode = outcome) are not resources
//   of a served type and are not counted. Group reads are not counted.
// - Deleted entries of a bulk `deleted` file (spec profile) are counted apart, in `deleted`.
// Reading the stats (GET /_admin/stats, handle.stats()) first waits for responses already under
// way to be written out, so a client that has just read a whole response sees it counted.
// `requests` counts every request to the FHIR base (including refused and faulted ones);
// `throttled` counts 429s from the rate limit (injected 429 faults are counted under `faults`).
import { KeySet } from "./key-set";

export interface SimulatorStats {
  served: Record<string, number>;
  deleted: Record<string, number>;
  requests: number;
  throttled: number;
  unauthorized: number;
  faults: Record<string, number>;
  tokenRequests: number;
  tokensIssued: number;
  bulkJobs: number;
  day: number;
}

export class StatsRecorder {
  private seen = new KeySet();
  private seenDeleted = new KeySet();
  private served: Record<string, number> = {};
  private deleted: Record<string, number> = {};
  private faults: Record<string, number> = {};
  requests = 0;
  throttled = 0;
  unauthorized = 0;
  tokenRequests = 0;
  tokensIssued = 0;
  bulkJobs = 0;

  /** Counts one resource version (numeric key from ids.resourceKey) as served. */
  markServed(type: string, key: number): void {
    if (!this.seen.add(key)) return;
    this.served[type] = (this.served[type] ?? 0) + 1;
  }

  markDeleted(type: string, key: number): void {
    if (!this.seenDeleted.add(key)) return;
    this.deleted[type] = (this.deleted[type] ?? 0) + 1;
  }

  fault(name: string): void {
    this.faults[name] = (this.faults[name] ?? 0) + 1;
  }

  snapshot(day: number): SimulatorStats {
    return {
      served: { ...this.served },
      deleted: { ...this.deleted },
      requests: this.requests,
      throttled: this.throttled,
      unauthorized: this.unauthorized,
      faults: { ...this.faults },
      tokenRequests: this.tokenRequests,
      tokensIssued: this.tokensIssued,
      bulkJobs: this.bulkJobs,
      day,
    };
  }

  reset(): void {
    this.seen = new KeySet();
    this.seenDeleted = new KeySet();
    this.served = {};
    this.deleted = {};
    this.faults = {};
    this.requests = 0;
    this.throttled = 0;
    this.unauthorized = 0;
    this.tokenRequests = 0;
    this.tokensIssued = 0;
    this.bulkJobs = 0;
  }
}
