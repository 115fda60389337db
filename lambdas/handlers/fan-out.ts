// FanOut: one SQS message per bulk output file (download queue) or per batch of patients (search queue).
import type { FanOutInput, FanOutOutput } from "../../lib/core/pipeline-steps";
import { fanOut } from "../extractor/steps";
import { extractorDeps } from "./handler-runtime";

export async function handler(event: FanOutInput): Promise<FanOutOutput> {
  return fanOut(event, await extractorDeps(true));
}
