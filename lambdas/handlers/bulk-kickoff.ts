// BulkKickOff: starts the Group export at Epic (resolving `since: "auto"` from the last finished run).
import type { BulkExportState, BulkKickOffInput } from "../../lib/core/pipeline-steps";
import { kickOff } from "../extractor/steps";
import { extractorDeps } from "./handler-runtime";

export async function handler(event: BulkKickOffInput): Promise<BulkExportState> {
  return kickOff(event, await extractorDeps(false));
}
