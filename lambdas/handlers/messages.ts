// The SQS messages of the extractor, written down as types. Every message body is exactly one
// work unit as JSON (lambdas/extractor/work-units.ts):
//   download queue  <- BulkFileUnit        (one per output / error / deleted file of a bulk export)
//   search queue    <- SearchPatientsUnit  (one per batch of patients of a group)
//                      SearchSharedUnit    (Practitioners/Organizations the patients reference)
// The FanOut and CheckDrained steps send them; download-file and search-worker consume them with
// batch item failures (a failed unit goes back to the queue, then to its DLQ after maxReceiveCount).
import type { BulkFileUnit, SearchPatientsUnit, SearchSharedUnit, WorkUnit } from "../extractor/work-units";

export type { BulkFileUnit, SearchPatientsUnit, SearchSharedUnit, WorkUnit } from "../extractor/work-units";

/** Body of a download-queue message. */
export type DownloadMessage = BulkFileUnit;
/** Body of a search-queue message. */
export type SearchMessage = SearchPatientsUnit | SearchSharedUnit;

/** The parts of an SQS event record the workers use. */
export interface SqsRecord {
  messageId: string;
  body: string;
  attributes?: { ApproximateReceiveCount?: string };
}

export interface SqsEvent {
  Records: SqsRecord[];
}

/** Partial batch response: the messages to deliver again (reportBatchItemFailures). */
export interface SqsBatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

/** Parses and checks a message body; throws naming what is wrong (never quoting the body). */
export function parseUnitMessage(body: string, kinds: ReadonlyArray<WorkUnit["kind"]>): WorkUnit {
  let u: Partial<WorkUnit>;
  try {
    u = JSON.parse(body) as Partial<WorkUnit>;
  } catch {
    throw new Error("message body is not JSON");
  }
  if (!u || typeof u !== "object" || !u.kind || !kinds.includes(u.kind)) throw new Error(`message is not a ${kinds.join(" or ")} unit`);
  for (const f of ["runId", "unitId", "ingestDate"] as const)
    if (typeof u[f] !== "string" || !u[f]) throw new Error(`message unit has no ${f}`);
  if (typeof u.unitIndex !== "number") throw new Error("message unit has no unitIndex");
  if (!Array.isArray(u.types)) throw new Error("message unit has no types");
  return u as WorkUnit;
}
