// CheckDrained: every unit of the run accounted for (unit records under _runs/{run}/units/, the
// queues empty, nothing in a DLQ)? When drained it writes the run manifest and deletes the bulk jobs.
import type { CheckDrainedInput, DrainStatus } from "../../lib/core/pipeline-steps";
import { checkDrained } from "../extractor/steps";
import { extractorDeps } from "./handler-runtime";

export async function handler(event: CheckDrainedInput): Promise<DrainStatus> {
  return checkDrained(event, await extractorDeps(true), 30);
}
