// PollBulkStatus: one status poll of the export; when complete the manifest is stored under the run.
import type { BulkExportState, PollBulkStatusInput } from "../../lib/core/pipeline-steps";
import { pollStatus } from "../extractor/steps";
import { extractorDeps } from "./handler-runtime";

export async function handler(event: PollBulkStatusInput): Promise<BulkExportState> {
  const state: BulkExportState & { retryAfterMs?: number } = await pollStatus(event, await extractorDeps(false));
  // The state machine waits whole seconds (retryAfterSeconds); the exact ms is for local runs.
  delete state.retryAfterMs;
  return state;
}
