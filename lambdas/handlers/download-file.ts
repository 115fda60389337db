// SQS worker of the download queue: streams one bulk export file into bronze.
import { handleUnits } from "./sqs-worker";
import type { SqsBatchResponse, SqsEvent } from "./messages";

export async function handler(event: SqsEvent): Promise<SqsBatchResponse> {
  return handleUnits(event, ["bulk-file"]);
}
