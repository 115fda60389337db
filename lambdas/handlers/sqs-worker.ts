// The body of both SQS-triggered workers: each message is one work unit, processed by the
// library; a unit that fails is reported in batchItemFailures so SQS delivers it again (and,
// after maxReceiveCount, moves it to the dead-letter queue, which CheckDrained counts).
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { processUnit, recordUnitFailure } from "../extractor/process-unit";
import type { WorkUnit } from "../extractor/work-units";
import { extractorDeps, logger, metrics } from "./handler-runtime";
import { parseUnitMessage, type SqsBatchResponse, type SqsEvent } from "./messages";

export async function handleUnits(event: SqsEvent, kinds: ReadonlyArray<WorkUnit["kind"]>): Promise<SqsBatchResponse> {
  const deps = await extractorDeps(false);
  const failures: SqsBatchResponse["batchItemFailures"] = [];
  for (const record of event.Records) {
    let unit: WorkUnit;
    try {
      unit = parseUnitMessage(record.body, kinds);
    } catch (e) {
      // A malformed message cannot succeed later either: let it go to the DLQ.
      logger.error("unreadable work unit", { messageId: record.messageId, error: (e as Error).message });
      failures.push({ itemIdentifier: record.messageId });
      continue;
    }
    try {
      const r = await processUnit(unit, deps);
      const resources = Object.values(r.types).reduce((a, c) => a + c.resources, 0);
      metrics.addMetric("UnitResources", MetricUnit.Count, resources);
      metrics.addMetric("UnitRejected", MetricUnit.Count, r.rejected);
      metrics.addMetric("UnitSeconds", MetricUnit.Seconds, r.seconds);
    } catch (e) {
      logger.warn("work unit failed", {
        runId: unit.runId,
        unitId: unit.unitId,
        receiveCount: record.attributes?.ApproximateReceiveCount,
        error: (e as Error).name,
        message: (e as Error).message,
      });
      metrics.addMetric("UnitFailures", MetricUnit.Count, 1);
      // CheckDrained tells a unit that failed for good by this record (and an empty queue).
      await recordUnitFailure(unit, e, deps).catch(() => undefined);
      failures.push({ itemIdentifier: record.messageId });
    }
  }
  metrics.publishStoredMetrics();
  return { batchItemFailures: failures };
}
