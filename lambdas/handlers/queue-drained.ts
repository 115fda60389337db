// CheckDrained: every unit of the run accounted for (unit records under _runs/{run}/units/, the
// queues empty, nothing in a DLQ)? When drained it writes the run manifest and deletes the bulk jobs.
import type { CheckDrainedInput, DrainStatus } from "../../lib/core/pipeline-steps";
import { checkDrained } from "../extractor/steps";
import { extractorDeps, logger } from "./handler-runtime";

export async function handler(event: CheckDrainedInput): Promise<DrainStatus> {
  logger.appendKeys({ runId: event.run.runId });
  const deps = await extractorDeps(true);
  const status = await checkDrained(event, deps, 30);
  if (status.state === "drained" || status.state === "failed") return status;
  // Records say done but SQS still holds messages (e.g. a redelivery): not drained yet.
  return status;
}
