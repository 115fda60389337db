// SQS worker of the search queue: crawls one batch of patients (or reads shared resources) into bronze.
import { handleUnits } from "./sqs-worker";
import type { SqsBatchResponse, SqsEvent } from "./messages";

export async function handler(event: SqsEvent): Promise<SqsBatchResponse> {
  return handleUnits(event, ["search-patients", "search-shared"]);
}
