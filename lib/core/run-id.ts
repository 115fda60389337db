// Run ids: sortable by start time (so "the last run before this one" is a string comparison),
// unique, and valid Step Functions execution names (<= 80 chars of [A-Za-z0-9-_]).
import { randomBytes } from "node:crypto";

let lastStamp = "";
let sequence = 0;

/**
 * A new run id such as `20250102T020000123Z-000-1a2b3c`: milliseconds, then a counter that keeps
 * ids created in the same millisecond by this process in creation order, then randomness so two
 * processes never collide. `prefix` is prepended as is (e.g. "run-").
 */
export function newRunId(now = new Date(), prefix = ""): string {
  const stamp = now.toISOString().replace(/[-:.]/g, "");
  sequence = stamp === lastStamp ? sequence + 1 : 0;
  lastStamp = stamp;
  return `${prefix}${stamp}-${String(sequence).padStart(3, "0")}-${randomBytes(3).toString("hex")}`;
}
